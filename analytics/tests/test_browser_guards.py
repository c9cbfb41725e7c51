"""The guard page in a real headless Chromium: layout at 1,280 and 390 px, the chart
drawn, the verdicts and intervals in view."""

import pytest

from analytics.tests.browser import needs_chromium

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]


def test_a_trader_reads_verdicts_and_intervals_at_laptop_and_phone_width(
    replayed_book, browser_session
):
    page = browser_session.open(f"/guards/?book={replayed_book.pk}")

    assert page.locator("h1").inner_text() == "Guard effectiveness"
    browser_session.check_layout("guards")
    assert browser_session.charts_drawn() == 1
    rows = page.locator("table.guards-table tbody tr")
    assert rows.count() >= 2
    first = rows.first
    for cell in (".verdict", "td.interval"):
        box = first.locator(cell).first.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280, f"{cell} is cut off"
        assert first.locator(cell).first.is_visible()
    assert "positive means blocking them saved money" in browser_session.body()
    assert page.get_by_role("button", name="Ablate this book").is_visible()
    # On a phone each guard is a card: verdict and net impact stay, secondary columns go.
    page.set_viewport_size({"width": 390, "height": 844})
    assert first.locator(".verdict").first.is_visible()
    assert not first.locator("td.secondary").first.is_visible()
