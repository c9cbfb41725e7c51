"""The guard histograms (``analytics.learning.histogram``): kept by every write equal to a
rebuild and to a plain loop over the decisions, and the learning engine's large-book path
(past ``LEARNING_ROW_LIMIT`` decisions) equal to a plain loop at the grid thresholds, to
the cent, with a walk-forward and verdicts that still tell a helpful threshold from
noise."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from analytics.learning import guard_curves
from analytics.learning import histogram as hist
from analytics.models import GuardHistogram
from analytics.tests import test_learning
from analytics.tests.factories import BookFactory, GuardDecisionFactory, SignalFactory
from analytics.tests.test_learning import STEADY, decide
from shadow import rollups
from shadow.live import book_advance
from shadow.models import ShadowTrade
from shadow.tests.test_live import END, _market_data, _replay
from signals.models import Book, BookGuard, GuardConfig, GuardDecision, SignalState
from signals.services import book_configure, book_live

pytestmark = pytest.mark.django_db


def stored(book: Book) -> list[tuple[Any, ...]]:
    """The book's histogram rows with guard versions by name and version."""
    names = {g.pk: (g.name, g.config_version) for g in BookGuard.objects.filter(book=book)}
    fields = [f.name for f in GuardHistogram._meta.fields if f.name not in ("id", "book")]
    rows = GuardHistogram.objects.filter(book=book).values_list(*fields)
    return sorted(((*names[row[0]], *row[1:]) for row in rows), key=_key)


def _key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row[:4]


def looped(book: Book) -> list[tuple[Any, ...]]:
    """The same rows summed by a plain loop over the book's decisions."""
    edges = {e.book_guard_id: e for e in hist.book_edges(book.pk)}
    names = {g.pk: (g.name, g.config_version) for g in BookGuard.objects.filter(book=book)}
    blocked_by: dict[int, set[str]] = defaultdict(set)
    for signal_id, guard in GuardDecision.objects.filter(
        signal__book=book, verdict=GuardDecision.Verdict.BLOCK
    ).values_list("signal_id", "guard"):
        blocked_by[signal_id].add(guard)
    trades = {t.signal_id: t for t in ShadowTrade.objects.filter(book=book)}
    sums: dict[tuple[Any, ...], list[Any]] = {}
    decisions = GuardDecision.objects.filter(signal__book=book, book_guard_id__in=list(edges))
    for d in decisions.select_related("signal"):
        one = edges[d.book_guard_id]
        value = float(d.observed_value) if d.observed_value is not None else None
        key = (d.book_guard_id, d.signal.candle_time.astimezone(UTC).date(), one.bucket(value))
        row = sums.setdefault(key, [0, 0, Decimal(0), 0.0, 0, Decimal(0), 0.0, 0])
        trade = trades.get(d.signal_id)
        closed = trade is not None and trade.status == "closed" and trade.pnl is not None
        alone = not (blocked_by[d.signal_id] - {d.guard})
        row[0] += 1
        if closed:
            row[1] += 1
            row[2] += trade.pnl
            row[3] += float(trade.pnl) ** 2
            if alone:
                row[4] += 1
                row[5] += trade.pnl
                row[6] += float(trade.pnl) ** 2
        if value is not None:
            recorded = float(d.threshold) if d.threshold is not None else None
            replayed = recorded is not None and bool(
                hist_blocks(one.blocks_when, value, recorded, one.tolerance)
            )
            row[7] += replayed != (d.verdict == GuardDecision.Verdict.BLOCK)
    return sorted(((*names[k[0]], *k[1:], *v) for k, v in sums.items()), key=_key)


def hist_blocks(blocks_when: str, value: float, threshold: float, tolerance: float) -> bool:
    if blocks_when == ">=":
        return value >= threshold
    if blocks_when == ">":
        return value > threshold
    return value < threshold * (1 - tolerance)


