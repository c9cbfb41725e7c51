"""Sorting the Trading page in a real browser: a click on the P&L header sorts every
trade of the book on the server (the URL keeps ``sort``), so the best trade of all pages
is first on page 1, and the pager keeps the order."""

import pytest

from analytics.tests.browser import needs_chromium

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]


def test_a_click_on_pnl_sorts_every_page(browser_session, replayed_book, monkeypatch, settings):
    from signals.models import PaperTrade

    settings.PAGE_CACHE = False
    monkeypatch.setattr("analytics.trades.PAGE_SIZE", 4)
    closed = PaperTrade.objects.filter(book=replayed_book, pnl__isnull=False)
    best = max(closed, key=lambda trade: (trade.pnl, trade.pk))
    worst = min(closed, key=lambda trade: (trade.pnl, -trade.pk))
    page = browser_session.open(f"/trading/?book={replayed_book.pk}")
    first_signal = "table.trades tbody tr:first-child td:first-child"
    assert page.locator(first_signal).inner_text() != f"#{best.signal_id}"

    page.click("table.trades thead th.sort-server >> text=P&L")
    page.wait_for_url("**sort=-pnl**")
    assert page.locator(first_signal).inner_text() == f"#{best.signal_id}"
    header = page.locator("table.trades thead th[aria-sort=descending]")
    assert header.inner_text().startswith("P&L")
    assert "sort=-pnl" in page.locator("nav.pager a[rel=next]").get_attribute("href")

    page.click("table.trades thead th.sort-server >> text=P&L")
    page.wait_for_url("**sort=pnl**")
    assert page.locator(first_signal).inner_text() == f"#{worst.signal_id}"
    assert not browser_session.console_errors
