"""The per-day equity marks (``shadow.equity_marks``): every mark equal to the
per-candle curve (``analytics.selectors.book_equity_curve``) at its day's last close and
to a plain loop over the trades, to the cent, on a replay ending with open trades;
replays and live runs keep the marks a rebuild writes; what a page reads (the stored
marks, the days since the last write computed from their carry, a window's partial last
day) is the curve at each day's last close inside the window."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from analytics.equity import EquityCurve
from analytics.selectors import book_equity_curve
from analytics.tests.conftest import replayed_book as replayed_book  # a fixture
from markets.bars import timeframe_delta
from markets.models import Candle
from markets.timestamps import ms_from_utc
from shadow import equity_marks, rollups
from shadow.live import book_advance
from shadow.models import EquityMark
from shadow.tests.test_live import END, _market_data, _replay
from signals.models import Book, BookState, PaperTrade
from signals.services import book_live

pytestmark = pytest.mark.django_db
DAY_MS = 86_400_000


def stored(book: Book) -> list[tuple[Any, ...]]:
    """The book's marks: day, close, equity to a micro-unit, the carry."""
    return [
        (day, time, round(equity, 6), _rounded(carry))
        for day, time, equity, carry in EquityMark.objects.filter(book=book)
        .order_by("day")
        .values_list("day", "time", "equity", "carry")
    ]


def _rounded(carry: dict[str, Any]) -> tuple[Any, ...]:
    markets = {k: (t, round(r, 6)) for k, (t, r) in carry["markets"].items()}
    return tuple(sorted(markets.items())), tuple(sorted(carry["open"]))


def rebuilt(book: Book) -> list[tuple[Any, ...]]:
    """The marks as kept; then the book rebuilt (``stored`` gives what it must equal)."""
    kept = stored(book)
    rollups.rebuild(book.pk)
    return kept


def day_closes(curve: EquityCurve) -> tuple[list[int], list[float]]:
    """The curve at the last close of each UTC day."""
    if not len(curve):
        return [], []
    days = curve.time // DAY_MS
    last = np.flatnonzero(np.append(days[1:] != days[:-1], True))
    return curve.time[last].tolist(), curve.equity[last].tolist()


def cents(value: float) -> float:
    return round(value, 2)


def plain_mark(book: Book, close_ms: int) -> float:
    """The equity at the close ``close_ms`` by the rule, one trade at a time: per market
    with a trade, its last candle (from the book's first entry to the last it processed)
    closing at or before then; the trades closed with an exit at or before that candle's
    open count their P&L, the others entered by then are marked at its close."""
    trades = list(
        PaperTrade.objects.filter(
            book=book,
            entry_time__isnull=False,
            quantity__isnull=False,
            entry_price__isnull=False,
        ).select_related("signal")
    )
    first = min(t.entry_time for t in trades)
    last_time = BookState.objects.get(book=book).state["last_time"]
    total = 0.0
    for market in {(t.signal.exchange, t.signal.symbol, t.signal.timeframe) for t in trades}:
        step = timeframe_delta(market[2])
        key = " ".join(market)
        candles = Candle.objects.filter(
            exchange=market[0],
            symbol=market[1],
            timeframe=market[2],
            open_time__gte=first,
            open_time__lte=datetime.fromtimestamp(last_time[key] / 1000, UTC),
        )
        done = [c for c in candles if ms_from_utc(c.open_time + step) <= close_ms]
        if not done:
            continue
        candle = max(done, key=lambda c: c.open_time)
        for t in trades:
            if (t.signal.exchange, t.signal.symbol, t.signal.timeframe) != market:
                continue
            closed = t.status == "closed" and t.exit_time is not None
            if closed and t.exit_time <= candle.open_time:
                total += float(t.pnl or 0)
                continue
            if t.entry_time <= candle.open_time:
                direction = 1 if t.side == "long" else -1
                total += (
                    direction * float(t.quantity) * (float(candle.close) - float(t.entry_price))
                )
    return total


