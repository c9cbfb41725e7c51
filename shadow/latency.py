"""Decision latency: how long after its candle closed each signal was decided, and a
per-day histogram of those waits kept with the rollups.

The wait of a decided signal (any state but ``generated``) is the wall-clock time of its
decision (the transition out of ``generated``; the signal's own ``created_at``, written in
the same run, when the log has none) minus its candle's close (``candle_time`` + one
timeframe, ``markets.bars.timeframe_delta``; a signal whose timeframe it refuses is left
out). This module holds that definition once, as SQL (``decided_signals``,
``candle_seconds``, ``wait_sql``): the health page ranks the last 24 hours' waits with
it, exactly, and the histogram is filled with it.

The histogram (``LatencyHistogram``): per UTC day of the signal's candle and of its
decision, how many waits fell in each logarithmic bucket (``bucket_bounds``): bucket 0
holds the waits under ``SMALLEST`` seconds either way, bucket ``k > 0`` the waits in
``[SMALLEST * RATIO ** (k - 1), SMALLEST * RATIO ** k)`` and ``-k`` the same waits
negative (a decision written before its candle closed: a clock or a fixture). A
percentile read from it (``percentiles``) is within 1 % (``RATIO - 1``) of the exact one
when the two waits it lies between have the same sign, plus at most ``SMALLEST``; the
count is exact.

It is an ``Extension`` of the rollups (registered in ``ShadowConfig.ready``): written in
the transaction of every write, under the book's lock, and rebuilt with them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from django.db import connections
from django.db.models import F, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from markets.bars import timeframe_delta
from shadow.models import LatencyHistogram
from shadow.rollups import Extension, midnight
from signals.models import Signal, SignalState, SignalTransition

# Bump when the wait's definition or the buckets change: every book is rebuilt on its
# next read (the version is part of the rollups', ``shadow.rollups.current_version``).
# 2: rows also by the candle's day.
VERSION = 2
# Neighbouring bucket edges differ by this factor: a wait is within 1 % of any value of
# its bucket.
RATIO = 1.01
# Waits shorter than this (seconds, either way) share bucket 0.
SMALLEST = 0.001


def _decided(book_id: int) -> QuerySet[Any]:
    """The book's signals out of ``generated``, each with ``decided``: the wall-clock
    time of its first transition out of ``generated``, else its own ``created_at``."""
    decision = (
        SignalTransition.objects.filter(signal=OuterRef("pk"), from_state=SignalState.GENERATED)
        .order_by("id")
        .values("created_at")[:1]
    )
    return (
        Signal.objects.filter(book_id=book_id)
        .exclude(state=SignalState.GENERATED)
        .annotate(decided=Coalesce(Subquery(decision), F("created_at")))
        .order_by()
    )


def _since(decided: QuerySet[Any], since: datetime) -> tuple[QuerySet[Any], QuerySet[Any]]:
    """``decided`` narrowed to the signals written at or after ``since`` and to those
    written before whose decision was logged at or after it (a superset of the
    signals decided at or after ``since``, disjoint)."""
    logged = SignalTransition.objects.filter(
        from_state=SignalState.GENERATED, created_at__gte=since
    ).values("signal_id")
    return decided.filter(created_at__gte=since), decided.filter(
        created_at__lt=since, pk__in=logged
    )


def decided_signals(
    *, book_id: int, since: datetime | None = None, candles_from: datetime | None = None
) -> tuple[str, list[Any], str]:
    """The decided signals of the book as SQL, its parameters and its database's alias:
    when each was decided (``decided``, one index probe per signal), its candle's open
    (``candle_time``) and its timeframe. ``candles_from``: only the signals whose candle
    opened at or after it (index ``signal_book_clock``). ``since``: only those decided
    at or after it, found without reading the others: the signals written since (index
    ``signal_book_created``) and those written before whose decision was logged since
    (the transitions by wall-clock time, index ``perf_pages_transitions_created``), one
    ``UNION ALL`` of the two, fenced, then kept when decided since (so each decision is
    probed once)."""
    fields = ("decided", "candle_time", "timeframe")
    decided = _decided(book_id)
    if candles_from is not None:
        decided = decided.filter(candle_time__gte=candles_from)
    if since is None:
        sql, params = decided.values(*fields).query.sql_with_params()
        return sql, list(params), decided.db
    written, earlier = _since(decided, since)
    both = written.values(*fields).union(earlier.values(*fields), all=True)
    sql, params = both.query.sql_with_params()
    vendor = connections[both.db].vendor
    return (
        f"SELECT * FROM ({sql} {fence(vendor)}) candidates WHERE decided >= %s",
        [*params, since],
        both.db,
    )


def candle_seconds(
    *, book_id: int, since: datetime | None = None, candles_from: datetime | None = None
) -> dict[str, float]:
    """One candle in seconds per timeframe of the signals ``decided_signals`` gives (for
    ``since``, of the signals ``_since`` finds), as ``timeframe_delta`` reads it; the
    timeframes it refuses are not listed (their signals are left out)."""
    found: dict[str, float] = {}
    signals = Signal.objects.filter(book_id=book_id).exclude(state=SignalState.GENERATED)
    if candles_from is not None:
        signals = signals.filter(candle_time__gte=candles_from)
    if since is None:
        timeframes = signals.order_by().values_list("timeframe", flat=True).distinct()
    else:
        written, earlier = _since(signals.order_by(), since)
        timeframes = written.values_list("timeframe", flat=True).union(
            earlier.values_list("timeframe", flat=True)
        )
    for timeframe in timeframes:
        try:
            found[timeframe] = timeframe_delta(timeframe).total_seconds()
        except ValueError:
            continue
    return found


def seconds_between(vendor: str, later: str, earlier: str) -> str:
    """SQL for ``later - earlier`` in seconds (float) on ``vendor``'s database."""
    if vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {later} - {earlier})::float8"
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


