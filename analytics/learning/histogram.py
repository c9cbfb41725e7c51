"""Per-day histograms of the values each tunable guard version observed, kept with the
rollups: what the learning engine reads past ``LEARNING_ROW_LIMIT`` decisions instead of
one row per decision (ADR 0024, docs/learning-engine.md).

**Edges.** A guard version's thresholds on this path are the points of one fixed grid
(``grid``): 0, and ``m * 10**k`` for the mantissas ``MANTISSAS`` and the decades
``DECADES``, with their negatives (whole numbers only for an integer parameter), plus
the version's own current threshold (``edges``). A candidate threshold is always an
edge, so the curve at it is exact.

**Buckets.** The histogram row of a decision is its signal's UTC candle day and the
bucket of its observed value ``v``, the number of edges on the blocked side of it, so
that "blocked at the ``i``-th edge" is a range of buckets:

- ``>=`` (blocks when ``v >= t``): the edges ``<= v``; blocked at edge ``i``: buckets
  ``> i``;
- ``>`` (blocks when ``v > t``): the edges ``< v``; blocked at edge ``i``: buckets ``> i``;
- ``<`` (blocks when ``v < t * (1 - tolerance)``): the cut-offs ``e * (1 - tolerance)``
  ``<= v``; blocked at edge ``i``: buckets ``<= i``.

Bucket -1 holds the decisions with no observed value (they pass at any threshold). Per
row: the decisions, those whose shadow trade closed with a P&L, that P&L's exact sum and
its squares (float), the same for the signals no other guard blocked, and the decisions
whose recorded verdict the comparison at their recorded threshold does not reproduce.

The rows are one ``INSERT ... SELECT`` (PostgreSQL's ``width_bucket`` on the edges); on
another database the histogram stays empty and the learning engine reads the decisions.

It is an ``Extension`` of the rollups (registered in ``AnalyticsConfig.ready``): written
in the transaction of every write, under the book's lock, and rebuilt with them.
"""

from __future__ import annotations

import functools
import json
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import Sum

from analytics import skill
from analytics.learning.curves import ZERO, CurvePoint, Fold, best_point, time_chunks
from analytics.models import GuardHistogram
from shadow import rollups
from shadow.models import ShadowTrade
from signals.domain.guards import GUARDS, build_guard
from signals.models import BookGuard, GuardDecision, Signal

NAME = "guard_histogram"
# Bump when the buckets or the sums change: every book is rebuilt on its next read.
VERSION = 1
MANTISSAS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)
DECADES = range(-6, 13)
# Grid points are kept to the places a recommendation stores.
PLACES = 8
NO_VALUE = -1


def grid(integral: bool) -> list[float]:
    """The fixed grid of thresholds: 0 and ``±m * 10**k`` (``MANTISSAS``, ``DECADES``),
    kept to ``PLACES`` places; whole numbers only when ``integral``; sorted."""
    positive = {round(m * 10.0**k, PLACES) for m in MANTISSAS for k in DECADES}
    positive.discard(0.0)
    if integral:
        positive = {v for v in positive if v == int(v)}
    return sorted({0.0, *positive, *(-v for v in positive)})


@dataclass(frozen=True, slots=True)
class Edges:
    """A tunable guard version's thresholds on the histogram path (sorted) and how its
    observed values fall into buckets between them."""

    book_guard_id: int
    blocks_when: str
    tolerance: float
    thresholds: tuple[float, ...]

    @property
    def cuts(self) -> list[float]:
        """The values the comparison splits at: the thresholds, scaled by
        ``1 - tolerance`` for ``<`` (the same float arithmetic as ``curves.blocks``)."""
        if self.blocks_when == "<":
            return [t * (1 - self.tolerance) for t in self.thresholds]
        return list(self.thresholds)

    def bucket(self, value: float | None) -> int:
        """The bucket of an observed value (``NO_VALUE`` for none), as the SQL fills it."""
        if value is None:
            return NO_VALUE
        if self.blocks_when == ">":
            return bisect_left(self.cuts, value)
        return bisect_right(self.cuts, value)


def edges(copy: BookGuard) -> Edges | None:
    """The edges of a frozen guard version with a numeric threshold: the grid and its
    current threshold (``None`` for a kind with a fixed threshold or params its guard
    refuses)."""
    return _edges(copy.pk, copy.kind, json.dumps(copy.params, sort_keys=True))