def same(kept: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Counts and exact sums equal; the float sums of squares to 1e-9 relative (a float
    sum's last bits depend on the order PostgreSQL adds the rows in)."""
    assert len(kept) == len(expected)
    for got, want in zip(kept, expected, strict=True):
        assert got[:7] == want[:7] and got[8:10] == want[8:10] and got[11] == want[11]
        assert got[7] == pytest.approx(want[7], rel=1e-9, abs=1e-9)
        assert got[10] == pytest.approx(want[10], rel=1e-9, abs=1e-9)


def test_live_runs_keep_the_histogram_a_rebuild_gives_and_a_replay_writes(
    fresh_signals_forever,
):
    _market_data(count=600)
    replayed = _replay()
    book = book_live()
    first_close = END - timedelta(hours=599)
    for hours in (1, 40, 41, 150, 333, 334, 600):
        book_advance(book_id=book.pk, now=first_close + timedelta(hours=hours))
        kept = stored(book)
        rollups.rebuild(book.pk)
        same(stored(book), kept)
    assert GuardHistogram.objects.filter(book=book, closed__gt=0).exists()
    assert GuardHistogram.objects.filter(book=book, bucket__gte=0).exists()
    same(stored(book), stored(replayed))
    same(stored(replayed), looped(replayed))
    kept = stored(replayed)
    rollups.rebuild(replayed.pk)
    same(stored(replayed), kept)


# --- The large-book path ----------------------------------------------------------------


def made_book(configs: tuple[GuardConfig, GuardConfig], rows: list[Any], name: str) -> Book:
    book = BookFactory(name=name)
    book_configure(book=book, strategies=[], guards=list(configs))
    frozen = (
        BookGuard.objects.get(book=book, name="cooldown"),
        BookGuard.objects.get(book=book, name="max open"),
    )
    decide(book, frozen, rows)
    rollups.rebuild(book.pk)
    return book


# The cooldown and max-open guard configurations, as the learning tests make them.
configs = test_learning.configs


@pytest.fixture
def large_path(settings):
    settings.LEARNING_ROW_LIMIT = 0


def curve_of(book: Book, name: str) -> Any:
    return next(c for c in guard_curves(book=book) if c.book_guard.name == name)


def test_the_large_path_curve_equals_a_plain_loop_at_the_grid_thresholds(configs, large_path):
    rng = random.Random(7)
    rows = [
        (
            rng.choice([None, *range(0, 2000, 7)]),
            rng.choice([0, 0, 1, 2]),
            rng.choice([None, f"{rng.uniform(-80, 80):.2f}"]),
        )
        for _ in range(400)
    ]
    book = made_book(configs, rows, "large")
    same(stored(book), looped(book))
    for name in ("cooldown", "max open"):
        curve = curve_of(book, name)
        grid = set(hist.grid(integral=True)) | {curve.current}
        decisions = list(
            GuardDecision.objects.filter(signal__book=book, guard=name).select_related("signal")
        )
        blocked_by: dict[int, set[str]] = defaultdict(set)
        for d in GuardDecision.objects.filter(signal__book=book, verdict="block"):
            blocked_by[d.signal_id].add(d.guard)
        trades = {t.signal_id: t for t in ShadowTrade.objects.filter(book=book)}
        assert curve.decided == len(decisions)
        assert curve.observed == sum(d.observed_value is not None for d in decisions)
        assert curve.mismatches == 0
        assert curve.current_point is not None
        assert len(curve.points) >= (20 if name == "cooldown" else 3)
        for point in curve.points:
            assert point.threshold in grid
            blocked = samples = alone_samples = 0
            pnl = alone_pnl = Decimal(0)
            for d in decisions:
                if d.observed_value is None or not hist_blocks(
                    curve.blocks_when, float(d.observed_value), point.threshold, 0.0
                ):
                    continue
                blocked += 1
                trade = trades[d.signal_id]
                if trade.status == "closed" and trade.pnl is not None:
                    samples += 1
                    pnl += trade.pnl
                    if not blocked_by[d.signal_id] - {name}:
                        alone_samples += 1
                        alone_pnl += trade.pnl
            assert (point.blocked, point.samples, point.alone_samples) == (
                blocked,
                samples,
                alone_samples,
            )
            assert point.net_impact.quantize(Decimal("0.01")) == (-pnl).quantize(Decimal("0.01"))
            assert point.alone_net_impact == -alone_pnl


def test_the_large_path_read_leaves_work_mem_as_it_was(configs, large_path):
    """The per-chunk sums hash with ``hist.SUMS_WORK_MEM`` for their one statement: a
    caller's transaction (here the test's) keeps its own ``work_mem`` after the read."""
    if connection.vendor != "postgresql":
        pytest.skip("the histograms are kept on PostgreSQL only")
    book = made_book(configs, STEADY * 2, "work_mem")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '5MB'")
        assert curve_of(book, "cooldown").points  # read from the histogram
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone()[0] == "5MB"
        with hist._work_mem(hist.SUMS_WORK_MEM) as inner:
            inner.execute("SHOW work_mem")
            assert inner.fetchone()[0] == hist.SUMS_WORK_MEM


def test_the_large_path_recommends_a_threshold_that_truly_helps(configs, large_path):
    book = made_book(configs, STEADY * 8, "steady")
    curve = curve_of(book, "cooldown")
    # The same choice as the row path (test_learning): 240 -> 400 minutes (a grid edge).
    assert curve.recommended is not None and curve.recommended.threshold == 400
    assert curve.recommended.net_impact == 1240 and curve.current_point.net_impact == 800
    assert len(curve.folds) == 3 and curve.out_of_sample_gain > 0
    assert curve.q_value is not None and curve.q_value < 0.05
    assert "wins out of sample" in curve.reason
    # The chunks cover every observed decision once, cut at UTC day boundaries.
    assert curve.folds[0].train + sum(f.test for f in curve.folds) == curve.observed
    days = [
        d.signal.candle_time.astimezone(UTC).date()
        for d in GuardDecision.objects.filter(signal__book=book, guard="cooldown")
        .exclude(observed_value=None)
        .select_related("signal")
    ]
    boundaries = {sum(day < cut for day in days) for cut in set(days)}
    assert {f.train for f in curve.folds} <= boundaries
    assert [f.train for f in curve.folds] == sorted({f.train for f in curve.folds})
    assert curve_of(book, "max open").recommended is None


def test_the_large_path_recommends_nothing_on_noise(configs, large_path):
    rng = random.Random(11)
    rows = [(rng.randrange(0, 1500), 0, f"{rng.gauss(0, 30):.2f}") for _ in range(600)]
    book = made_book(configs, rows, "noise")
    curve = curve_of(book, "cooldown")
    assert curve.recommended is None
    assert curve.reason


def test_a_small_book_keeps_the_row_path(configs):
    book = made_book(configs, STEADY * 8, "small steady")
    assert hist.decision_count(book.pk) == 224
    curve = curve_of(book, "cooldown")
    # The row path tries the observed values themselves (250 is not a grid edge).
    assert 250 in {p.threshold for p in curve.points}


def test_refresh_rewrites_the_days_from_first_only(configs):
    book = made_book(configs, STEADY * 4, "refresh")
    kept = stored(book)
    first = min(row[2] for row in kept)
    later = max(row[2] for row in kept)
    # A decision of the last day changes: its rows alone differ after a refresh.
    decision = (
        GuardDecision.objects.filter(signal__book=book, guard="cooldown")
        .order_by("-signal__candle_time")
        .first()
    )
    assert decision is not None
    GuardDecision.objects.filter(pk=decision.pk).update(observed_value=Decimal(5))
    hist.refresh(book.pk, later)
    refreshed = stored(book)
    same([r for r in refreshed if r[2] < later], [r for r in kept if r[2] < later])
    assert [r[:7] for r in refreshed] != [r[:7] for r in kept]
    rollups.rebuild(book.pk)
    same(stored(book), refreshed)
    assert first < later


def test_decisions_outside_the_book_are_not_counted(configs):
    book = made_book(configs, STEADY, "mine")
    other = BookFactory(name="other")
    book_configure(book=other, strategies=[], guards=list(configs))
    guard = BookGuard.objects.get(book=other, name="cooldown")
    signal = SignalFactory(book=other, state=SignalState.APPROVED)
    GuardDecisionFactory(
        signal=signal,
        guard="cooldown",
        book_guard=guard,
        verdict="pass",
        observed_value=Decimal(10),
        threshold=Decimal(240),
    )
    hist.rebuild(book.pk)
    assert hist.decision_count(book.pk) == 2 * len(STEADY)
