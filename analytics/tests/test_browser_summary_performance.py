"""The summary (home) and performance pages in a real Chromium: key figures against the
database, the charts drawn, no sideways scrolling at 1,280 and 390 px."""

from decimal import Decimal

import pytest

from analytics.templatetags.trader import signed_money

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_connection_closed():
    """Queries from the test body run in Playwright's context, on a connection of their
    own: close it, or the test database cannot be dropped."""
    yield
    from django.db import connections

    connections.close_all()


def test_a_trader_reads_the_summary_and_the_performance_pages(
    replayed_book, browser_session, own_connection_closed
):
    from analytics.tests.factories import PaperTradeFactory, SignalFactory
    from signals.models import Book, PaperTrade, SignalState

    book = replayed_book
    closed = PaperTrade.objects.filter(book=book, status="closed", pnl__isnull=False)
    total = sum((t.pnl for t in closed), Decimal(0))

    page = browser_session.open(f"/?book={book.pk}")
    assert page.locator("h1").inner_text() == "Summary"
    body = browser_session.body()
    assert "Last 30 days" in body and "Last 7 days" in body and "Last day" in body
    assert "Pipeline health" in body
    # The replay's 600 hours fit in 30 days: that window holds every closed trade.
    thirty = page.locator("#period-30d [data-figure=pnl]")
    assert thirty.inner_text() == signed_money(total, "USD")
    assert browser_session.charts_drawn() == 1, "the equity sparkline"
    browser_session.check_layout("summary")

    page = browser_session.open(f"/performance/?book={book.pk}")
    assert page.locator("[data-figure=total_pnl]").inner_text() == signed_money(total, "USD")
    assert page.locator("[data-figure=trades]").inner_text() == str(closed.count())
    assert browser_session.charts_drawn() == 3, "equity, daily P&L and drawdown"
    browser_session.check_layout("performance")

    leg = Book.objects.create(
        name="replay without cooldown",
        kind=Book.Kind.REPLAY,
        ablation_of=book,
        without_guard="cooldown_after_stop",
    )
    for trade in closed[:5]:
        signal = SignalFactory(
            book=leg, state=SignalState.CLOSED, candle_time=trade.signal.candle_time
        )
        PaperTradeFactory(signal=signal, pnl=trade.pnl * 2, exit_time=trade.exit_time)
    page = browser_session.open(f"/performance/?book={book.pk}")
    page.get_by_role("link", name="replay without cooldown").click()
    page.wait_for_load_state("load")
    assert f"compare={leg.pk}" in page.url
    table = page.locator("#compare-table")
    assert table.is_visible()
    row = table.locator("tr[data-figure=total_pnl] td")
    leg_total = sum((t.pnl * 2 for t in closed[:5]), Decimal(0))
    assert row.nth(0).inner_text() == signed_money(total, "USD")
    assert row.nth(1).inner_text() == signed_money(leg_total, "USD")
    assert row.nth(2).inner_text() == signed_money(total - leg_total, "USD")
    assert browser_session.charts_drawn() == 4, "the overlay as well"
    browser_session.check_layout("performance-compare")
