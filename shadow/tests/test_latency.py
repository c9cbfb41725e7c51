"""The decision latency histogram: kept by replays and live runs as a rebuild sums it
(decisions on days before a run's first candle day included), its percentiles within
1 % of numpy's over the waits of a plain loop, an empty book, and a book whose rollups
were built before the histogram existed rebuilt on its first read."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import time_machine

from analytics.tests.factories import BookFactory, SignalFactory, SignalTransitionFactory
from markets.bars import timeframe_delta
from shadow import latency, rollups
from shadow.live import book_advance
from shadow.models import LatencyHistogram, RollupState
from shadow.tests.test_live import END, _market_data, _replay
from signals.models import Book, Signal, SignalState
from signals.services import book_live

pytestmark = pytest.mark.django_db
QS = (0.0, 0.01, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


def stored(book: Book) -> list[tuple[Any, ...]]:
    """The book's histogram rows: decision day, candle day, bucket, count."""
    return sorted(
        LatencyHistogram.objects.filter(book=book).values_list("day", "candle_day", "bucket", "n")
    )


def rebuilt(book: Book) -> list[tuple[Any, ...]]:
    """The histogram as kept, then rebuilt from the rows (what it must equal)."""
    kept = stored(book)
    rollups.rebuild(book.pk)
    return kept


def plain_waits(book: Book) -> list[tuple[datetime, float]]:
    """Each decided signal's decision time and wait, one signal at a time by the rule
    (the first transition out of ``generated``, else the signal's ``created_at``, minus
    the candle's close; an unreadable timeframe left out). Checks on the way that the
    histogram counts them on their decision's and their candle's UTC days."""
    found = []
    days: Counter[tuple[Any, ...]] = Counter()
    for signal in Signal.objects.filter(book=book).exclude(state=SignalState.GENERATED):
        try:
            candle = timeframe_delta(signal.timeframe)
        except ValueError:
            continue
        decision = signal.transitions.filter(from_state="generated").order_by("id").first()
        decided = decision.created_at if decision else signal.created_at
        found.append((decided, (decided - (signal.candle_time + candle)).total_seconds()))
        days[(decided.astimezone(UTC).date(), signal.candle_time.astimezone(UTC).date())] += 1
    counted: Counter[tuple[Any, ...]] = Counter()
    for day, candle_day, _bucket, n in stored(book):
        counted[(day, candle_day)] += n
    assert counted == days
    return found


def assert_percentiles(book: Book, waits: list[float]) -> None:
    """The histogram's percentiles against numpy's over ``waits``: within 1 % of the
    larger of the two waits each lies between, plus the bucket of the shortest waits
    (so within 1 % of numpy's figure when both have the same sign)."""
    counts = latency.histogram(book.pk)
    assert sum(n for _bucket, n in counts) == len(waits)
    found = latency.percentiles(counts, QS)
    assert found is not None
    ordered = sorted(waits)
    for q, estimate in zip(QS, found, strict=True):
        exact = float(np.percentile(waits, 100 * q))
        low = math.floor((len(waits) - 1) * q)
        a, b = ordered[low], ordered[min(low + 1, len(waits) - 1)]
        bound = (latency.RATIO - 1) * max(abs(a), abs(b)) + latency.SMALLEST
        assert abs(estimate - exact) <= bound * (1 + 1e-9), (q, estimate, exact)
        if a * b > 0:
            assert estimate == pytest.approx(exact, rel=0.01, abs=latency.SMALLEST)


def test_replays_and_live_runs_keep_the_histogram_a_rebuild_gives(fresh_signals_forever):
    _market_data()
    with time_machine.travel(END + timedelta(days=3, minutes=7), tick=True):
        replayed = _replay()
    assert rebuilt(replayed) == stored(replayed)
    assert [day for day, *_ in stored(replayed)] and {d for d, *_ in stored(replayed)} == {
        (END + timedelta(days=3)).date()
    }
    assert_percentiles(replayed, [wait for _decided, wait in plain_waits(replayed)])

    book = book_live()
    first_close = END - timedelta(hours=599)
    for hours in (1, 40, 41, 150, 333, 334, 500, 600):
        now = first_close + timedelta(hours=hours)
        # Each run is written a few minutes after its candles closed, wall clock.
        with time_machine.travel(now + timedelta(minutes=hours % 13, seconds=hours), tick=True):
            book_advance(book_id=book.pk, now=now)
        assert rebuilt(book) == stored(book)
    days = {day for day, *_ in stored(book)}
    assert len(days) >= 4, "decisions on several days"
    waits = [wait for _decided, wait in plain_waits(book)]
    assert min(waits) > 0 and len(waits) > 20
    assert_percentiles(book, waits)