def reopen_the_last_trades(book: Book, count: int = 2) -> None:
    """The book's last ``count`` paper trades by entry made still open at its end (the
    replay closes every trade by its last candle)."""
    last = PaperTrade.objects.filter(book=book, entry_time__isnull=False).order_by("-entry_time")
    ids = list(last.values_list("pk", flat=True)[:count])
    PaperTrade.objects.filter(pk__in=ids).update(
        status="open", exit_time=None, exit_price=None, pnl=None, exit_reason=""
    )


def test_every_mark_is_the_curve_at_its_days_last_close(replayed_book):
    reopen_the_last_trades(replayed_book)
    rollups.rebuild(replayed_book.pk)
    curve = book_equity_curve(book=replayed_book)
    times, values = day_closes(curve)
    marks = list(
        EquityMark.objects.filter(book=replayed_book).order_by("day").values_list("time", "equity")
    )
    assert len(marks) >= 20
    assert [t for t, _ in marks] == times
    assert [cents(e) for _, e in marks] == [cents(v) for v in values]
    for time, equity in marks[::5] + marks[-1:]:
        assert cents(equity) == cents(plain_mark(replayed_book, time))
    # The page's read: the stored marks, the newest day computed from the carry.
    assert [(t, cents(e)) for t, e in equity_marks.book_marks(replayed_book.pk)] == [
        (t, cents(v)) for t, v in zip(times, values, strict=True)
    ]


@pytest.mark.parametrize("days", [1, 3, 7])
def test_a_rebuild_in_stretches_writes_the_marks_of_one_pass(replayed_book, monkeypatch, days):
    """A rebuild computes the marks ``REBUILD_DAYS`` at a time (bounded memory on a long
    history); in stretches of 1, 3 or 7 days it writes what one pass writes, carry
    included, and every mark is still the curve at its day's last close."""
    reopen_the_last_trades(replayed_book)
    rollups.rebuild(replayed_book.pk)
    one_pass = stored(replayed_book)
    monkeypatch.setattr(equity_marks, "REBUILD_DAYS", days)
    calls = {"stretch": 0, "whole": 0}
    carry_on, from_every_trade = equity_marks._from, equity_marks._everything

    def stretch(*args: Any, **kwargs: Any) -> Any:
        calls["stretch"] += 1
        return carry_on(*args, **kwargs)

    def whole(*args: Any, **kwargs: Any) -> Any:
        calls["whole"] += 1
        return from_every_trade(*args, **kwargs)

    monkeypatch.setattr(equity_marks, "_from", stretch)
    monkeypatch.setattr(equity_marks, "_everything", whole)
    equity_marks.rebuild(replayed_book.pk)
    # The first stretch from every trade, each later one from the carry: no fallback.
    assert calls["whole"] == 1
    assert calls["stretch"] >= len(one_pass) // days - 1
    assert stored(replayed_book) == one_pass
    times, values = day_closes(book_equity_curve(book=replayed_book))
    marks = EquityMark.objects.filter(book=replayed_book).order_by("day")
    assert [(t, cents(e)) for t, e in marks.values_list("time", "equity")] == [
        (t, cents(v)) for t, v in zip(times, values, strict=True)
    ]


def test_a_window_reads_the_curve_at_each_days_last_close_inside_it(replayed_book):
    reopen_the_last_trades(replayed_book)
    rollups.rebuild(replayed_book.pk)
    curve = book_equity_curve(book=replayed_book)
    low, high = int(curve.time[0]), int(curve.time[-1])
    chance = random.Random(5)
    windows = [(None, None), (None, high), (low, None), (high - DAY_MS, high + 1)]
    for _ in range(25):
        a, b = sorted(chance.randrange(low - DAY_MS, high + DAY_MS) for _ in range(2))
        windows.append((a, b))
    for since, until in windows:
        keep = np.ones(len(curve), dtype=bool)
        if since is not None:
            keep &= curve.time >= since
        if until is not None:
            keep &= curve.time < until
        times, values = day_closes(EquityCurve(curve.time[keep], curve.equity[keep]))
        found = equity_marks.book_marks(replayed_book.pk, since_ms=since, until_ms=until)
        assert [(t, cents(e)) for t, e in found] == [
            (t, cents(v)) for t, v in zip(times, values, strict=True)
        ], (since, until)