@functools.lru_cache(maxsize=1024)
def _edges(book_guard_id: int, kind: str, params: str) -> Edges | None:
    """``edges`` of a version by its id, kind and params (a version never changes: a
    live book's refresh asked again at every advance)."""
    cls = GUARDS.get(kind)
    if cls is None or not cls.tunable:
        return None
    try:
        guard = build_guard(kind, json.loads(params))
    except ValueError:
        return None
    current = getattr(guard, cls.tunable)
    integral = isinstance(current, int)
    thresholds = sorted({*grid(integral), float(current)})
    return Edges(book_guard_id, cls.blocks_when, cls.tolerance, tuple(thresholds))


def book_edges(book_id: int) -> list[Edges]:
    """The edges of every tunable guard version of the book (one query)."""
    kinds = [kind for kind, cls in GUARDS.items() if cls.tunable]
    found = []
    for copy in BookGuard.objects.filter(book_id=book_id, kind__in=kinds).order_by("pk"):
        one = edges(copy)
        if one is not None:
            found.append(one)
    return found


def _fill(book_id: int, candles_from: datetime | None) -> None:
    """The histogram rows of the book's signals whose candle opened at or after
    ``candles_from`` (every one for ``None``): one ``INSERT ... SELECT`` grouped by
    guard version, candle day and bucket. The per-decision subquery is fenced
    (``OFFSET 0``) so that whether another guard blocked the signal is looked up once
    per decision, not once per sum that uses it."""
    if connection.vendor != "postgresql":
        return
    guards = book_edges(book_id)
    if not guards:
        return
    query = _fill_sql(tuple(guards), candles_from is not None)
    tail: list[Any] = [book_id] if candles_from is None else [book_id, candles_from]
    with connection.cursor() as cursor:
        cursor.execute(query, [book_id, *tail])


def _floats(values: list[float]) -> str:
    """A float8 array literal, read by float8's own input (``repr`` is the shortest text
    that reads back as the same double, as psycopg sends a float parameter)."""
    return "'{" + ",".join(repr(float(v)) for v in values) + "}'::float8[]"


@functools.lru_cache(maxsize=256)
def _fill_sql(guards: tuple[Edges, ...], since: bool) -> str:
    """``_fill``'s statement for these guard versions, their grids written into it, built
    once per set of versions (a refresh of a live book built it at every advance, and
    sent its few hundred grid values as parameters); parameters: the book id twice, and
    the first candle time when ``since``."""
    values: list[str] = []
    for one in guards:
        cuts = one.cuts
        negated = sorted(-c for c in cuts)
        values.append(
            f"({int(one.book_guard_id)}::bigint, '{one.blocks_when}'::text, "
            f"{len(cuts)}::integer, {_floats(cuts)}, {_floats(negated)}, "
            f"{float(1 - one.tolerance)!r}::float8)"
        )
    table = GuardHistogram._meta.db_table
    decisions, signals = GuardDecision._meta.db_table, Signal._meta.db_table
    trades = ShadowTrade._meta.db_table
    since_sql = "AND s.candle_time >= %s" if since else ""
    block, closed = GuardDecision.Verdict.BLOCK.value, ShadowTrade.Status.CLOSED.value
    value = "d.observed_value::float8"
    recorded = "d.threshold::float8"
    query = f"""
        INSERT INTO {table} (book_id, book_guard_id, day, bucket, decisions, closed, pnl,
            squares, alone_closed, alone_pnl, alone_squares, mismatches)
        SELECT %s, book_guard_id, day, bucket, count(*),
            count(*) FILTER (WHERE closed),
            coalesce(sum(pnl) FILTER (WHERE closed), 0),
            coalesce(sum(pnl::float8 * pnl::float8) FILTER (WHERE closed), 0),
            count(*) FILTER (WHERE closed AND NOT others),
            coalesce(sum(pnl) FILTER (WHERE closed AND NOT others), 0),
            coalesce(sum(pnl::float8 * pnl::float8) FILTER (WHERE closed AND NOT others), 0),
            count(*) FILTER (WHERE mismatch)
        FROM (
            SELECT d.book_guard_id, (s.candle_time AT TIME ZONE 'UTC')::date AS day,
                CASE WHEN d.observed_value IS NULL THEN {NO_VALUE}
                     WHEN g.side = '>' THEN g.size - width_bucket(-{value}, g.negated)
                     ELSE width_bucket({value}, g.cuts) END AS bucket,
                coalesce(t.status = '{closed}' AND t.pnl IS NOT NULL, false) AS closed,
                t.pnl,
                EXISTS (SELECT 1 FROM {decisions} o WHERE o.signal_id = d.signal_id
                        AND o.verdict = '{block}' AND o.guard <> d.guard) AS others,
                d.observed_value IS NOT NULL AND (CASE g.side
                    WHEN '>=' THEN coalesce({value} >= {recorded}, false)
                    WHEN '>' THEN coalesce({value} > {recorded}, false)
                    ELSE coalesce({value} < {recorded} * g.keep, false)
                END) <> (d.verdict = '{block}') AS mismatch
            FROM {decisions} d
            JOIN (VALUES {", ".join(values)}) AS g (id, side, size, cuts, negated, keep)
                ON g.id = d.book_guard_id
            JOIN {signals} s ON s.id = d.signal_id
            LEFT JOIN {trades} t ON t.signal_id = d.signal_id
            WHERE s.book_id = %s {since_sql}
            OFFSET 0
        ) observed
        GROUP BY book_guard_id, day, bucket
    """
    return query