def test_a_run_written_before_its_candles_closed_re_sums_the_days_of_its_decisions(
    fresh_signals_forever,
):
    """A wall clock behind the market (decisions dated before the run's first candle
    day): the run's decisions land on days before the day it refreshes from, and are
    summed all the same."""
    _market_data()
    book = book_live()
    first_close = END - timedelta(hours=599)
    with time_machine.travel(first_close + timedelta(hours=300, minutes=5), tick=True):
        book_advance(book_id=book.pk, now=first_close + timedelta(hours=300))
    before = stored(book)
    behind = first_close - timedelta(days=20)
    with time_machine.travel(behind, tick=True):
        book_advance(book_id=book.pk, now=first_close + timedelta(hours=600))
    new = {day for day, *_ in stored(book)} - {day for day, *_ in before}
    assert behind.date() in new, "the run's decisions are on a day before its candles"
    assert rebuilt(book) == stored(book)
    decided = plain_waits(book)
    assert min(wait for _decided, wait in decided) < 0
    assert_percentiles(book, [wait for _decided, wait in decided])


def test_percentiles_of_every_kind_of_wait_are_within_one_percent():
    """Waits from a millisecond to years, negative ones and zero, on many days and
    timeframes (an unreadable one left out), some decisions logged days after the
    signal was written: the histogram as a rebuild and as refreshes from each day sum
    it, its percentiles against numpy's."""
    rng = np.random.default_rng(3)
    book = BookFactory(name="waits", kind=Book.Kind.LIVE)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    frames = ("1m", "15m", "1h", "4h", "1d", "1w", "bad")
    for i in range(400):
        timeframe = frames[i % len(frames)]
        created = start + timedelta(days=int(rng.integers(0, 30)), seconds=int(rng.integers(86400)))
        magnitude = float(10 ** rng.uniform(-4, 8))
        wait = 0.0 if i % 50 == 0 else (magnitude if i % 5 else -magnitude)
        decided = created + timedelta(days=int(rng.integers(0, 3)) if i % 3 == 0 else 0)
        candle_time = decided - timedelta(seconds=wait) - _delta(timeframe)
        signal = SignalFactory(
            book=book,
            state=SignalState.BLOCKED if i % 2 else SignalState.APPROVED,
            candle_time=candle_time,
            strategy_config__timeframe=timeframe,
        )
        Signal.objects.filter(pk=signal.pk).update(created_at=created)
        if i % 3 == 0:
            step = SignalTransitionFactory(signal=signal, from_state="generated")
            type(step).objects.filter(pk=step.pk).update(created_at=decided)
    SignalFactory(book=book)  # undecided: left out
    Signal.objects.filter(book=book, strategy_config__timeframe="bad").update(timeframe="bad")
    rollups.rebuild(book.pk)
    whole = stored(book)
    decided = plain_waits(book)
    assert len(decided) == 400 - 400 // 7
    assert_percentiles(book, [wait for _decided, wait in decided])
    for day in sorted({d for d, *_ in whole})[::5]:
        rollups.refresh(book.pk, since=datetime.combine(day, datetime.min.time(), tzinfo=UTC))
        assert stored(book) == whole


def _delta(timeframe: str) -> timedelta:
    return timeframe_delta(timeframe) if timeframe != "bad" else timedelta(hours=1)


def test_an_empty_book_has_no_percentiles():
    book = BookFactory(name="empty")
    SignalFactory(book=book)  # generated: not decided
    rollups.rebuild(book.pk)
    assert stored(book) == []
    assert latency.histogram(book.pk) == []
    assert latency.percentiles([], (0.5,)) is None


def test_rollups_built_before_the_histogram_are_rebuilt_on_first_read(fresh_signals_forever):
    from analytics.pages.health import decision_latency

    _market_data(count=300)
    book = _replay()
    kept = stored(book)
    assert kept
    # As a book summed before the histogram existed: the rollups' version alone.
    LatencyHistogram.objects.filter(book=book).delete()
    RollupState.objects.filter(book=book).update(version=rollups.VERSION * 1000)
    figures = decision_latency(book=book, now=END)["all_time"]
    assert stored(book) == kept
    assert RollupState.objects.get(book=book).version == rollups.current_version()
    assert figures["count"] == len(plain_waits(book))