def fence(vendor: str) -> str:
    """What keeps a subquery from being merged into the outer query (each decision is
    probed once, then used): an ``OFFSET``."""
    return "LIMIT -1 OFFSET 0" if vendor == "sqlite" else "OFFSET 0"


def wait_sql(vendor: str, candles: dict[str, float]) -> tuple[str, list[Any]]:
    """SQL for the wait in seconds of a row of ``decided_signals`` (columns ``decided``,
    ``candle_time``, ``timeframe``), NULL for a timeframe not in ``candles``; and its
    parameters."""
    when = " ".join("WHEN %s THEN %s" for _ in candles)
    params = [value for pair in candles.items() for value in pair]
    return (
        f"{seconds_between(vendor, 'decided', 'candle_time')} - CASE timeframe {when} END",
        params,
    )


def _day_sql(vendor: str, moment: str) -> str:
    if vendor == "postgresql":
        return f"({moment} AT TIME ZONE 'UTC')::date"
    return f"date({moment})"


def _bucket_sql(wait: str) -> str:
    """SQL for the bucket of ``wait`` (seconds): 0 under ``SMALLEST`` either way, else
    the sign times 1 + the whole number of ``RATIO`` steps from ``SMALLEST``."""
    return (
        f"CASE WHEN abs({wait}) < {SMALLEST!r} THEN 0 ELSE CAST(sign({wait}) * "
        f"(1 + floor(ln(abs({wait}) / {SMALLEST!r}) / ln({RATIO!r}))) AS integer) END"
    )


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """The waits (seconds) ``bucket`` holds, low and high: ``[low, high)`` for a bucket
    above 0, ``(low, high]`` below it, ``(-SMALLEST, SMALLEST)`` for bucket 0."""
    if bucket == 0:
        return -SMALLEST, SMALLEST
    low, high = SMALLEST * RATIO ** (abs(bucket) - 1), SMALLEST * RATIO ** abs(bucket)
    return (low, high) if bucket > 0 else (-high, -low)


