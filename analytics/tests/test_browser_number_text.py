"""How numbers read, in a real Chromium: the charts' value axes and tooltips write a
negative figure with a real minus sign (U+2212), like the text around them, and the text
a reader sees on the pages with losses has no ASCII hyphen before a digit."""

import pytest

from analytics.tests.test_number_text import hyphen_numbers
from markets.admin_format import MINUS

pytestmark = pytest.mark.django_db(transaction=True)

# Every drawn chart's value-axis tick labels, and the tooltip label of its first negative
# point (through the chart's own tooltip callback).
CHART_TEXT_JS = """() => {
  const out = [];
  for (const canvas of document.querySelectorAll("canvas[data-drawn=true]")) {
    const chart = canvas.chart;
    if (!chart) continue;
    const axis = chart.options.indexAxis === "y" ? "x" : "y";
    const ticks = chart.scales[axis].ticks.map((tick) => tick.label);
    let tooltip = null;
    chart.data.datasets.forEach((dataset, index) => {
      const at = dataset.data.findIndex((v) => v !== null && v < 0);
      if (tooltip === null && at >= 0) {
        const meta = chart.getDatasetMeta(index);
        const context = {
          chart, dataset, datasetIndex: index, dataIndex: at,
          parsed: {[axis]: dataset.data[at]},
          formattedValue: meta.controller.getLabelAndValue(at).value,
        };
        tooltip = chart.options.plugins.tooltip.callbacks.label.call(chart.tooltip, context);
      }
    });
    out.push({id: canvas.getAttribute("data-chart"), ticks: ticks.map(String), tooltip});
  }
  return out;
}"""


@pytest.fixture
def own_connection_closed():
    yield
    from django.db import connections

    connections.close_all()


def test_charts_and_text_write_losses_with_a_real_minus_sign(
    replayed_book, browser_session, own_connection_closed
):
    negative_ticks = negative_tooltips = 0
    for path in (
        f"/performance/?book={replayed_book.pk}",
        f"/opportunity/?book={replayed_book.pk}",
    ):
        page = browser_session.open(path)
        assert browser_session.charts_drawn() >= 1, path
        assert hyphen_numbers(browser_session.body()) == [], path
        for chart in page.evaluate(CHART_TEXT_JS):
            labels = chart["ticks"] + ([chart["tooltip"]] if chart["tooltip"] else [])
            assert hyphen_numbers(" ".join(labels)) == [], (path, chart)
            negative_ticks += sum(label.startswith(MINUS) for label in chart["ticks"])
            negative_tooltips += bool(chart["tooltip"] and MINUS in chart["tooltip"])
    # The performance page's daily P&L and drawdown go below zero: the checks saw losses.
    assert negative_ticks > 0 and negative_tooltips > 0
