"""Equity segments (``analytics.segments``): kept by every write equal to a rebuild from
the rows, and the leaderboard's drawdown, Sharpe, profit factor and win rate folded from
them equal to a plain loop over the window's trades, to the cent."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from analytics import segments
from analytics.filters import Filters, book_clock
from analytics.models import EquitySegment
from analytics.numbers import cents, rate, ratio
from analytics.pages import leaderboard
from shadow import rollups
from shadow.live import book_advance
from shadow.models import RollupState, ShadowTrade
from shadow.tests.test_live import END, SYMBOLS, _market_data, _replay
from signals.models import Book, BookStrategy, PaperTrade
from signals.services import book_live

pytestmark = pytest.mark.django_db


def named(book: Book) -> list[tuple[Any, ...]]:
    """The book's segments with strategy versions by name (ids differ between books)."""
    names = {s.pk: s.name for s in BookStrategy.objects.filter(book=book)}
    return sorted(
        ((*row[:3], names.get(row[3]), *row[4:]) for row in segments.stored(book.pk)),
        key=lambda row: tuple("" if v is None else str(v) for v in row),
    )


def rebuilt(book: Book) -> list[tuple[Any, ...]]:
    kept = segments.stored(book.pk)
    rollups.rebuild(book.pk)
    return kept


def test_live_runs_keep_the_segments_a_rebuild_gives_and_a_replay_writes(fresh_signals_forever):
    _market_data(count=1500)  # 2023-12-30 to 2024-02-29: three months
    replayed = _replay()
    book = book_live()
    first_close = END - timedelta(hours=1499)
    # Runs inside a month, across a month's end, and several months at once.
    for hours in (1, 40, 41, 150, 333, 334, 500, 700, 780, 781, 1100, 1500):
        book_advance(book_id=book.pk, now=first_close + timedelta(hours=hours))
        kept = rebuilt(book)
        assert kept == segments.stored(book.pk)
    rows = EquitySegment.objects.filter(book=book)
    assert rows.filter(series="guarded", strategy_id__isnull=False).exists()
    assert rows.filter(series="unguarded", strategy_id__isnull=True, symbol="").exists()
    assert set(rows.values_list("symbol", flat=True)) == {"", *SYMBOLS}
    assert rows.filter(grain="day", fall__gt=0).exists(), "some day falls inside itself"
    assert rows.filter(grain="month").values("day").distinct().count() >= 2
    assert named(book) == named(replayed)
    assert rebuilt(replayed) == segments.stored(replayed.pk)


def test_a_write_in_a_new_month_writes_the_month_row_of_the_month_that_closed(
    fresh_signals_forever,
):
    """A book whose trades ended in January (its open month, without a month row), then
    written from February 1st on: January's month row is written, as a rebuild would."""
    _market_data(count=1500)  # 2023-12-30 to 2024-02-29
    book = _replay()
    whole = segments.stored(book.pk)
    february = date(2024, 2, 1)
    assert EquitySegment.objects.filter(book=book, grain="day", day__gte=february).exists()
    # What a rebuild writes for the trades up to January 31st: no row of February, and
    # no month row of January (then the open month).
    EquitySegment.objects.filter(book=book, grain="day", day__gte=february).delete()
    EquitySegment.objects.filter(book=book, grain="month", day__gte=date(2024, 1, 1)).delete()
    segments.refresh(book.pk, february)
    assert segments.stored(book.pk) == whole
    assert EquitySegment.objects.filter(book=book, grain="month", day=date(2024, 1, 1)).exists()


def test_a_book_built_before_the_segments_existed_is_rebuilt_on_first_read(
    fresh_signals_forever, trader_client
):
    _market_data(count=300)
    book = _replay()
    kept = segments.stored(book.pk)
    assert kept
    EquitySegment.objects.filter(book=book).delete()
    # As the rollups recorded it before the extension was registered.
    RollupState.objects.filter(book=book).update(
        version=rollups.current_version() - segments.VERSION
    )
    response = trader_client.get(
        reverse("analytics:api-page", args=["leaderboard"]), {"book": book.pk}
    )
    assert response.status_code == 200
    assert segments.stored(book.pk) == kept
    assert RollupState.objects.get(book=book).version == rollups.current_version()