def _fill(book_id: int, candles_from: datetime | None) -> None:
    """The histogram rows of the signals whose candle opened at or after
    ``candles_from`` (every one for ``None``), in one ``INSERT ... SELECT`` grouped by
    candle day, decision day and bucket."""
    candles = candle_seconds(book_id=book_id, candles_from=candles_from)
    if not candles:
        return
    inner, params, alias = decided_signals(book_id=book_id, candles_from=candles_from)
    connection = connections[alias]
    vendor = connection.vendor
    wait, wait_params = wait_sql(vendor, candles)
    table = connection.ops.quote_name(LatencyHistogram._meta.db_table)
    query = (
        f"INSERT INTO {table} (book_id, candle_day, day, bucket, n) "
        "SELECT %s, candle_day, day, bucket, count(*) FROM ("
        f"SELECT {_day_sql(vendor, 'candle_time')} AS candle_day, "
        f"{_day_sql(vendor, 'decided')} AS day, {_bucket_sql('wait')} AS bucket FROM ("
        f"SELECT decided, candle_time, {wait} AS wait FROM ({inner} {fence(vendor)}) decided "
        f"{fence(vendor)}) waits WHERE wait IS NOT NULL) buckets "
        "GROUP BY candle_day, day, bucket"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, (book_id, *wait_params, *params))


def rebuild(book_id: int) -> None:
    """Every row of the book's histogram summed again from its decisions."""
    LatencyHistogram.objects.filter(book_id=book_id).delete()
    _fill(book_id, None)


def refresh(book_id: int, first: date) -> None:
    """The rows of the candle days ``first`` and after summed again from the decisions.

    A write changes only signals whose candle day is ``first`` or later (what the
    rollups' refresh is told), and a signal's decision is its own: whatever day the
    write dates a decision (a wall clock behind the market dates it before ``first``),
    it is summed under its signal's candle day, so those rows are all that can change.
    The cost is the signals of those candle days, as the rollups'."""
    LatencyHistogram.objects.filter(book_id=book_id, candle_day__gte=first).delete()
    _fill(book_id, midnight(first))


EXTENSION = Extension(name="latency", version=VERSION, rebuild=rebuild, refresh=refresh)


def _estimate(bucket: int, share: float) -> float:
    """A wait of ``bucket`` ``share`` (0 to 1) of the way through it from its shortest
    wait in the order of waits (0 for bucket 0)."""
    if bucket == 0:
        return 0.0
    low, high = bucket_bounds(bucket)
    return low + (high - low) * share


def histogram(book_id: int) -> list[tuple[int, int]]:
    """The book's decisions of all time per bucket, ``(bucket, count)`` in bucket order
    (the order of the waits): one grouped read of the histogram rows."""
    rows = (
        LatencyHistogram.objects.filter(book_id=book_id)
        .order_by()
        .values_list("bucket")
        .annotate(total=Sum("n"))
    )
    return sorted((int(bucket), int(total)) for bucket, total in rows)


def percentiles(counts: Iterable[tuple[int, int]], qs: Sequence[float]) -> list[float] | None:
    """Each of ``qs`` (0 to 1) of the waits counted in ``counts`` (``(bucket, count)``
    in bucket order), by the rule of numpy's and PostgreSQL's ``percentile_cont``
    (linear between the two waits next to the position) with each wait estimated
    inside its bucket: the ``i``-th of a bucket's ``n`` waits ``(i + 0.5) / n`` of the
    way through it in the order of the waits. ``None`` without waits.

    Each estimated wait is in the bucket of the true one, so within 1 % of it (or
    ``SMALLEST`` in bucket 0); the percentile, between two such waits, is within 1 % of
    the larger of them plus ``SMALLEST``: within 1 % of the exact percentile when both
    have the same sign."""
    buckets = [(bucket, n) for bucket, n in counts if n > 0]
    total = sum(n for _bucket, n in buckets)
    if not total:
        return None

    def wait(rank: int) -> float:
        passed = 0
        for bucket, n in buckets:
            if rank < passed + n:
                return _estimate(bucket, (rank - passed + 0.5) / n)
            passed += n
        raise IndexError(rank)

    found = []
    for q in qs:
        position = (total - 1) * q
        low = math.floor(position)
        high = min(low + 1, total - 1)
        a, b = wait(low), wait(high)
        found.append(a + (b - a) * (position - low))
    return found