def rebuild(book_id: int) -> None:
    """Every histogram row of the book summed again from its decisions."""
    GuardHistogram.objects.filter(book_id=book_id).delete()
    _fill(book_id, None)


def refresh(book_id: int, first: date) -> None:
    """The rows of the candle days ``first`` and after summed again from the decisions.

    A write changes only signals whose candle day is ``first`` or later, with their
    decisions and shadow trades (what the rollups' refresh is told: the earliest candle
    of a signal the run wrote or changed, a shadow trade that closed included), and a
    row holds the decisions of its candle day only, so those rows are all that can
    change."""
    GuardHistogram.objects.filter(book_id=book_id, day__gte=first).delete()
    _fill(book_id, rollups.midnight(first))


def register() -> None:
    """Keep the histograms with the rollups (``AnalyticsConfig.ready``)."""
    rollups.extend(rollups.Extension(NAME, VERSION, rebuild, refresh))


# --- Reading ----------------------------------------------------------------------------

_MEASURES = ("decisions", "closed", "pnl", "squares", "alone_closed", "alone_pnl", "mismatches")


@dataclass(frozen=True, slots=True)
class Sums:
    """One guard version's histogram summed per time segment (rows) and bucket
    (columns: column ``b + 1`` holds bucket ``b``, so column 0 the decisions with no
    observed value). The segments are the walk-forward's chunks of its observed
    decisions in candle-time order, cut at UTC day boundaries (``time_segments``);
    ``starts[s]`` is the first candle day of segment ``s`` with an observed decision
    (``None`` when it has none). Counts are integer arrays, ``pnl`` and ``alone_pnl``
    exact decimals (object arrays), ``squares`` floats."""

    edges: Edges
    decisions: np.ndarray
    closed: np.ndarray
    pnl: np.ndarray
    squares: np.ndarray
    alone_closed: np.ndarray
    alone_pnl: np.ndarray
    mismatches: int
    starts: tuple[date | None, ...]


def time_segments(days: list[tuple[date, int]], folds: int) -> list[date]:
    """Where the ``folds + 1`` chunks of the walk-forward start (after the first): the
    observed decisions ``(day, count)`` in day order are cut into ``curves.time_chunks``
    of equal count, each cut moved to the first day boundary at or after it (a day is
    never split). A chunk that starts past the last day starts on ``date.max``."""
    total = sum(count for _, count in days)
    cuts = [start for start, _ in time_chunks(total, folds)[1:]]
    found = []
    for cut in cuts:
        before, first = 0, date.max
        for day, count in days:
            if before >= cut and count:
                first = day
                break
            before += count
        found.append(first)
    return found


