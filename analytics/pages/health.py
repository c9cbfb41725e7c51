"""Pipeline health: is the machinery moving?

For one book: signals per state, the stuck ones (``analytics.stuck``), transitions and
new signals per hour over the last 24 hours, the decision latency from the candle's
close; for the whole system: each periodic task's last success (task heartbeats beside
celery beat's schedule), the depth of every Celery queue in the broker, and the last
runs of the stuck-signal recovery. A fixed number of queries whatever the book's size,
reading counters (the rollups, the latency histogram) and the rows of the last 24 hours
only. The page is never cached: every request shows the pipeline as it is at its own
clock. What it reads from the book's rows is kept under the book's data stamp and the
hour (``book_reads``): between two writes of the book those rows do not change, and
every figure that depends on the clock is computed from them on each request.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.db.models import Count, Max, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from analytics import page_cache
from analytics.charts import chart_spec
from analytics.filters import Filters
from analytics.heartbeats import error_text
from analytics.models import RecoveryRun
from analytics.numbers import rate
from analytics.page_cache import Policy
from analytics.pages import Page, register
from analytics.paper_balance import balance_failures
from analytics.selectors import signal_state_counts
from analytics.stamps import stamp_of
from analytics.stuck import deadlines, describe, human_duration, late, overdue, pending
from markets.bars import timeframe_delta
from shadow import latency, rollups
from signals.models import Book, Signal, SignalState, SignalTransition

HOURS = 24
HOUR_SECONDS = 3600
STUCK_SHOWN = 50
RECOVERY_RUNS_SHOWN = 10
NON_TERMINAL = (SignalState.GENERATED, SignalState.APPROVED, SignalState.EXECUTED)
# A periodic task is late when it has not succeeded within this many of its intervals.
LATE_AFTER_INTERVALS = 2
# kombu's Redis transport keeps a queue's messages of priority p > 0 in "<queue>\x06\x16p".
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
BROKER_TIMEOUT_SECONDS = 1.0


def build(filters: Filters) -> dict[str, Any]:
    book = filters.book
    assert book is not None
    now = timezone.now()
    reads = book_reads(book=book, now=now)
    queues = queue_depths()
    return {
        "now": now,
        "live": book.kind == Book.Kind.LIVE,
        "states": states_and_stuck(
            book=book, now=now, counts=reads["counts"], watched=reads["pending"]
        ),
        "throughput": throughput(book=book, now=now, reads=reads),
        "latency": decision_latency(book=book, now=now, reads=reads),
        "tasks": periodic_tasks(now=now),
        "queues": queues,
        "recovery": recovery_runs(),
        "paper_balance": reads["paper_balance"],
        # The queues were just read from the broker: it was reached, no second connection.
        "system": system_status(now=now, broker_reached=queues["status"] == "ok"),
    }


# --- What the book's rows say, under its data stamp ----------------------------------

# Bump when what ``read_book`` keeps changes: entries of older formats are then unused.
READS_FORMAT = 2


def book_reads(*, book: Book, now: datetime) -> dict[str, Any]:
    """What the page reads from the book's rows (``read_book``) for the wall-clock hour
    ``now`` is in, kept in the cache under the book's data stamp
    (``analytics.page_cache``: it changes with every commit that writes the book, and is
    read before this) and that hour. Nothing here depends on the wall clock but through
    the hour: the figures that do (the stuck signals, the last 24 hours' edges, the
    heartbeats, the queues, the system's checks) are computed on every request from it
    or read anew. So after a write the next request reads the rows again; between two
    writes, the rows have not changed and neither has what was read from them. Not kept
    with the page cache off (``PAGE_CACHE``, ``page_cache.bypass()``)."""
    hour = _hour_of(now)
    key = None
    if page_cache.enabled():
        stamp = f"{READS_FORMAT}|{rollups.current_version()}|{stamp_of(book)}|{hour.isoformat()}"
        digest = hashlib.sha256(stamp.encode()).hexdigest()[:32]
        key = f"{page_cache.PREFIX}:health-reads:{book.pk}:{digest}"
        try:
            found = cache.get(key)
        except Exception:  # the cache is down: read the rows
            return read_book(book=book, hour=hour)
        if found is not None:
            return dict(found)
        # As the page cache fills a payload: after a write, one request of the workers
        # reads the rows, the others wait for what it keeps. Of no use after the hour
        # (nor after the next write): not kept longer, so a book written every minute
        # keeps at most an hour of them.
        left = HOUR_SECONDS - (now - hour).total_seconds() + 60
        reads = page_cache.fill(
            key, lambda: read_book(book=book, hour=hour), seconds=max(int(left), 60)
        )
        return dict(reads)
    return read_book(book=book, hour=hour)


def read_book(*, book: Book, hour: datetime) -> dict[str, Any]:
    """The book's signals per state and its latency histogram (its rollups, made sure of
    first), its paper-balance failures (only when it has a failed signal: no other can
    have failed for lack of balance), and, for the wall-clock hour starting at ``hour``,
    the rows per hour the throughput chart counts and the decisions the last 24 hours'
    latency ranks (``recent_decisions``), each from the earliest the hour's requests
    need; its signals in a state that can be stuck (``analytics.stuck.pending``: few),
    of which those stuck at the request's clock are picked on each request. Eight
    queries, seven without a failed signal."""
    counts = signal_state_counts(book=book)  # makes sure the rollups are built
    start = hour - timedelta(hours=HOURS - 1)
    return {
        "hour": hour,
        "counts": counts,
        "pending": pending(book=book),
        "histogram": latency.histogram(book.pk),
        "paper_balance": paper_balance(book=book)
        if counts.get(SignalState.FAILED)
        else {"failed": 0, "first": None, "last": None},
        "moved": _per_hour(
            SignalTransition.objects.filter(signal__book=book, created_at__gte=start),
            # signal_id, not id: the index on (created_at, signal_id) answers alone (0010).
            "signal_id",
        ),
        "created": _per_hour(Signal.objects.filter(book=book, created_at__gte=start), "id"),
        "decisions": recent_decisions(book=book, since=hour - timedelta(hours=HOURS)),
    }


def _hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _per_hour(rows: QuerySet[Any], counted: str) -> dict[str, Any]:
    """Rows per wall-clock hour (UTC) of ``created_at`` (``{hour key: n}``), and the
    newest ``created_at`` among them."""
    found = (
        rows.annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .order_by()
        .values_list("hour")
        .annotate(n=Count(counted), newest=Max("created_at"))
    )
    per_hour, newest = {}, None
    for moment, n, last in found:
        per_hour[_hour_key(moment)] = n
        newest = last if newest is None or last > newest else newest
    return {"per_hour": per_hour, "newest": newest}


# What each /healthz check's status says, in the trader's words. Nothing here says
# "fine" about what was not seen: beat's "unknown" (no periodic task has run, e.g. no
# beat under ``make run``) reads "no run seen yet", never "ok".
CHECK_WORDS: dict[str, dict[str, str]] = {
    "database": {"ok": "database reachable"},
    "broker": {"ok": "broker reachable", "not used": "no broker (work runs in the web process)"},
    "beat": {
        "ok": "scheduler running",
        "late": "scheduler (celery beat) late",
        "unknown": "scheduler: no run seen yet",
    },
    "stuck_signals": {"ok": "no live signal stuck"},
}
CHECK_NAMES = {"database": "database", "broker": "broker", "beat": "scheduler"}


def _check_words(name: str, check: dict[str, Any]) -> str:
    words = CHECK_WORDS.get(name, {}).get(check["status"])
    if words:
        return words
    if name in ("database", "broker"):
        return f"{name} cannot be reached"
    if name == "stuck_signals" and check.get("count") is not None:
        count = check["count"]
        return f"{count} live signal{'' if count == 1 else 's'} stuck"
    return f"{CHECK_NAMES.get(name, name.replace('_', ' '))}: {check['status']}"


def system_status(*, now: datetime | None = None, broker_reached: bool = False) -> dict[str, Any]:
    """The pipeline's status by the ``/healthz`` rule (``config.health``): down when the
    database or the broker cannot be reached, degraded when celery beat is late or live
    signals are stuck, else ok; with each check's status and what it says (``parts``),
    so a line built from it never calls fine what no check saw. ``broker_reached``: the
    caller has just read the broker (``queue_depths``), so it is not connected to again."""
    from config.health import system_health

    status, checks = system_health(now or timezone.now(), broker_reached=broker_reached)
    return {
        "status": status,
        "checks": {name: check["status"] for name, check in checks.items()},
        "stuck_signals": checks.get("stuck_signals", {}).get("count"),
        "parts": [
            {"check": name, "status": check["status"], "words": _check_words(name, check)}
            for name, check in checks.items()
        ],
    }


def paper_balance(*, book: Book) -> dict[str, Any]:
    """The book's signals that failed for lack of paper balance: how many, first, last."""
    total, _ = balance_failures(book=book)
    return {"failed": total.count, "first": total.first, "last": total.last}


