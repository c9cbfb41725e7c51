"""Shadow fidelity per day (``analytics.fidelity_rollup``): kept by every write equal to
a rebuild from the rows, and the fidelity page's summary read from it equal to a plain
reference: the window's pairs read once and judged in Python, with and without
disagreements, paper and live."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

import pytest
from django.urls import reverse

from analytics import fidelity_rollup
from analytics.filters import Filters, book_clock
from analytics.models import FidelityDay
from analytics.numbers import cents, fine
from analytics.pages import fidelity
from analytics.shadow_fidelity import CENT
from analytics.tests.test_page_fidelity import change_exit, fill
from shadow import rollups
from shadow.live import book_advance
from shadow.models import RollupState, ShadowTrade
from shadow.tests.test_live import END, SYMBOLS, _market_data, _replay
from signals.models import Book, BookStrategy, ExchangeOrder, PaperTrade
from signals.services import book_live

pytestmark = pytest.mark.django_db


def named(book: Book) -> list[tuple[Any, ...]]:
    """The book's rows with strategy versions by name (ids differ between books)."""
    names = {s.pk: s.name for s in BookStrategy.objects.filter(book=book)}
    return sorted(
        ((row[0], names.get(row[1]), *row[2:]) for row in fidelity_rollup.stored(book.pk)),
        key=lambda row: tuple("" if v is None else str(v) for v in row),
    )


def rebuilt(book: Book) -> list[tuple[Any, ...]]:
    kept = fidelity_rollup.stored(book.pk)
    rollups.rebuild(book.pk)
    return kept


def test_live_runs_keep_the_rows_a_rebuild_gives_and_a_replay_writes(fresh_signals_forever):
    _market_data(count=900)
    replayed = _replay()
    book = book_live()
    first_close = END - timedelta(hours=899)
    for hours in (1, 40, 41, 150, 333, 334, 500, 700, 900):
        book_advance(book_id=book.pk, now=first_close + timedelta(hours=hours))
        kept = rebuilt(book)
        assert kept == fidelity_rollup.stored(book.pk)
    rows = FidelityDay.objects.filter(book=book)
    assert rows.values("day").distinct().count() > 10
    assert set(rows.values_list("symbol", flat=True)) == set(SYMBOLS)
    assert set(rows.values_list("side", flat=True)) == {"long", "short"}
    assert named(book) == named(replayed)
    assert rebuilt(replayed) == fidelity_rollup.stored(replayed.pk)


def test_a_book_built_before_the_rows_existed_is_rebuilt_on_first_read(
    fresh_signals_forever, trader_client
):
    _market_data(count=300)
    book = _replay()
    kept = fidelity_rollup.stored(book.pk)
    assert kept
    FidelityDay.objects.filter(book=book).delete()
    # As the rollups recorded it before the extension was registered.
    RollupState.objects.filter(book=book).update(
        version=rollups.current_version() - fidelity_rollup.VERSION
    )
    response = trader_client.get(
        reverse("analytics:api-page", args=["fidelity"]), {"book": book.pk}
    )
    assert response.status_code == 200
    assert fidelity_rollup.stored(book.pk) == kept
    assert RollupState.objects.get(book=book).version == rollups.current_version()
    assert response.json()["data"]["summary"]["pairs"] == sum(row[4] for row in kept)


# --- The summary against a plain reference ----------------------------------------------


def read_pairs(book: Book) -> list[dict[str, Any]]:
    """Every control-group shadow trade of the book whose signal has a paper trade, with
    its paper trade and its signal's filled orders: plain rows, read once, for
    ``reference`` to judge in Python."""
    orders = {
        (order["signal_id"], order["purpose"]): order
        for order in ExchangeOrder.objects.filter(signal__book=book, filled__gt=0).values(
            "signal_id", "purpose", "symbol", "filled", "average_price", "fee_cost",
            "fee_currency",
        )
    }  # fmt: skip
    paper = {
        trade["signal_id"]: trade
        for trade in PaperTrade.objects.filter(book=book).values(
            "signal_id", "status", "entry_price", "exit_price", "pnl", "exit_reason", "exit_time"
        )
    }
    shadows = ShadowTrade.objects.filter(book=book, group=ShadowTrade.Group.CONTROL).values(
        "signal_id", "side", "status", "entry_price", "exit_price", "pnl", "exit_reason",
        "exit_time", "signal__candle_time", "signal__symbol", "signal__book_strategy__name",
    )  # fmt: skip
    return [
        judged(shadow, paper[shadow["signal_id"]], orders, shadow["signal_id"])
        for shadow in shadows
        if shadow["signal_id"] in paper
    ]