# --- The leaderboard against a plain loop -------------------------------------------------


def _reference(trades: list[tuple[datetime, int, int, Decimal]]) -> dict[str, Any]:
    """``analytics.metrics``' statistics by a plain loop over ``(exit time, kind, id,
    P&L)`` trades: exact decimals, the trades in exit order (exit time, paper before
    shadow, id)."""
    trades = sorted(trades, key=lambda t: t[:3])
    equity = peak = worst = profit = loss = Decimal(0)
    wins = 0
    days: dict[date, Decimal] = defaultdict(Decimal)
    for exit_time, _kind, _id, pnl in trades:
        equity += pnl
        peak = max(peak, equity)
        worst = max(worst, peak - equity)
        if pnl > 0:
            profit += pnl
            wins += 1
        elif pnl < 0:
            loss -= pnl
        days[exit_time.astimezone(UTC).date()] += pnl
    sharpe = None
    if days:
        first, last = min(days), max(days)
        daily = [float(days.get(first + timedelta(i), 0)) for i in range((last - first).days + 1)]
        if len(daily) >= 2:
            mean = sum(daily) / len(daily)
            spread = math.sqrt(sum((x - mean) ** 2 for x in daily) / (len(daily) - 1))
            sharpe = mean / spread * math.sqrt(365) if spread > 0 else None
    return {
        "trades": len(trades),
        "wins": wins,
        "win_rate": rate(wins / len(trades)) if trades else None,
        "profit_factor": ratio(profit / loss) if loss > 0 else None,
        "max_drawdown": cents(worst),
        "sharpe": ratio(sharpe),
        "total": equity,
    }


def _shown(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: figures[k] for k in ("trades", "wins", "win_rate", "profit_factor", "sharpe")} | {
        "max_drawdown": figures["max_drawdown"]
    }


def _windows(first: datetime, last: datetime, count: int) -> list[tuple[Any, Any, str]]:
    """All history, then windows at random instants (partial first and last days),
    some midnight-aligned, some within one day, with and without a symbol."""
    draw = random.Random(20261207)
    span = (last - first).total_seconds()
    found: list[tuple[Any, Any, str]] = [(None, None, ""), (None, None, SYMBOLS[1])]
    for index in range(count):
        a = first + timedelta(seconds=draw.uniform(-3600, span + 3600))
        width = draw.uniform(0, 86400) if index % 5 == 0 else draw.uniform(0, span / 2)
        b = a + timedelta(seconds=width)
        if draw.random() < 0.25:
            a = a.replace(hour=0, minute=0, second=0, microsecond=0)
        if draw.random() < 0.25:
            b = b.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        found.append(
            (
                a if draw.random() > 0.1 else None,
                b if draw.random() > 0.1 else None,
                draw.choice(("", "", *SYMBOLS)),
            )
        )
    return found