# --- Signals per state and stuck signals ---------------------------------------------


def states_and_stuck(
    *,
    book: Book,
    now: datetime,
    counts: dict[str, int] | None = None,
    watched: list[tuple[Any, ...]] | None = None,
) -> dict[str, Any]:
    """Every state with its count (zero included) and, for the non-terminal ones, its
    deadline and how many are past it; the oldest stuck signals. The counts are the
    rollups' (two queries) unless given; the stuck signals are those of ``watched``
    (``analytics.stuck.pending``, as read for the hour by ``book_reads``) past their
    deadline at ``now`` (``analytics.stuck.late``), else read by ``analytics.stuck.
    overdue`` (two index range scans over the book's signals in a watched state,
    whatever its history), all of them (they are few: a live book's pending signals
    past their deadline) and counted per state here."""
    if counts is None:
        counts = signal_state_counts(book=book)
    rules = deadlines()
    if watched is not None:
        every = [row[:7] for row in late(watched, now=now)]
    else:
        every = list(
            overdue(book=book, now=now)
            .order_by("since", "id")
            .values_list("id", "state", "exchange", "symbol", "timeframe", "since", "candle_time")
        )
    stuck_by_state = Counter(row[1] for row in every)
    rows = every[:STUCK_SHOWN]
    total_stuck = len(every)
    return {
        "counts": [
            {
                "state": state,
                "count": count,
                "terminal": state not in NON_TERMINAL,
                "deadline": describe(state, rules[state]) if state in rules else None,
                "stuck": stuck_by_state.get(state, 0) if state in rules else None,
            }
            for state, count in counts.items()
        ],
        "total": sum(counts.values()),
        "stuck_count": total_stuck,
        "stuck_shown": len(rows),
        "stuck": [
            {
                "id": signal_id,
                "state": state,
                "exchange": exchange,
                "symbol": symbol,
                "timeframe": timeframe,
                "candle_time": candle_time,
                "since": since,
                "age_seconds": int((now - since).total_seconds()),
                "age": human_duration((now - since).total_seconds()),
                "deadline": describe(state, rules[state]),
            }
            for signal_id, state, exchange, symbol, timeframe, since, candle_time in rows
        ],
    }


