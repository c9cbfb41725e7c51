"""The Shadow fidelity page: control-group shadow trades set against the paper (or live)
trades of the same signals. In paper mode they agree exactly; a changed trade shows."""

import json
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from shadow import rollups
from shadow.models import ShadowTrade
from signals.models import ExchangeOrder, PaperTrade

pytestmark = pytest.mark.django_db

PAGE = reverse("analytics:fidelity")
TWIN = reverse("analytics:api-page", args=["fidelity"])


def twin(client, book, **params):
    response = client.get(TWIN, {"book": book.pk, **params})
    assert response.status_code == 200, response.content
    return response.json()


def control_pairs(book, since=None, until=None):
    """Signal ids with both a control shadow trade and a paper trade, in Python."""
    return sorted(
        shadow.signal_id
        for shadow in ShadowTrade.objects.filter(book=book, group="control")
        if PaperTrade.objects.filter(signal_id=shadow.signal_id).exists()
        and (since is None or shadow.signal.candle_time >= since)
        and (until is None or shadow.signal.candle_time < until)
    )


def resum(trade):
    """Sum the days of ``trade``'s signal again, as every writer of the book does in its
    transaction (the page reads per-day rows kept with the rollups)."""
    rollups.refresh(trade.book_id, since=trade.signal.candle_time)


def change_exit(trade, delta):
    """Move a paper trade's exit price by ``delta`` and its P&L as the fill model would."""
    direction = 1 if trade.side == "long" else -1
    trade.exit_price += delta
    trade.pnl += direction * delta * trade.quantity
    trade.save(update_fields=["exit_price", "pnl"])
    resum(trade)
    return direction * delta * trade.quantity


def fill(trade, slip):
    """Filled entry and exit orders for ``trade``'s signal, the entry ``slip`` worse; not
    followed by a refresh of the rollups (``signals.execution`` does none)."""
    buy, sell = ("buy", "sell") if trade.side == "long" else ("sell", "buy")
    amount = Decimal("0.03")
    entry = trade.entry_price * (1 + slip)
    for purpose, side, price, fee, currency in (
        ("entry", buy, entry, Decimal("0.00001"), trade.signal.symbol.split("/")[0]),
        ("exit", sell, trade.exit_price, Decimal("0.80"), "USD"),
    ):
        ExchangeOrder.objects.create(
            book_id=trade.book_id,
            signal=trade.signal,
            purpose=purpose,
            exchange="testex",
            symbol=trade.signal.symbol,
            side=side,
            amount=amount,
            client_order_id=f"t-{purpose}-{trade.pk}",
            status=ExchangeOrder.Status.CLOSED,
            filled=amount,
            average_price=price,
            fee_cost=fee,
            fee_currency=currency,
        )


def test_paper_trades_and_their_shadows_agree_exactly(trader_client, replayed_book):
    pairs = control_pairs(replayed_book)
    assert len(pairs) > 10
    summary = twin(trader_client, replayed_book)["data"]["summary"]
    assert summary["pairs"] == summary["compared"] == summary["paper"] == len(pairs)
    assert summary["exact"] == len(pairs)
    assert summary["disagreements"] == 0 and summary["live"] == 0
    for name in ("entry_difference", "exit_difference", "pnl_difference"):
        assert Decimal(summary[name]["max"]) == 0
    html = trader_client.get(PAGE, {"book": replayed_book.pk}).content.decode()
    assert 'id="disagreement-count">0<' in html and "every compared pair agrees" in html


def test_it_detects_a_paper_trade_whose_exit_price_changed(trader_client, replayed_book):
    trade = PaperTrade.objects.filter(book=replayed_book, status="closed").order_by("id")[3]
    moved = change_exit(trade, Decimal("1.5"))
    data = twin(trader_client, replayed_book)["data"]
    summary = data["summary"]
    assert summary["disagreements"] == 1 == summary["pnl_differs"]
    assert summary["reason_differs"] == summary["time_differs"] == 0
    assert summary["exact"] == summary["compared"] - 1
    assert Decimal(summary["exit_difference"]["max"]) == Decimal("1.5000")
    # Money to the cent; the price differences above keep four places (per unit).
    assert Decimal(summary["pnl_difference"]["max"]) == abs(moved).quantize(
        Decimal("0.01"), ROUND_HALF_UP
    )
    [row] = data["disagreements"]
    assert row["signal_id"] == trade.signal_id
    assert row["signal_url"] == f"/signals/{trade.signal_id}/"
    assert row["differs_in"] == ["P&L"] and row["executed"] == "paper"
    assert Decimal(row["pnl_difference"]) == moved.quantize(Decimal("0.01"), ROUND_HALF_UP)
    html = trader_client.get(PAGE, {"book": replayed_book.pk}).content.decode()
    assert f'href="/signals/{trade.signal_id}/"' in html
    assert 'id="disagreement-count">1<' in html


