/* The signal page's price chart, drawn by TradingView's lightweight-charts (served from
 * static/vendor/lightweight-charts) from the JSON written by analytics.signal_chart on the
 * server, in <script id="signal-chart-data" type="application/json">:
 *
 * {symbol, timeframe, precision, signal_time, candles: [[time_s, open, high, low, close]],
 *  lines: [{name, price, tone}], markers: [{time, position, shape, tone, text, price?}],
 *  trades: [{name, points: [[time_s, price], [time_s, price]], tone}]}
 *
 * Once drawn, the container carries data-drawn="true" and data-markers (how many markers
 * the chart holds), which the browser tests read.
 */
(function () {
  "use strict";
  var css = getComputedStyle(document.documentElement);
  function colour(name, fallback) {
    var value = css.getPropertyValue(name).trim();
    return value || fallback;
  }
  var TONES = {
    good: colour("--pos", "#1f7a3a"),
    bad: colour("--neg", "#b3261e"),
    neutral: colour("--accent", "#2457a6"),
    signal: colour("--accent", "#2457a6"),
    paper: colour("--accent", "#2457a6"),
    shadow: "#8250df",
    blocked: "#bf8700",
  };
  var MUTED = colour("--muted", "#5f6b7a");
  var GRID = colour("--line", "#dde1e6");

  function tone(name) {
    return TONES[name] || MUTED;
  }

  function draw(box) {
    var source = document.getElementById(box.getAttribute("data-chart-source"));
    if (!source || typeof LightweightCharts === "undefined") return;
    var spec = JSON.parse(source.textContent);
    var LWC = LightweightCharts;
    var chart = LWC.createChart(box, {
      autoSize: true,
      layout: {
        background: {type: "solid", color: "#ffffff"},
        textColor: MUTED,
        fontSize: 11,
        // The logo injects an inline <style> our Content-Security-Policy refuses; the
        // page credits TradingView with a link under the chart instead (the licence asks
        // for the notice and a link, not for the logo).
        attributionLogo: false,
      },
      grid: {vertLines: {color: GRID}, horzLines: {color: GRID}},
      rightPriceScale: {borderColor: GRID},
      timeScale: {borderColor: GRID, timeVisible: true, secondsVisible: false},
      crosshair: {mode: LWC.CrosshairMode.Normal},
      // Prices grouped as on the page (33,370.32), to the signal's own precision.
      localization: {
        priceFormatter: function (price) {
          return price.toLocaleString("en-US", {
            minimumFractionDigits: spec.precision,
            maximumFractionDigits: spec.precision,
          });
        },
      },
    });
    var format = {
      type: "price",
      precision: spec.precision,
      minMove: Math.pow(10, -spec.precision),
    };
    var candles = chart.addSeries(LWC.CandlestickSeries, {
      upColor: TONES.good,
      downColor: TONES.bad,
      borderVisible: false,
      wickUpColor: TONES.good,
      wickDownColor: TONES.bad,
      priceFormat: format,
      priceLineVisible: false,
      lastValueVisible: false,
      // Keep the stop and the target on screen even when no candle reached them.
      autoscaleInfoProvider: function (original) {
        var info = original();
        if (!info || !info.priceRange) return info;
        spec.lines.forEach(function (line) {
          info.priceRange.minValue = Math.min(info.priceRange.minValue, line.price);
          info.priceRange.maxValue = Math.max(info.priceRange.maxValue, line.price);
        });
        return info;
      },
    });
    candles.setData(spec.candles.map(function (row) {
      return {time: row[0], open: row[1], high: row[2], low: row[3], close: row[4]};
    }));
    spec.lines.forEach(function (line) {
      candles.createPriceLine({
        price: line.price,
        color: tone(line.tone),
        lineWidth: 1,
        lineStyle: line.name === "entry" ? LWC.LineStyle.Dotted : LWC.LineStyle.LargeDashed,
        axisLabelVisible: true,
        title: line.name,
      });
    });
    spec.trades.forEach(function (trade) {
      var segment = chart.addSeries(LWC.LineSeries, {
        color: tone(trade.tone),
        lineWidth: 2,
        lineStyle: trade.name === "shadow" ? LWC.LineStyle.Dashed : LWC.LineStyle.Solid,
        priceFormat: format,
        priceLineVisible: false,
        lastValueVisible: false,
        crosshairMarkerVisible: false,
        pointMarkersVisible: false,
      });
      segment.setData(trade.points.map(function (point) {
        return {time: point[0], value: point[1]};
      }));
    });
    var markers = LWC.createSeriesMarkers(candles, spec.markers.map(function (marker) {
      var drawn = {
        time: marker.time,
        position: marker.position,
        shape: marker.shape,
        color: tone(marker.tone),
        text: marker.text,
      };
      if (marker.price !== undefined) drawn.price = marker.price;
      return drawn;
    }));
    // Open on the signal: the candles before it, the trade, and the candles after.
    chart.timeScale().fitContent();
    requestAnimationFrame(function () {
      box.setAttribute("data-markers", String(markers.markers().length));
      box.setAttribute("data-drawn", "true");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart-source]").forEach(draw);
  });
})();