def test_replays_and_live_runs_keep_the_marks_a_rebuild_gives(fresh_signals_forever):
    _market_data()
    replayed = _replay()
    assert stored(replayed) and rebuilt(replayed) == stored(replayed)

    book = book_live()
    first_close = END - timedelta(hours=599)
    stale = False
    for hours in (1, 40, 41, 150, 151, 333, 334, 500, 530, 600):
        book_advance(book_id=book.pk, now=first_close + timedelta(hours=hours))
        # What a page reads, the days since the last write included.
        curve = book_equity_curve(book=book)
        times, values = day_closes(curve)
        assert [(t, cents(e)) for t, e in equity_marks.book_marks(book.pk)] == [
            (t, cents(v)) for t, v in zip(times, values, strict=True)
        ], hours
        # A run that only processed candles writes nothing: the newest stored day may lag
        # (the page computes it, above), every day before it is a rebuild's.
        kept = rebuilt(book)
        assert kept[:-1] == stored(book)[: len(kept) - 1], hours
        assert [m[:2] for m in kept][-1:] <= [m[:2] for m in stored(book)][-1:], hours
        stale |= kept[-1:] != stored(book)[-1:]
    assert stale, "a run wrote no signal: the newest day was read from the carry"
    assert len(stored(book)) >= 20
    assert PaperTrade.objects.filter(book=book).count() > 5


def test_a_book_without_candles_has_no_marks_and_a_refresh_writes_none(replayed_book):
    Candle.objects.all().delete()
    rollups.rebuild(replayed_book.pk)
    assert not EquityMark.objects.filter(book=replayed_book).exists()
    assert equity_marks.book_marks(replayed_book.pk) == []
    rollups.refresh(replayed_book.pk, since=END)
    assert not EquityMark.objects.filter(book=replayed_book).exists()


def test_a_trade_in_a_new_market_rebuilds_the_marks(replayed_book):
    """The timeline gains the new market's candles from the book's first entry: the
    refresh gives what a rebuild gives, every mark the curve at its day's last close."""
    from decimal import Decimal

    from analytics.tests.factories import PaperTradeFactory, SignalFactory
    from signals.models import SignalState
    from signals.tests.candles import store_walk
    from signals.tests.factories import START

    reopen_the_last_trades(replayed_book)
    rollups.rebuild(replayed_book.pk)
    before = stored(replayed_book)
    store_walk(600, seed=12, symbol="ETH/USD")
    entry = START + timedelta(hours=500)
    signal = SignalFactory(
        book=replayed_book,
        exchange="testex",
        symbol="ETH/USD",
        timeframe="1h",
        candle_time=entry - timedelta(hours=1),
        state=SignalState.APPROVED,
    )
    PaperTradeFactory(
        signal=signal,
        status="open",
        entry_time=entry,
        quantity=Decimal("0.5"),
        entry_price=Decimal("30000"),
        pnl=None,
        exit_reason="",
    )
    rollups.refresh(replayed_book.pk, since=signal.candle_time)
    kept = rebuilt(replayed_book)
    assert kept == stored(replayed_book) and kept != before
    curve = book_equity_curve(book=replayed_book)
    times, values = day_closes(curve)
    assert [(t, cents(e)) for t, e in equity_marks.book_marks(replayed_book.pk)] == [
        (t, cents(v)) for t, v in zip(times, values, strict=True)
    ]