# --- Throughput ----------------------------------------------------------------------


def hour_buckets(now: datetime) -> list[datetime]:
    """The starts of the 24 wall-clock hours (UTC) ending with the one ``now`` is in."""
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return [current - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]


def throughput(*, book: Book, now: datetime, reads: dict[str, Any] | None = None) -> dict[str, Any]:
    """Transitions written and signals created per hour (by their wall-clock
    ``created_at``) over the 24 hours ending now, zero-filled: counted from the rows
    read for the hour (``book_reads``), unless one of those rows was written after
    ``now`` (another node's clock ahead of this one's), then counted again up to it."""
    hours = hour_buckets(now)
    start = hours[0]
    if reads is None or reads["hour"] != hours[-1]:
        reads = read_book(book=book, hour=hours[-1])
    moved, created = reads["moved"], reads["created"]
    if any(part["newest"] is not None and part["newest"] > now for part in (moved, created)):
        moved = _per_hour(
            SignalTransition.objects.filter(
                signal__book=book, created_at__gte=start, created_at__lte=now
            ),
            "signal_id",
        )
        created = _per_hour(
            Signal.objects.filter(book=book, created_at__gte=start, created_at__lte=now), "id"
        )
    transitions = [moved["per_hour"].get(_hour_key(hour), 0) for hour in hours]
    signals = [created["per_hour"].get(_hour_key(hour), 0) for hour in hours]
    labels = [f"{hour:%H}:00" for hour in hours]
    return {
        "since": start,
        "until": now,
        "hours": [hour.isoformat() for hour in hours],
        "transitions": transitions,
        "signals": signals,
        "total_transitions": sum(transitions),
        "total_signals": sum(signals),
        "chart": chart_spec(
            "bar",
            labels,
            [
                {"name": "State transitions", "values": transitions, "tone": "neutral"},
                {"name": "Signals created", "values": signals, "tone": "muted"},
            ],
            y_label="per hour",
        ),
    }


