"""The Trading and Shadow fidelity pages in a real Chromium, filtered through their own
form controls, at 1,280 px and at a 390 px phone width."""

import pytest

from shadow import rollups
from signals.models import PaperTrade

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_filters_both_pages_through_the_form(replayed_book, browser_session):
    page = browser_session.open(f"/trading/?book={replayed_book.pk}")
    page.select_option("select[name=side]", "short")
    page.select_option("select[name=outcome]", "loss")
    page.click(".book-picker button[type=submit]")
    page.wait_for_url("**side=short**")
    assert "outcome=loss" in page.url
    losses = PaperTrade.objects.filter(book=replayed_book, side="short", pnl__lt=0)
    assert page.locator("table.trades tbody tr").count() == losses.count() > 0
    assert page.locator("#total-count").inner_text() == str(losses.count())
    hidden = page.locator("table.trades th.secondary").first
    assert hidden.is_visible()
    browser_session.check_layout("trading")
    page.set_viewport_size({"width": 390, "height": 844})
    assert not hidden.is_visible(), "secondary columns hide on a phone"
    page.set_viewport_size({"width": 1280, "height": 900})

    # One paper trade off by 5.00 in its exit price: the list must show it, linked.
    trade = PaperTrade.objects.filter(book=replayed_book, status="closed").order_by("-id")[1]
    trade.exit_price += 5
    trade.pnl += (5 if trade.side == "long" else -5) * trade.quantity
    trade.save(update_fields=["exit_price", "pnl"])
    # As a writer does: the rollups of the trade's days summed again in its transaction.
    rollups.refresh(replayed_book.pk, since=trade.signal.candle_time)
    page = browser_session.open(f"/fidelity/?book={replayed_book.pk}")
    page.fill("input[name=symbol]", "BTC/USD")
    page.select_option("select[name=period]", "30d")
    page.click(".book-picker button[type=submit]")
    page.wait_for_url("**symbol=BTC**")
    assert "period=30d" in page.url
    assert page.locator("#disagreement-count").inner_text() == "1"
    link = page.locator("table.disagreements tbody a")
    assert link.get_attribute("href") == f"/signals/{trade.signal_id}/"
    browser_session.check_layout("fidelity")