def read(book_id: int, guards: list[Edges], folds: int) -> dict[int, Sums]:
    """Each guard version's ``Sums`` (two grouped reads of the histogram, whatever the
    number of decisions): the observed decisions per day (where the chunks start), then
    the rows summed per chunk and bucket. The rollups must be built
    (``shadow.rollups.ensure_built``)."""
    if not guards:
        return {}
    ids = [one.book_guard_id for one in guards]
    per_day: dict[int, list[tuple[date, int]]] = {pk: [] for pk in ids}
    days = (
        GuardHistogram.objects.filter(book_id=book_id, book_guard_id__in=ids, bucket__gte=0)
        .order_by()
        .values_list("book_guard_id", "day")
        .annotate(total=Sum("decisions"))
        .order_by("book_guard_id", "day")
    )
    for pk, day, total in days:
        per_day[pk].append((day, int(total)))
    starts = {pk: time_segments(per_day[pk], folds) for pk in ids}
    values = ", ".join("(%s::bigint, %s::date[])" for _ in ids)
    params: list[Any] = [v for pk in ids for v in (pk, starts[pk])]
    sums = ", ".join(f"sum({m})" for m in _MEASURES)
    query = (
        f"SELECT h.book_guard_id, width_bucket(h.day, c.starts) AS segment, h.bucket, {sums} "
        f"FROM {GuardHistogram._meta.db_table} h JOIN (VALUES {values}) AS c (id, starts) "
        "ON c.id = h.book_guard_id WHERE h.book_id = %s GROUP BY 1, 2, 3"
    )
    segments = folds + 1
    found: dict[int, dict[str, np.ndarray]] = {}
    sizes = {one.book_guard_id: len(one.thresholds) + 2 for one in guards}
    for pk in ids:
        shape = (segments, sizes[pk])
        found[pk] = {
            m: np.zeros(shape, dtype=object if m in ("pnl", "alone_pnl") else float)
            for m in _MEASURES
        }
        found[pk]["pnl"][:] = ZERO
        found[pk]["alone_pnl"][:] = ZERO
    with _work_mem(SUMS_WORK_MEM) as cursor:
        cursor.execute(query, [*params, book_id])
        rows = cursor.fetchall()
    for pk, segment, bucket, *measures in rows:
        for name, value in zip(_MEASURES, measures, strict=True):
            found[pk][name][segment, bucket + 1] = value
    result = {}
    for one in guards:
        pk, got = one.book_guard_id, found[one.book_guard_id]
        first_days = [day for day, count in per_day[pk] if count]
        seg_starts: list[date | None] = [first_days[0] if first_days else None]
        seg_starts += [None if d == date.max else d for d in starts[pk]]
        result[pk] = Sums(
            edges=one,
            decisions=got["decisions"].astype(np.int64),
            closed=got["closed"].astype(np.int64),
            pnl=got["pnl"],
            squares=got["squares"].astype(float),
            alone_closed=got["alone_closed"].astype(np.int64),
            alone_pnl=got["alone_pnl"],
            mismatches=int(got["mismatches"].sum()),
            starts=tuple(seg_starts),
        )
    return result


# The memory the per-chunk sums may hash in. Their groups are few (guard versions x
# chunks x buckets: 1,403 on the generated 1,000,000-signal book, under 4 MB to hash)
# but PostgreSQL cannot count them (``width_bucket`` of a day against each guard's own
# starts) and guesses nearly one per row; with the default ``work_mem`` (4 MB) it then
# sorts the rows, spilling to disk, instead of hashing them: 85-90 ms against 49 ms for
# 77,585 rows. The setting lasts for that one statement.
SUMS_WORK_MEM = "64MB"


@contextmanager
def _work_mem(value: str) -> Iterator[Any]:
    """A cursor in a transaction whose ``work_mem`` is ``value`` until the block ends,
    then what it was: ``set_config(..., true)`` lasts until the end of the outermost
    transaction, which a caller's ``atomic`` may hold open. (On an error the block's
    savepoint or transaction rolls back, and the setting with it.)"""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('work_mem')")
        before = cursor.fetchone()[0]
        cursor.execute("SELECT set_config('work_mem', %s, true)", [value])
        yield cursor
        cursor.execute("SELECT set_config('work_mem', %s, true)", [before])


def decision_count(book_id: int) -> int:
    """The decisions of the book's tunable guard versions the histogram holds."""
    total = GuardHistogram.objects.filter(book_id=book_id).aggregate(n=Sum("decisions"))["n"]
    return int(total or 0)


# --- The curve, the walk-forward and the randomisation test from the sums ---------------


def _collapsed(sums: Sums, rows: slice) -> dict[str, np.ndarray]:
    """Prefix sums over the observed buckets of the chunks ``rows``: ``out[m][k]`` sums
    buckets ``0 .. k-1``; and ``decided``, every decision of those chunks."""
    out: dict[str, Any] = {}
    for name in ("decisions", "closed", "pnl", "alone_closed", "alone_pnl"):
        column = getattr(sums, name)[rows].sum(axis=0)[1:]
        zero: Any = ZERO if name.endswith("pnl") else 0
        prefix = np.empty(len(column) + 1, dtype=object)
        prefix[0] = zero
        prefix[1:] = np.cumsum(column)
        out[name] = prefix
    out["decided"] = int(sums.decisions[rows].sum())
    return out


def _blocked(sums: Sums, prefix: np.ndarray, index: int) -> Any:
    """The sum over the buckets blocked at ``thresholds[index]`` from a prefix array."""
    if sums.edges.blocks_when == "<":
        return prefix[index + 1]
    return prefix[-1] - prefix[index + 1]


