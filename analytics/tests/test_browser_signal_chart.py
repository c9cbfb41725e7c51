"""The signal page's price chart in a real Chromium: reached from the trading page,
drawn on its canvas with every marker, no console error, and the page fits at 1,280
and 390 px."""

import pytest

from analytics.selectors import signal_detail
from analytics.signal_chart import signal_chart
from analytics.tests.browser import SCREENSHOTS
from signals.models import SignalState

pytestmark = pytest.mark.django_db(transaction=True)

# Pixels of the candles' own colours (--pos and --neg in app.css) on the chart's canvases:
# a chart that drew nothing, or only its grid and axes, has none.
CANDLE_PIXELS = """box => {
  const wanted = [[31, 122, 58], [179, 38, 30]];
  let found = 0;
  for (const canvas of box.querySelectorAll("canvas")) {
    if (!canvas.width || !canvas.height) continue;
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] < 200) continue;
      if (wanted.some(c => Math.abs(c[0] - data[i]) < 8 && Math.abs(c[1] - data[i + 1]) < 8
          && Math.abs(c[2] - data[i + 2]) < 8)) found++;
    }
  }
  return found;
}"""


def open_chart(browser_session, signal):
    page = browser_session.open(f"/signals/{signal.pk}/")
    box = page.locator("#signal-chart[data-drawn=true]")
    box.wait_for(timeout=10_000)
    return page, box


def expected_markers(signal):
    chart = signal_chart(detail=signal_detail(signal_id=signal.pk))
    assert chart is not None
    return len(chart["markers"])


def test_a_trade_opens_on_its_chart_from_the_trading_page(replayed_book, browser_session):
    page = browser_session.open(f"/trading/?book={replayed_book.pk}")
    link = page.locator('table.trades tbody a[href^="/signals/"]').first
    closed = replayed_book.signals.get(pk=int(link.get_attribute("href").split("/")[2]))
    assert closed.state == SignalState.CLOSED
    link.click()
    page.wait_for_url(f"**/signals/{closed.pk}/")
    box = page.locator("#signal-chart[data-drawn=true]")
    box.wait_for(timeout=10_000)

    markers = int(box.get_attribute("data-markers"))
    assert markers == expected_markers(closed) >= 3  # the signal, the entry, the exit
    assert box.evaluate(CANDLE_PIXELS) > 500
    assert "stop-loss" in page.locator(".chart-legend").inner_text()
    assert not browser_session.console_errors, browser_session.console_errors
    browser_session.check_layout("signal-closed")
    # Still drawn after the phone width and back (autoSize redraws on resize).
    assert box.evaluate(CANDLE_PIXELS) > 500


def test_a_blocked_signal_shows_its_shadow_trade_and_every_verdict(replayed_book, browser_session):
    # One whose shadow trade reached its target (the block cost money): the screenshot
    # the README shows.
    blocked = (
        replayed_book.signals.filter(
            state=SignalState.BLOCKED,
            shadow_trade__status="closed",
            shadow_trade__exit_reason="target",
        )
        .order_by("pk")
        .first()
    )
    page, box = open_chart(browser_session, blocked)

    markers = int(box.get_attribute("data-markers"))
    assert markers == expected_markers(blocked) >= 3
    assert box.evaluate(CANDLE_PIXELS) > 500
    verdicts = page.locator(".chart-verdicts .chart-verdict")
    assert verdicts.count() == blocked.decisions.count()
    assert "block" in page.locator(".chart-verdicts").inner_text()
    assert not browser_session.console_errors, browser_session.console_errors
    box_png = SCREENSHOTS / "signal-chart.png"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".signal-chart-box").screenshot(path=str(box_png))
    browser_session.check_layout("signal-blocked")
    assert box_png.stat().st_size > 10_000


def test_a_guards_blocks_open_on_their_charts_from_the_guard_page(replayed_book, browser_session):
    page = browser_session.open(f"/guards/?book={replayed_book.pk}")
    link = page.locator('table.guards-table a[href^="/blocked/"]').first
    count = int(link.inner_text())
    link.click()
    page.wait_for_url("**/blocked/**")
    assert page.locator("#blocked-count").inner_text() == str(count)
    rows = page.locator("table.blocked-signals tbody a[href^='/signals/']")
    assert rows.count() == count
    assert not browser_session.console_errors, browser_session.console_errors
    browser_session.check_layout("blocked")
    # On a phone the table keeps the signal and what its shadow trade made in view.
    page.set_viewport_size({"width": 390, "height": 844})
    table = page.locator("table.blocked-signals")
    assert table.evaluate("t => t.parentElement.scrollWidth <= t.parentElement.clientWidth")
    page.set_viewport_size({"width": 1280, "height": 900})
    rows.first.click()
    page.wait_for_url("**/signals/*/")
    page.locator("#signal-chart[data-drawn=true]").wait_for(timeout=10_000)
    assert not browser_session.console_errors, browser_session.console_errors


def test_the_readme_screenshot_is_small():
    from pathlib import Path

    readme_png = Path(__file__).resolve().parents[2] / "docs" / "img" / "signal-chart.png"
    assert readme_png.exists()
    assert readme_png.stat().st_size < 300_000