def test_the_rendered_page_follows_the_figures(trader_client, replayed_book):
    """The page's body is rendered once per payload (``{% cache ... fragment_key %}``):
    a trade that changes shows on the next view."""
    before = trader_client.get(PAGE, {"book": replayed_book.pk}).content.decode()
    assert 'id="disagreement-count">0<' in before
    trade = PaperTrade.objects.filter(book=replayed_book, status="closed").order_by("id")[2]
    change_exit(trade, Decimal("0.5"))
    after = trader_client.get(PAGE, {"book": replayed_book.pk}).content.decode()
    assert 'id="disagreement-count">1<' in after
    assert f'href="/signals/{trade.signal_id}/"' in after


def test_a_different_exit_reason_or_time_is_a_disagreement(trader_client, replayed_book):
    closed = PaperTrade.objects.filter(book=replayed_book, status="closed").order_by("id")
    first, second = closed[0], closed[1]
    first.exit_reason = "gap" if first.exit_reason != "gap" else "stop"
    first.save(update_fields=["exit_reason"])
    second.exit_time = second.exit_time.replace(minute=1)
    second.save(update_fields=["exit_time"])
    resum(first)
    resum(second)
    data = twin(trader_client, replayed_book)["data"]
    assert data["summary"]["disagreements"] == 2
    assert data["summary"]["reason_differs"] == 1 == data["summary"]["time_differs"]
    assert {row["signal_id"]: row["differs_in"] for row in data["disagreements"]} == {
        first.signal_id: ["exit reason"],
        second.signal_id: ["exit time"],
    }


def test_a_live_trade_is_compared_at_its_fills(trader_client, replayed_book):
    trade = PaperTrade.objects.filter(book=replayed_book, status="closed").order_by("id")[2]
    fill(trade, Decimal("0.001"))
    entry, exit_ = trade.entry_price * Decimal("1.001"), trade.exit_price
    amount = Decimal("0.03")
    direction = 1 if trade.side == "long" else -1
    live_pnl = direction * (exit_ - entry) * amount - Decimal("0.00001") * entry - Decimal("0.80")
    data = twin(trader_client, replayed_book)["data"]
    assert data["summary"]["live"] == 1
    [row] = data["disagreements"]
    assert row["executed"] == "live" and row["signal_id"] == trade.signal_id
    assert Decimal(row["executed_trade"]["pnl"]) == live_pnl.quantize(
        Decimal("0.01"), ROUND_HALF_UP
    )
    assert Decimal(row["entry_difference"]) == (entry - trade.entry_price).quantize(
        Decimal("0.0001"), ROUND_HALF_UP
    )


def test_the_filters_narrow_the_pairs(trader_client, replayed_book):
    everything = twin(trader_client, replayed_book)["data"]["summary"]["pairs"]
    assert twin(trader_client, replayed_book, symbol="BTC/USD")["data"]["summary"]["pairs"] == (
        everything
    )
    assert twin(trader_client, replayed_book, symbol="ETH/USD")["data"]["summary"]["pairs"] == 0
    strategy = replayed_book.strategies.get().name
    assert twin(trader_client, replayed_book, strategy=strategy)["data"]["summary"]["pairs"] == (
        everything
    )
    assert twin(trader_client, replayed_book, strategy="nope")["data"]["summary"]["pairs"] == 0
    body = twin(trader_client, replayed_book, period="7d")
    since = datetime.fromisoformat(body["filters"]["since"])
    until = datetime.fromisoformat(body["filters"]["until"])
    expected = control_pairs(replayed_book, since, until)
    assert 0 < len(expected) < everything
    assert body["data"]["summary"]["pairs"] == len(expected)


def test_it_issues_a_fixed_number_of_queries(trader_client, replayed_book, settings):
    # build()'s queries, each request building the page (the page cache would answer the
    # second request from the first, whose stamp a paper trade's edit does not change).
    # Without disagreements the list's query is not run.
    settings.PAGE_CACHE = False
    with CaptureQueriesContext(connection) as agreeing:
        twin(trader_client, replayed_book)
    closed = list(PaperTrade.objects.filter(book=replayed_book, status="closed"))
    change_exit(closed[0], Decimal(5))
    with CaptureQueriesContext(connection) as one:
        assert twin(trader_client, replayed_book)["data"]["summary"]["disagreements"] == 1
    for trade in closed[1:]:
        change_exit(trade, Decimal(5))
    with CaptureQueriesContext(connection) as disagreeing:
        data = twin(trader_client, replayed_book)["data"]
    assert len(data["disagreements"]) == data["summary"]["disagreements"] > 10
    assert len(disagreeing) == len(one) == len(agreeing) + 1


def test_the_twin_equals_the_page(trader_client, replayed_book):
    change_exit(PaperTrade.objects.filter(book=replayed_book, status="closed").first(), Decimal(2))
    page = trader_client.get(PAGE, {"book": replayed_book.pk})
    data = twin(trader_client, replayed_book)["data"]
    assert json.loads(json.dumps(page.context["data"], cls=DjangoJSONEncoder)) == data
    html = page.content.decode()
    assert f'id="pairs-compared">{data["summary"]["compared"]}<' in html
    assert f'id="exact-matches">{data["summary"]["exact"]}<' in html
    for row in data["disagreements"]:
        assert f'href="{row["signal_url"]}"' in html