def curve(sums: Sums, rows: slice, indices: list[int], current: float | None) -> list[CurvePoint]:
    """The guard's figures at the thresholds ``thresholds[i]`` for ``i`` in ``indices``
    over the chunks ``rows``: exact, since every threshold is an edge."""
    collapsed = _collapsed(sums, rows)
    thresholds = sums.edges.thresholds
    return [
        CurvePoint(
            threshold=thresholds[i],
            blocked=int(_blocked(sums, collapsed["decisions"], i)),
            samples=int(_blocked(sums, collapsed["closed"], i)),
            net_impact=-_blocked(sums, collapsed["pnl"], i),
            alone_samples=int(_blocked(sums, collapsed["alone_closed"], i)),
            alone_net_impact=-_blocked(sums, collapsed["alone_pnl"], i),
            current=current is not None and thresholds[i] == current,
        )
        for i in indices
    ]


def candidates(sums: Sums, rows: slice, current: float, accepts: Any = None) -> list[int]:
    """The edges worth trying over the chunks ``rows``, as indices: those from the one
    that blocks every observed decision to the one that blocks only the last bucket (or
    the first, for ``<``), one per blocked set (the edge nearest the values it splits),
    the ones ``accepts`` refuses left out; and the current threshold."""
    thresholds = sums.edges.thresholds
    counts = sums.decisions[rows].sum(axis=0)[1:]
    filled = np.flatnonzero(counts)
    last = len(thresholds) - 1
    picked: list[int] = []
    if len(filled):
        low, high = int(filled[0]), int(filled[-1])
        span = range(max(low - 1, 0), min(high, last) + 1)
        # The decisions' prefix sums alone (``_collapsed`` sums every measure).
        prefix = np.concatenate(([0], np.cumsum(counts)))
        blocked = [int(_blocked(sums, prefix, i)) for i in span]
        first_of_run = sums.edges.blocks_when == ">"
        for position, i in enumerate(span):
            neighbour = position - 1 if first_of_run else position + 1
            if 0 <= neighbour < len(blocked) and blocked[neighbour] == blocked[position]:
                continue
            picked.append(i)
    found = {i for i in picked if accepts is None or accepts(thresholds[i])}
    found.add(thresholds.index(current))
    return sorted(found)


def walk_forward(
    sums: Sums, *, current: float, needed: int, max_share: float, accepts: Any = None
) -> list[Fold]:
    """The expanding-window walk-forward on the chunks: for each chunk after the first,
    the best threshold (``best_point``) on every earlier chunk, judged on the chunk
    against the current threshold (the same rule as ``curves.walk_forward``, with the
    chunks cut at day boundaries)."""
    result = []
    observed = sums.decisions[:, 1:].sum(axis=1)
    here = sums.edges.thresholds.index(current)
    for fold in range(1, len(observed)):
        train_count, test_count = int(observed[:fold].sum()), int(observed[fold])
        if train_count == 0 or test_count == 0:
            continue
        train = slice(0, fold)
        points = curve(sums, train, candidates(sums, train, current, accepts), current)
        decided = int(sums.decisions[train].sum())
        best = best_point(points, needed=needed, decided=decided, max_share=max_share)
        chosen = best.threshold if best is not None else current
        test = slice(fold, fold + 1)
        at = curve(sums, test, sorted({sums.edges.thresholds.index(chosen), here}), None)
        judged = {p.threshold: p for p in at}
        result.append(
            Fold(
                train=train_count,
                test=test_count,
                test_samples=int(sums.closed[fold, 1:].sum()),
                train_until=train_count,
                chosen=chosen,
                chosen_net_impact=judged[chosen].net_impact,
                current_net_impact=judged[current].net_impact,
            )
        )
    return result


def randomisation(sums: Sums, threshold: float) -> skill.RandomisationTest | None:
    """The randomisation test of blocking at ``threshold`` against blocking as many of
    the guard's decisions with a closed shadow trade at random (every one, observed or
    not, is in the pool): its normal approximation (``skill.randomisation_normal``) from
    the pool's count, sum and sum of squares (``None`` when it blocks none or all)."""
    everything = slice(0, len(sums.decisions))
    n = int(sums.closed.sum())
    point = curve(sums, everything, [sums.edges.thresholds.index(threshold)], None)[0]
    k = point.samples
    if n == 0 or k == 0 or k == n:
        return None
    mean = float(sum(sums.pnl.ravel(), ZERO)) / n
    variance = max(float(sums.squares.sum()) / n - mean * mean, 0.0)
    return skill.randomisation_normal(
        pool=n, blocked=k, mean=mean, variance=variance, observed=float(point.net_impact)
    )
