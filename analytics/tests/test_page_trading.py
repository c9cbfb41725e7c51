"""The Trading page: the book's paper trades, filtered, totalled in the database and
paginated, checked against a plain reference over the ORM rows."""

import json
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analytics.numbers import rate
from analytics.tests.factories import PaperTradeFactory, SignalFactory, StrategyConfigFactory
from signals.models import BookStrategy, PaperTrade, SignalState

pytestmark = pytest.mark.django_db

PAGE = reverse("analytics:trading")
TWIN = reverse("analytics:api-page", args=["trading"])


@pytest.fixture
def book(replayed_book):
    """The replayed book plus a second strategy on ETH/USD: a win, a loss and an open
    trade, so every filter has something to keep and something to drop."""
    config = StrategyConfigFactory(name="eth breakout", symbol="ETH/USD")
    strategy = BookStrategy.objects.create(
        book=replayed_book,
        config=config,
        config_version=3,
        name="eth breakout",
        kind="donchian_breakout",
        exchange="testex",
        symbol="ETH/USD",
        timeframe="1h",
    )
    clock = replayed_book.signals.order_by("-candle_time").first().candle_time
    for hours, side, status, pnl in (
        (30, "long", PaperTrade.Status.CLOSED, Decimal("12.345")),
        (20, "short", PaperTrade.Status.CLOSED, Decimal("-7.5")),
        (10, "long", PaperTrade.Status.OPEN, None),
    ):
        signal = SignalFactory(
            book=replayed_book,
            strategy_config=config,
            book_strategy=strategy,
            candle_time=clock - timedelta(hours=hours),
            side=side,
            state=SignalState.CLOSED if pnl is not None else SignalState.EXECUTED,
        )
        PaperTradeFactory(
            signal=signal,
            status=status,
            pnl=pnl,
            entry_time=signal.candle_time + timedelta(hours=1),
            entry_price=Decimal("2345.678912"),
            quantity=Decimal("0.426315789"),
            exit_time=signal.candle_time + timedelta(hours=3) if pnl is not None else None,
            exit_price=Decimal("2360.1") if pnl is not None else None,
            exit_reason=PaperTrade.ExitReason.TARGET if pnl is not None else "",
        )
    return replayed_book


def reference(book, *, since=None, until=None, strategy="", symbol="", side="", outcome=""):
    """The documented rules, row by row in Python."""
    kept = []
    for trade in PaperTrade.objects.filter(book=book).select_related("signal__book_strategy"):
        signal = trade.signal
        if strategy and (signal.book_strategy is None or signal.book_strategy.name != strategy):
            continue
        if (symbol and signal.symbol != symbol) or (side and trade.side != side):
            continue
        closed = trade.status == "closed"
        active = trade.status in ("open", "pending")
        if closed:
            if (since and trade.exit_time < since) or (until and trade.exit_time >= until):
                continue
        elif active:
            if until and signal.candle_time >= until:
                continue
        else:
            continue
        if outcome == "win" and not (closed and trade.pnl > 0):
            continue
        if outcome == "loss" and not (closed and trade.pnl < 0):
            continue
        if outcome == "open" and not active:
            continue
        kept.append(trade)
    pnls = [trade.pnl for trade in kept if trade.status == "closed"]
    wins = sum(1 for pnl in pnls if pnl > 0)
    return {
        "ids": sorted(trade.signal_id for trade in kept),
        "count": len(kept),
        "closed": len(pnls),
        "wins": wins,
        "losses": sum(1 for pnl in pnls if pnl < 0),
        "win_rate": rate(wins / len(pnls)) if pnls else None,
        "total_pnl": sum(pnls, Decimal(0)).quantize(Decimal("0.01"), ROUND_HALF_UP),
        "average_pnl": (sum(pnls, Decimal(0)) / len(pnls)).quantize(Decimal("0.01"), ROUND_HALF_UP)
        if pnls
        else None,
    }


def twin(client, book, **params):
    response = client.get(TWIN, {"book": book.pk, **params})
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"strategy": "eth breakout"},
        {"symbol": "ETH/USD"},
        {"side": "long"},
        {"side": "short"},
        {"outcome": "win"},
        {"outcome": "loss"},
        {"outcome": "open"},
        {"period": "7d"},
        {"period": "1d", "symbol": "ETH/USD"},
    ],
)
def test_it_totals_each_filtered_set_like_a_plain_sum(trader_client, book, params):
    body = twin(trader_client, book, **params)
    data = body["data"]
    filters = body["filters"]
    expected = reference(
        book,
        since=datetime.fromisoformat(filters["since"]) if filters["since"] else None,
        until=datetime.fromisoformat(filters["until"]) if filters["until"] else None,
        **{key: value for key, value in params.items() if key != "period"},
    )
    everything = reference(book)
    assert expected["count"] > 0, params
    if params:
        assert expected["count"] < everything["count"], f"{params} narrows nothing"
    totals = data["totals"]
    assert sorted(row["signal_id"] for row in data["trades"]) == expected["ids"]
    assert totals["count"] == expected["count"]
    assert totals["closed"] == expected["closed"]
    assert totals["wins"] == expected["wins"]
    assert totals["losses"] == expected["losses"]
    assert totals["win_rate"] == expected["win_rate"]
    assert Decimal(totals["total_pnl"]) == expected["total_pnl"]
    assert (None if totals["average_pnl"] is None else Decimal(totals["average_pnl"])) == expected[
        "average_pnl"
    ]


