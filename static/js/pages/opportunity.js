/* The opportunity-cost chart: after static/js/charts.js has drawn it, draw the series
 * marked type "line" as a line over the bars, and colour the series of tone "cost" by
 * what they mean for the trader: a positive opportunity cost (the blocks gave up a
 * profit) is bad, a negative one (they avoided a loss) is good. */
(function () {
  "use strict";
  var css = getComputedStyle(document.documentElement);
  var GOOD = css.getPropertyValue("--pos").trim() || "#1f7a3a";
  var BAD = css.getPropertyValue("--neg").trim() || "#b3261e";
  var LINE = css.getPropertyValue("--fg").trim() || "#1d2430";
  function tone(v) { return v === null ? LINE : (v > 0 ? BAD : GOOD); }
  function adjust() {
    var canvases = document.querySelectorAll("canvas[data-chart]");
    Array.prototype.forEach.call(canvases, function (canvas) {
      var chart = canvas.chart;
      var source = document.getElementById(canvas.getAttribute("data-chart"));
      if (!chart || !source) return;
      var spec = JSON.parse(source.textContent);
      (spec.series || []).forEach(function (series, i) {
        var ds = chart.data.datasets[i];
        if (!ds) return;
        if (series.type === "line") {
          ds.type = "line";
          ds.order = -1;
          ds.borderColor = LINE;
          ds.backgroundColor = LINE;
          ds.borderWidth = 2;
          ds.pointRadius = series.values.length > 60 ? 0 : 2;
          ds.pointBackgroundColor = series.values.map(tone);
          ds.pointBorderColor = series.values.map(tone);
        } else if (series.tone === "cost") {
          ds.backgroundColor = series.values.map(tone);
          ds.borderColor = ds.backgroundColor;
        }
      });
      chart.options.plugins.legend.display = false;  // the caption says which is which
      chart.update();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", adjust); else adjust();
})();