def _hour_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


# --- Decision latency ----------------------------------------------------------------

PERCENTILES = (0.5, 0.95)


def decision_latency(
    *, book: Book, now: datetime, reads: dict[str, Any] | None = None
) -> dict[str, Any]:
    """How long after its candle closed each signal was decided (``shadow.latency``: the
    wall-clock time of its decision minus the candle's close; a signal whose timeframe
    ``markets.bars.timeframe_delta`` refuses is left out). p50 and p95 (linear
    interpolation between the two nearest waits, as numpy's and PostgreSQL's
    ``percentile_cont``) over the decisions of the last 24 hours and over all of them.

    The last 24 hours are exact: the decisions written since the start of the hour 24
    hours ago (``recent_decisions``: index range scans, one row each, a few thousand a
    day for a live book), read for the hour (``book_reads``), of which those decided at
    or after ``now`` minus 24 hours are ranked here. All time is read from the book's
    latency histogram, kept with its rollups (``shadow.latency``): the count exact, each
    percentile within 1 % (of the larger of the two waits it lies between, plus a
    millisecond)."""
    since = now - timedelta(hours=HOURS)
    if reads is None or reads["hour"] != _hour_of(now):
        reads = read_book(book=book, hour=_hour_of(now))
    decided, waits = reads["decisions"]
    first = bisect.bisect_left(decided, _microseconds(since))
    recent = sorted(waits[first:])
    every = reads["histogram"]
    return {
        "last_24h": _percentile_figures(
            len(recent), _interpolate(dict(enumerate(recent)), len(recent))
        ),
        "all_time": _percentile_figures(
            sum(n for _bucket, n in every), latency.percentiles(every, PERCENTILES)
        ),
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _microseconds(moment: datetime) -> int:
    """Microseconds from the epoch to ``moment``: exact, as the database's are."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def recent_decisions(*, book: Book, since: datetime) -> tuple[list[int], list[float]]:
    """The decisions written at or after ``since`` (``latency.decided_signals``: each
    decision probed once): when each was decided (microseconds from the epoch, exact)
    and its wait in seconds, in the order of their decisions. One query giving each
    decision's time from its candle's open with its timeframe; the candle's length
    (``timeframe_delta``; a timeframe it refuses is left out) is taken off here, as
    ``latency.wait_sql`` does in SQL."""
    inner, params, alias = latency.decided_signals(book_id=book.pk, since=since)
    connection = connections[alias]
    vendor = connection.vendor
    elapsed = latency.seconds_between(vendor, "decided", "candle_time")
    # PostgreSQL's epoch is numeric: its microseconds are exact. SQLite gives the text
    # of the timestamp, read here.
    decided = (
        "(EXTRACT(EPOCH FROM decided) * 1000000)::bigint" if vendor == "postgresql" else "decided"
    )
    query = f"SELECT {decided}, timeframe, {elapsed} FROM ({inner} {latency.fence(vendor)}) decided"
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        rows = cursor.fetchall()
    candles: dict[str, float | None] = {}
    found = []
    for moment, timeframe, seconds in rows:
        if timeframe not in candles:
            candles[timeframe] = _candle_seconds(timeframe)
        candle = candles[timeframe]
        if candle is None or seconds is None:
            continue
        if not isinstance(moment, int):
            moment = _microseconds(_as_datetime(moment))
        found.append((moment, float(seconds) - candle))
    found.sort()
    return [moment for moment, _wait in found], [wait for _moment, wait in found]


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _candle_seconds(timeframe: str) -> float | None:
    try:
        return timeframe_delta(timeframe).total_seconds()
    except ValueError:
        return None


def _interpolate(ranked: dict[int, float], count: int) -> list[float] | None:
    """Each of ``PERCENTILES`` from the waits next to its position among ``count``
    sorted waits (``ranked``: position -> wait): linear between the two nearest."""
    if not count:
        return None
    values = []
    for q in PERCENTILES:
        position = (count - 1) * q
        low = math.floor(position)
        high = min(low + 1, count - 1)
        a, b = ranked[low], ranked[high]
        values.append(a + (b - a) * (position - low))
    return values


def _percentile_figures(count: int, p50_p95: Any) -> dict[str, Any]:
    if not count or p50_p95 is None:
        return {"count": 0, "p50_seconds": None, "p95_seconds": None, "p50": "—", "p95": "—"}
    p50, p95 = (float(v) for v in p50_p95)
    return {
        "count": int(count),
        "p50_seconds": rate(p50, 1),
        "p95_seconds": rate(p95, 1),
        "p50": human_duration(p50),
        "p95": human_duration(p95),
    }


# --- Periodic tasks and heartbeats ---------------------------------------------------


def schedule_seconds(task: Any, now: datetime) -> float | None:
    """The interval of a periodic task in seconds: exact for an interval schedule, the
    gap between its next two runs for a crontab; ``None`` for one-off, clocked and solar."""
    if task.interval is not None:
        return float(timedelta(**{task.interval.period: task.interval.every}).total_seconds())
    if task.crontab is not None:
        try:
            cron = task.crontab.schedule
            # remaining_estimate(t): from the schedule's now to the first run after t.
            first = cron.remaining_estimate(now)
            second = cron.remaining_estimate(now + first + timedelta(seconds=1))
            return max((second - first).total_seconds(), 60.0)
        except Exception:
            return None
    return None


def _schedule_text(task: Any) -> str:
    for kind in ("interval", "crontab", "solar", "clocked"):
        value = getattr(task, kind)
        if value is not None:
            return str(value)
    return "—"


def _heartbeat(beat: Any) -> dict[str, Any]:
    if beat is None:
        return {
            "runs": 0,
            "failures": 0,
            "last_started_at": None,
            "last_success_at": None,
            "last_failure_at": None,
            "last_error": "",
            "last_duration_ms": None,
        }
    return {
        "runs": beat.runs,
        "failures": beat.failures,
        "last_started_at": beat.last_started_at,
        "last_success_at": beat.last_success_at,
        "last_failure_at": beat.last_failure_at,
        "last_error": beat.last_error,
        "last_duration_ms": beat.last_duration_ms,
    }


def periodic_tasks(*, now: datetime) -> dict[str, Any]:
    """Celery beat's periodic tasks beside their heartbeats, each flagged ``late`` when
    enabled and without a success in the last two intervals; then the heartbeats of the
    tasks run on demand. Two queries."""
    from django_celery_beat.models import PeriodicTask

    from analytics.models import TaskHeartbeat

    beats = {beat.task: beat for beat in TaskHeartbeat.objects.all()}
    scheduled = list(
        PeriodicTask.objects.select_related("interval", "crontab", "solar", "clocked").order_by(
            "name"
        )
    )
    rows = []
    for task in scheduled:
        beat = beats.get(task.task)
        interval = schedule_seconds(task, now)
        success = beat.last_success_at if beat is not None else None
        if not task.enabled:
            status = "disabled"
        elif interval is None:
            status = "not checked"
        elif success is None:
            status = "no success yet"
        elif success < now - timedelta(seconds=LATE_AFTER_INTERVALS * interval):
            status = "late"
        else:
            status = "ok"
        rows.append(
            {
                "name": task.name,
                "task": task.task,
                "enabled": task.enabled,
                "schedule": _schedule_text(task),
                "interval_seconds": interval,
                "last_run_at": task.last_run_at,
                "status": status,
                "flagged": status in {"late", "no success yet"},
                "since_success": human_duration((now - success).total_seconds())
                if success
                else None,
                **_heartbeat(beat),
            }
        )
    periodic_names = {task.task for task in scheduled}
    others = [
        {"task": name, **_heartbeat(beat)}
        for name, beat in sorted(beats.items())
        if name not in periodic_names
    ]
    return {
        "periodic": rows,
        "flagged": sum(row["flagged"] for row in rows),
        "on_demand": others,
        "late_after_intervals": LATE_AFTER_INTERVALS,
    }


# --- Broker queues -------------------------------------------------------------------


def queue_names() -> list[str]:
    """The default queue, then every queue a task route names, in order."""
    names = [getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")]
    for route in (getattr(settings, "CELERY_TASK_ROUTES", None) or {}).values():
        queue = route.get("queue") if isinstance(route, dict) else None
        if queue and queue not in names:
            names.append(queue)
    return names


def queue_depths() -> dict[str, Any]:
    """Messages waiting in each Celery queue (Redis lists named after the queue, with
    their priority lists) and messages delivered but not yet acknowledged, read in one
    round trip with a short timeout; an error (class and message, no password) when the
    broker cannot be reached."""
    from config.health import broker_location

    url = settings.CELERY_BROKER_URL
    names = queue_names()
    result: dict[str, Any] = {"broker": broker_location(url), "status": "ok", "error": ""}
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return {**result, "status": "unsupported", "queues": [], "unacked": None}
    try:
        pipe = _broker_client(url).pipeline(transaction=False)
        for name in names:
            for suffix in PRIORITY_SUFFIXES:
                pipe.llen(name + suffix)
        pipe.hlen("unacked")
        values = pipe.execute()
    except Exception as exc:
        return {
            **result,
            "status": "error",
            "error": error_text(exc),
            "queues": [],
            "unacked": None,
        }
    steps = len(PRIORITY_SUFFIXES)
    queues = [
        {"name": name, "depth": int(sum(values[i * steps : (i + 1) * steps]))}
        for i, name in enumerate(names)
    ]
    return {
        **result,
        "queues": queues,
        "total": sum(queue["depth"] for queue in queues),
        "unacked": int(values[-1]),
    }


_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def _broker_client(url: str) -> Any:
    """This process's Redis client of the broker at ``url``: its connection is kept
    between requests (a new one cost a connection and a handshake on every request).
    A connection the broker dropped is made again once (one retry, no backoff); a
    broker that cannot be reached fails within the timeouts."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
                socket_timeout=BROKER_TIMEOUT_SECONDS,
                retry=Retry(NoBackoff(), 1),
            )
            _clients[url] = client
        return client


# --- Recovery runs -------------------------------------------------------------------


def recovery_runs() -> list[dict[str, Any]]:
    """The last runs of the stuck-signal recovery, newest first. One query."""
    return [
        {
            "id": run.pk,
            "created_at": run.created_at,
            "actor": run.actor,
            "stuck_found": run.stuck_found,
            "books": sorted({action.get("book_name", "") for action in run.actions}),
            "detail": run.detail,
        }
        for run in RecoveryRun.objects.order_by("-created_at", "-id")[:RECOVERY_RUNS_SHOWN]
    ]


PAGE = register(
    Page(
        name="health",
        title="Pipeline health",
        template="analytics/pages/health.html",
        build=build,
        path="health/",
        order=10,
        default_period="all",
        # The payload is never cached: each request shows the wall clock, the stuck
        # signals, the heartbeats, the queues and a recovery run as they are now. What
        # the book's rows say is kept under its data stamp (``book_reads``).
        cache=Policy(cached=False),
    )
)
