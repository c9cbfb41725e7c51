"""Shadow fidelity per day (``analytics.fidelity_rollup``): kept by every write equal to
a rebuild from the rows, and the fidelity page's summary read from it equal to the one
aggregate query over the window's pairs the page ran before (kept here as the plain
reference), with and without disagreements, paper and live."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Avg, Count, Max, Q
from django.urls import reverse

from analytics import fidelity_rollup
from analytics.filters import Filters, book_clock
from analytics.models import FidelityDay
from analytics.numbers import cents, fine
from analytics.pages import fidelity
from analytics.shadow_fidelity import fidelity_pairs, with_verdicts
from shadow import rollups
from shadow.live import book_advance
from shadow.models import RollupState
from shadow.tests.test_live import END, SYMBOLS, _market_data, _replay
from signals.models import Book, BookStrategy, ExchangeOrder, PaperTrade
from signals.services import book_live

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_signals_forever(settings):
    settings.SIGNAL_MAX_AGE = timedelta(days=36500)


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


# --- The summary against the single aggregate query ---------------------------------------


def reference(filters: Filters) -> dict[str, Any]:
    """The page's summary as it was computed before the rows: one aggregate over every
    pair of the window."""
    pairs = with_verdicts(fidelity_pairs(filters))
    compared = Q(compared=True)
    row = pairs.aggregate(
        n_pairs=Count("id"),
        n_live=Count("id", filter=Q(live=True)),
        n_compared=Count("id", filter=compared),
        n_exact=Count("id", filter=Q(exact=True)),
        n_disagreements=Count("id", filter=Q(disagrees=True)),
        n_reason_differs=Count("id", filter=compared & Q(reason_agrees=False)),
        n_time_differs=Count("id", filter=compared & Q(time_agrees=False)),
        n_pnl_differs=Count("id", filter=compared & Q(pnl_off=True)),
        n_mean_entry=Avg("abs_entry_difference", filter=compared),
        n_max_entry=Max("abs_entry_difference", filter=compared),
        n_mean_exit=Avg("abs_exit_difference", filter=compared),
        n_max_exit=Max("abs_exit_difference", filter=compared),
        n_mean_pnl=Avg("abs_pnl_difference", filter=compared),
        n_max_pnl=Max("abs_pnl_difference", filter=compared),
    )
    return {
        "pairs": row["n_pairs"],
        "live": row["n_live"],
        "paper": row["n_pairs"] - row["n_live"],
        "compared": row["n_compared"],
        "not_compared": row["n_pairs"] - row["n_compared"],
        "exact": row["n_exact"],
        "disagreements": row["n_disagreements"],
        "reason_differs": row["n_reason_differs"],
        "time_differs": row["n_time_differs"],
        "pnl_differs": row["n_pnl_differs"],
        "entry_difference": {"mean": fine(row["n_mean_entry"]), "max": fine(row["n_max_entry"])},
        "exit_difference": {"mean": fine(row["n_mean_exit"]), "max": fine(row["n_max_exit"])},
        "pnl_difference": {"mean": cents(row["n_mean_pnl"]), "max": cents(row["n_max_pnl"])},
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


def change_exit(trade: PaperTrade, delta: Decimal) -> None:
    """Move a paper trade's exit price by ``delta`` and its P&L as the fill model would,
    and sum its signal's days again, as every writer of the book does."""
    direction = 1 if trade.side == "long" else -1
    trade.exit_price += delta
    trade.pnl += direction * delta * trade.quantity
    trade.save(update_fields=["exit_price", "pnl"])
    rollups.refresh(trade.book_id, since=trade.signal.candle_time)


def fill(trade: PaperTrade, slip: Decimal) -> None:
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
            expected = reference(filters)
            assert built["summary"] == expected, (since, until, narrowing)
            disagreeing += expected["disagreements"] > 0
            assert len(built["disagreements"]) == min(expected["disagreements"], 100)
    return disagreeing


def test_the_summary_equals_the_single_aggregate_for_any_window(fresh_signals_forever):
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