def test_it_shows_each_trade_as_a_trader_reads_it(trader_client, book):
    data = twin(trader_client, book, symbol="ETH/USD")["data"]
    first, *_, last = data["trades"]
    assert first["status"] == "open" and first["exit_price"] is None  # active first
    assert last["strategy"] == "eth breakout v3"
    assert last["entry_price"] == "2345.68"  # six significant digits
    assert last["quantity"] == "0.426316"
    assert last["exit_reason_words"] == "take-profit hit"
    assert last["currency"] == "USD"
    html = trader_client.get(PAGE, {"book": book.pk, "symbol": "ETH/USD"}).content.decode()
    assert "2,345.68" in html and "take-profit hit" in html
    assert "+12.35 USD" in html and "\N{MINUS SIGN}7.50 USD" in html


def test_it_paginates_and_keeps_the_filters(trader_client, book, monkeypatch):
    monkeypatch.setattr("analytics.trades.PAGE_SIZE", 4)
    expected = reference(book, side="short")
    seen, number, counts = [], 1, set()
    while True:
        data = twin(trader_client, book, side="short", page=number)["data"]
        counts.add(data["totals"]["count"])
        seen += [row["signal_id"] for row in data["trades"]]
        assert len(data["trades"]) <= 4
        if data["pages"]["next"] is None:
            break
        assert "side=short" in data["pages"]["next"]
        assert f"page={number + 1}" in data["pages"]["next"]
        number += 1
    assert number == data["pages"]["last"] == -(-expected["count"] // 4) > 2
    assert counts == {expected["count"]}, "the count is the same on every page"
    assert sorted(seen) == expected["ids"] and len(seen) == len(set(seen))
    html = trader_client.get(PAGE, {"book": book.pk, "side": "short", "page": 2}).content.decode()
    assert f'href="?book={book.pk}&amp;side=short&amp;page=3"' in html
    assert f'href="?book={book.pk}&amp;side=short&amp;page=1"' in html
    beyond = trader_client.get(PAGE, {"book": book.pk, "page": 99}).content.decode()
    assert "There is no page 99" in beyond


def test_it_issues_a_fixed_number_of_queries(trader_client, book, django_assert_max_num_queries):
    with CaptureQueriesContext(connection) as small:
        twin(trader_client, book)
    signal = book.signals.first()
    for hours in range(1, 61):
        PaperTradeFactory(
            signal=SignalFactory(
                book=book,
                strategy_config=signal.strategy_config,
                book_strategy=signal.book_strategy,
                candle_time=signal.candle_time - timedelta(hours=hours),
                state=SignalState.CLOSED,
            ),
            pnl=Decimal(hours),
            exit_time=signal.candle_time,
        )
    with CaptureQueriesContext(connection) as large:
        body = twin(trader_client, book)
    assert body["data"]["totals"]["count"] == reference(book)["count"] > 60
    assert len(large) == len(small)
    with django_assert_max_num_queries(len(small) + 4):  # the page adds the book list
        assert trader_client.get(PAGE, {"book": book.pk, "page": 2}).status_code == 200


def test_the_twin_equals_the_page(trader_client, book):
    page = trader_client.get(PAGE, {"book": book.pk, "outcome": "loss"})
    data = twin(trader_client, book, outcome="loss")["data"]
    shown = json.loads(json.dumps(page.context["data"], cls=DjangoJSONEncoder))
    assert shown == data
    html = page.content.decode()
    assert f'id="total-count">{data["totals"]["count"]}<' in html
    total = Decimal(data["totals"]["total_pnl"])
    assert f"\N{MINUS SIGN}{abs(total):,.2f}" in html
    for row in data["trades"]:
        assert f'href="/signals/{row["signal_id"]}/"' in html


def test_each_trade_links_to_its_signal_page(trader_client, book):
    rows = twin(trader_client, book)["data"]["trades"]
    assert rows and all(
        row["signal_url"] == reverse("analytics:signal", args=[row["signal_id"]]) for row in rows
    )
    response = trader_client.get(rows[-1]["signal_url"])
    assert response.status_code == 200
    assert f"Signal #{rows[-1]['signal_id']}" in response.content.decode()