def _fee(order: dict[str, Any]) -> Decimal:
    """An order's fee in the quote currency: a fee in the base currency at its price."""
    fee = order["fee_cost"] or Decimal(0)
    if order["fee_currency"] == order["symbol"].split("/")[0]:
        return fee * order["average_price"]
    return fee


def _minus(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return None if a is None or b is None else a - b


def judged(
    shadow: dict[str, Any], paper: dict[str, Any], orders: dict[Any, Any], signal_id: int
) -> dict[str, Any]:
    """A pair and its verdicts, as the fidelity page defines them: the executed trade is
    the live one when the entry order filled (at the orders' average prices, P&L net of
    both fees, exit reason and time the paper trade's once the exit order filled), the
    paper trade otherwise; differences are executed minus shadow."""
    entry, exit_ = orders.get((signal_id, "entry")), orders.get((signal_id, "exit"))
    live = entry is not None
    live_exit = exit_["average_price"] if exit_ is not None else None
    if live:
        executed_entry = entry["average_price"]
        executed_exit = live_exit
        if live_exit is not None:
            direction = 1 if shadow["side"] == "long" else -1
            moved = _minus(live_exit, entry["average_price"])
            executed_pnl = (
                None
                if moved is None
                else direction * moved * exit_["filled"] - _fee(entry) - _fee(exit_)
            )
        else:
            executed_pnl = None
    else:
        executed_entry, executed_exit = paper["entry_price"], paper["exit_price"]
        executed_pnl = paper["pnl"]
    still_open = live and live_exit is None
    executed_time = None if still_open else paper["exit_time"]
    executed_reason = "" if still_open else paper["exit_reason"]
    executed_closed = (live and live_exit is not None) or (not live and paper["status"] == "closed")
    compared = shadow["status"] == "closed" or executed_closed
    reason_agrees = shadow["exit_reason"] == executed_reason
    time_agrees = shadow["exit_time"] == executed_time
    pnl_difference = _minus(executed_pnl, shadow["pnl"])
    pnl_off = pnl_difference is None or abs(pnl_difference) > Decimal("0.01")
    same_cent = (
        shadow["pnl"] is not None
        and executed_pnl is not None
        and shadow["pnl"].quantize(CENT, ROUND_HALF_UP)
        == executed_pnl.quantize(CENT, ROUND_HALF_UP)
    )
    differences = {
        "entry": _minus(executed_entry, shadow["entry_price"]),
        "exit": _minus(executed_exit, shadow["exit_price"]),
        "pnl": pnl_difference,
    }
    return {
        "time": shadow["signal__candle_time"],
        "strategy": shadow["signal__book_strategy__name"],
        "symbol": shadow["signal__symbol"],
        "side": shadow["side"],
        "live": live,
        "compared": compared,
        "exact": compared and reason_agrees and time_agrees and same_cent,
        "disagrees": compared and (not reason_agrees or not time_agrees or pnl_off),
        "reason_differs": compared and not reason_agrees,
        "time_differs": compared and not time_agrees,
        "pnl_differs": compared and pnl_off,
        "differences": {
            name: abs(value) if compared and value is not None else None
            for name, value in differences.items()
        },
    }


def reference(pairs: list[dict[str, Any]], filters: Filters) -> dict[str, Any]:
    """The page's summary of ``filters``' window computed in Python from the pairs of
    ``read_pairs``: counts, and per difference the mean and largest absolute value over
    the compared pairs that have one."""
    kept = [
        pair
        for pair in pairs
        if (filters.since is None or pair["time"] >= filters.since)
        and (filters.until is None or pair["time"] < filters.until)
        and (not filters.strategy or pair["strategy"] == filters.strategy)
        and (not filters.symbol or pair["symbol"] == filters.symbol)
        and (not filters.side or pair["side"] == filters.side)
    ]

    def count(name: str) -> int:
        return sum(1 for pair in kept if pair[name])

    def difference(name: str, places: Any) -> dict[str, Decimal | None]:
        values = [pair["differences"][name] for pair in kept]
        present = [value for value in values if value is not None]
        if not present:
            return {"mean": None, "max": None}
        with localcontext() as exact:
            exact.prec = 200
            total = sum(present, Decimal(0))
        return {"mean": places(total / len(present)), "max": places(max(present))}

    live, compared = count("live"), count("compared")
    return {
        "pairs": len(kept),
        "live": live,
        "paper": len(kept) - live,
        "compared": compared,
        "not_compared": len(kept) - compared,
        "exact": count("exact"),
        "disagreements": count("disagrees"),
        "reason_differs": count("reason_differs"),
        "time_differs": count("time_differs"),
        "pnl_differs": count("pnl_differs"),
        "entry_difference": difference("entry", fine),
        "exit_difference": difference("exit", fine),
        "pnl_difference": difference("pnl", cents),
    }


def _windows(first: datetime, last: datetime, count: int) -> list[tuple[Any, Any]]:
    """All history, then windows at random instants (partial first and last days),
    some midnight-aligned, some within one day."""
    draw = random.Random(20261207)
    span = (last - first).total_seconds()
    found: list[tuple[Any, Any]] = [(None, None)]
    for index in range(count):
        a = first + timedelta(seconds=draw.uniform(-3600, span + 3600))
        width = draw.uniform(0, 86400) if index % 5 == 0 else draw.uniform(0, span / 2)
        b = a + timedelta(seconds=width)
        if draw.random() < 0.25:
            a = a.replace(hour=0, minute=0, second=0, microsecond=0)
        if draw.random() < 0.25:
            b = b.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        found.append((a if draw.random() > 0.1 else None, b if draw.random() > 0.1 else None))
    return found


def check_windows(book: Book, count: int) -> int:
    """The page's summary equals the reference for all history and ``count`` random
    windows, each unfiltered and narrowed by strategy, symbol and side; returns how many
    of them had disagreements."""
    clock = book_clock(book)
    times = sorted(
        PaperTrade.objects.filter(book=book).values_list("signal__candle_time", flat=True)
    )
    strategies = sorted(BookStrategy.objects.filter(book=book).values_list("name", flat=True))
    draw = random.Random(7)
    pairs = read_pairs(book)
    disagreeing = 0
    for since, until in _windows(times[0], times[-1], count):
        narrowings: list[dict[str, str]] = [
            {},
            {"strategy": draw.choice(strategies)},
            {"symbol": draw.choice(SYMBOLS)},
            {"side": draw.choice(("long", "short"))},
            {"strategy": "nope"},
        ]
        for narrowing in narrowings:
            filters = Filters(book=book, since=since, until=until, clock=clock, **narrowing)
            built = fidelity.build(filters)
            expected = reference(pairs, filters)
            assert built["summary"] == expected, (since, until, narrowing)
            disagreeing += expected["disagreements"] > 0
            assert len(built["disagreements"]) == min(expected["disagreements"], 100)
    return disagreeing


def test_the_summary_equals_the_plain_reference_for_any_window(fresh_signals_forever):
    _market_data(count=1200)
    book = _replay()
    assert check_windows(book, 12) == 0, "paper trades and their shadows agree"
    closed = list(
        PaperTrade.objects.filter(book=book, status="closed")
        .select_related("signal")
        .order_by("signal__candle_time")
    )
    assert len(closed) > 40
    draw = random.Random(3)
    for trade in draw.sample(closed, 8):
        change_exit(trade, Decimal(draw.choice(("1.5", "-0.37", "0.004", "12.123456789"))))
    assert check_windows(book, 25) > 20
    # Live fills, written without a refresh: their days are read from the pairs.
    for trade in draw.sample(closed, 4):
        fill(trade, Decimal(draw.choice(("0.001", "-0.0005", "0"))))
    filters = Filters(book=book, clock=book_clock(book))
    assert fidelity.build(filters)["summary"]["live"] == 4
    assert check_windows(book, 25) > 20