def test_leaderboard_statistics_equal_a_plain_loop_for_any_window(fresh_signals_forever):
    _market_data(count=3000)
    book = _replay()
    strategy_of = {}
    symbol_of = {}
    rows: list[tuple[datetime, int, int, Decimal, bool]] = []  # ..., shadow
    papers = PaperTrade.objects.filter(
        book=book, status="closed", pnl__isnull=False, exit_time__isnull=False
    ).select_related("signal")
    shadows = ShadowTrade.objects.filter(
        book=book,
        group="blocked",
        status="closed",
        pnl__isnull=False,
        exit_time__isnull=False,
        signal__state="blocked",
    ).select_related("signal")
    for kind, trades in ((0, papers), (1, shadows)):
        for t in trades:
            strategy_of[(kind, t.pk)] = t.signal.book_strategy_id
            symbol_of[(kind, t.pk)] = t.signal.symbol
            rows.append((t.exit_time, kind, t.pk, t.pnl, kind == 1))
    assert sum(1 for r in rows if not r[4]) > 60 and sum(1 for r in rows if r[4]) > 30
    exits = sorted(r[0] for r in rows)
    # Trades closing at one instant: their order is the defined one, not the query's.
    assert len(set(exits)) < len(exits)
    clock = book_clock(book)
    checked = 0
    for since, until, symbol in _windows(exits[0], exits[-1], 40):
        filters = Filters(book=book, since=since, until=until, symbol=symbol, clock=clock)
        page = leaderboard.build(filters)

        def inside(row: tuple[Any, ...], since: Any = since, until: Any = until) -> bool:
            return (since is None or row[0] >= since) and (until is None or row[0] < until)

        window = [r for r in rows if inside(r)]
        for shown in page["strategies"]:
            mine = [r for r in window if strategy_of[(r[1], r[2])] == shown["id"]]
            guarded = _reference([r[:4] for r in mine if not r[4]])
            unguarded = _reference([r[:4] for r in mine])
            assert _shown(shown["guarded"]) == {k: v for k, v in guarded.items() if k != "total"}, (
                since,
                until,
                symbol,
                shown["name"],
            )
            assert _shown(shown["unguarded"]) == {
                k: v for k, v in unguarded.items() if k != "total"
            }, (since, until, symbol, shown["name"])
            assert shown["guarded"]["total_pnl"] == cents(guarded["total"])
            checked += guarded["trades"] > 0
        book_rows = [r for r in window if not symbol or symbol_of[(r[1], r[2])] == symbol]
        for series, shadow in (("guarded", False), ("unguarded", True)):
            expected = _reference([r[:4] for r in book_rows if shadow or not r[4]])
            assert _shown(page["book"][series]) == {
                k: v for k, v in expected.items() if k != "total"
            }, (since, until, symbol, series)
            assert page["book"][series]["total_pnl"] == cents(expected["total"])
    assert checked > 40, "the windows hold trades"


def test_the_fold_of_segments_is_the_drawdown_of_the_whole_sequence():
    """Any cut of a sequence into segments folds to its drawdown, total and gross sums:
    segments summed in Python as the query sums a day."""
    draw = random.Random(7)
    for _ in range(300):
        pnl = [Decimal(draw.randint(-500, 500)) / 100 for _ in range(draw.randint(0, 30))]
        cuts = sorted(draw.sample(range(len(pnl) + 1), k=min(len(pnl) + 1, draw.randint(0, 5))))
        pieces, start = [], 0
        for cut in [*cuts, len(pnl)]:
            pieces.append(pnl[start:cut])
            start = cut
        found = []
        for day, piece in enumerate(pieces):
            run = peak = fall = high = low = Decimal(0)
            for value in piece:
                run += value
                peak = max(peak, run)
                fall = max(fall, peak - run)
                high, low = max(high, run), min(low, run)
            found.append(
                {
                    "day": date(2024, 1, 1) + timedelta(day),
                    "n": len(piece),
                    "wins": sum(v > 0 for v in piece),
                    "losses": sum(v < 0 for v in piece),
                    "total": run,
                    "high": high,
                    "low": low,
                    "fall": fall,
                    "gross_profit": sum((v for v in piece if v > 0), Decimal(0)),
                    "gross_loss": -sum((v for v in piece if v < 0), Decimal(0)),
                    "squares": run * run,
                    "first": date(2024, 1, 1) + timedelta(day),
                    "last": date(2024, 1, 1) + timedelta(day),
                }
            )
        folded = segments.fold(found)
        expected = _reference(
            [(datetime(2024, 1, 1, tzinfo=UTC), 0, i, v) for i, v in enumerate(pnl)]
        )
        assert cents(folded.max_drawdown) == expected["max_drawdown"]
        assert folded.total_pnl == expected["total"]
        assert folded.trades == len(pnl)
