/* Draws every <canvas data-chart="ID"> from the JSON spec in <script id="ID" type="application/json">,
 * written by analytics.charts.chart_spec on the server. Chart.js is served from our own static files.
 *
 * spec = {kind: "line" | "bar" | "barh", labels: [...], y_label, series: [{name, values, tone, fill, marker}]}
 * tone: "good" / "bad" / "neutral" colour a whole series; "signed" colours each bar by its sign,
 * where a positive value is good for the trader (the server chooses the sign so that holds).
 */
(function () {
  "use strict";
  var css = getComputedStyle(document.documentElement);
  function colour(name, fallback) {
    var value = css.getPropertyValue(name).trim();
    return value || fallback;
  }
  var GOOD = colour("--pos", "#1a7f37");
  var BAD = colour("--neg", "#cf222e");
  var NEUTRAL = colour("--accent", "#2f6feb");
  var MUTED = colour("--muted", "#6e7781");
  var PALETTE = [NEUTRAL, "#8250df", "#bf8700", "#0a7d8c", MUTED];
  // Numbers read as on the rest of the page (README "How numbers read"): a negative one
  // with a real minus sign (U+2212), never an ASCII hyphen.
  var MINUS = "\u2212";
  function signed(text) {
    return String(text).replace(/^-/, MINUS);
  }
  function tickLabel() {
    return signed(Chart.Ticks.formatters.numeric.apply(this, arguments));
  }
  function tooltipLabel(context) {
    var name = context.dataset.label || "";
    var value = signed(context.formattedValue);
    return name ? name + ": " + value : value;
  }

  function toneColour(tone, index) {
    if (tone === "good") return GOOD;
    if (tone === "bad") return BAD;
    if (tone === "muted") return MUTED;
    return PALETTE[index % PALETTE.length];
  }

  function dataset(series, index, kind) {
    var values = series.values;
    var base = toneColour(series.tone, index);
    var perPoint = series.tone === "signed"
      ? values.map(function (v) { return v === null ? MUTED : (v >= 0 ? GOOD : BAD); })
      : base;
    var ds = {
      label: series.name,
      data: values,
      borderColor: perPoint,
      backgroundColor: kind === "line" ? (series.fill ? base + "33" : base) : perPoint,
      borderWidth: kind === "line" ? 1.5 : 0,
      pointRadius: kind === "line" && values.length > 60 ? 0 : 2,
      fill: !!series.fill,
      tension: 0,
      spanGaps: true,
    };
    if (series.stepped) ds.stepped = true;
    if (series.marker) {
      // One highlighted point (the current threshold): large, no line, always visible.
      var AMBER = "#bf8700";
      ds.showLine = false;
      ds.pointStyle = "rectRot";
      ds.pointRadius = 8;
      ds.pointHoverRadius = 10;
      ds.borderColor = AMBER;
      ds.backgroundColor = AMBER;
      ds.order = -1;
    }
    return ds;
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.getAttribute("data-chart"));
    if (!source || typeof Chart === "undefined") return;
    var spec = JSON.parse(source.textContent);
    var horizontal = spec.kind === "barh";
    var kind = spec.kind === "line" ? "line" : "bar";
    var many = (spec.series || []).length > 1;
    var valueAxis = horizontal ? "x" : "y";
    var scales = {};
    scales[valueAxis] = {
      title: {display: !!spec.y_label, text: spec.y_label || ""},
      ticks: {maxTicksLimit: 8, callback: tickLabel},
      grid: {color: "#e5e8ec"},
    };
    scales[horizontal ? "y" : "x"] = {
      ticks: {autoSkip: true, maxTicksLimit: horizontal ? 50 : 10, maxRotation: 0},
      grid: {display: false},
    };
    canvas.chart = new Chart(canvas, {
      type: kind,
      data: {
        labels: spec.labels,
        datasets: (spec.series || []).map(function (s, i) { return dataset(s, i, kind); }),
      },
      options: {
        indexAxis: horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: {mode: "index", intersect: false},
        plugins: {legend: {display: many}, tooltip: {callbacks: {label: tooltipLabel}}},
        scales: scales,
      },
    });
    canvas.setAttribute("data-drawn", "true");
  }

  function drawAll() {
    var canvases = document.querySelectorAll("canvas[data-chart]");
    for (var i = 0; i < canvases.length; i++) draw(canvases[i]);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
