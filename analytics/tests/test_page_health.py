"""The Pipeline health page: counts per state, stuck signals, throughput per hour and
decision latency checked against plain references computed here from the rows; the
periodic tasks beside their heartbeats; the broker's queues read from the real Redis;
a fixed number of queries; and the page equal to its JSON twin."""

import math
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import numpy as np
import pytest
import time_machine
from django.urls import reverse

from analytics.models import RecoveryRun, TaskHeartbeat
from analytics.pages.health import queue_depths, queue_names
from analytics.tests.factories import BookFactory, SignalFactory, SignalTransitionFactory
from markets.bars import timeframe_delta
from shadow import rollups
from shadow.latency import RATIO, SMALLEST
from signals.models import Book, Signal, SignalState, SignalTransition

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
HEALTH = reverse("analytics:health")
TWIN = reverse("analytics:api-page", args=["health"])


def at(moment, factory, **kwargs):
    """A row written (``created_at``) at ``moment``."""
    with time_machine.travel(moment, tick=False):
        return factory(**kwargs)


def get(client, url, book, **params):
    with time_machine.travel(NOW, tick=False):
        response = client.get(url, {"book": book.pk, **params})
    assert response.status_code == 200
    return response


def twin_data(client, book):
    return get(client, TWIN, book).json()["data"]


@pytest.fixture
def live():
    return BookFactory(name="live", kind=Book.Kind.LIVE)


def plain_stuck_ids(book, now):
    """The stuck signals by the documented rules, one row at a time."""
    hour = timedelta(hours=1)
    late = []
    for signal in Signal.objects.filter(book=book).order_by("id"):
        candle = {"1h": hour, "4h": 4 * hour, "1d": 24 * hour}[signal.timeframe]
        since = signal.decided_at or signal.created_at
        if signal.state == SignalState.GENERATED:
            since = signal.created_at
            allowed = timedelta(minutes=10)
        elif signal.state == SignalState.APPROVED:
            allowed = 2 * candle
        elif signal.state == SignalState.EXECUTED:
            allowed = (signal.max_hold_candles + 2) * candle
        else:
            continue
        if since < now - allowed:
            late.append((since, signal.pk))
    return [pk for _, pk in sorted(late)]


def populate(live):
    """Signals in every kind of situation, some stuck and some not."""
    at(NOW - timedelta(minutes=11), SignalFactory, book=live)  # generated, late
    at(NOW - timedelta(minutes=9), SignalFactory, book=live)  # generated, in time
    for hours_ago, timeframe in ((3, "1h"), (1, "1h"), (9, "4h"), (7, "4h")):
        at(
            NOW - timedelta(hours=hours_ago, minutes=5),
            SignalFactory,
            book=live,
            state=SignalState.APPROVED,
            decided_at=NOW - timedelta(hours=hours_ago, minutes=1),
            strategy_config__timeframe=timeframe,
        )
    for hours_ago in (30, 20):  # executed, max hold 24 candles of 1h: 26 h allowed
        at(
            NOW - timedelta(hours=hours_ago),
            SignalFactory,
            book=live,
            state=SignalState.EXECUTED,
            decided_at=NOW - timedelta(hours=hours_ago),
        )
    for state in (SignalState.BLOCKED, SignalState.CLOSED, SignalState.REJECTED):
        at(NOW - timedelta(days=5), SignalFactory, book=live, state=state)
    at(NOW - timedelta(days=5), SignalFactory, book=BookFactory())  # another book


def test_counts_per_state_and_stuck_signals_match_the_rows(trader_client, live):
    populate(live)
    data = twin_data(trader_client, live)
    states = data["states"]

    expected_counts = {state.value: 0 for state in SignalState}
    for signal in Signal.objects.filter(book=live):
        expected_counts[signal.state] += 1
    assert {row["state"]: row["count"] for row in states["counts"]} == expected_counts
    assert [row["state"] for row in states["counts"]] == [s.value for s in SignalState]
    assert expected_counts[SignalState.FAILED] == 0  # shown with zero
    assert states["total"] == sum(expected_counts.values())

    expected_ids = plain_stuck_ids(live, NOW)
    assert len(expected_ids) == 4  # one generated, one 1h and one 4h approved, one executed
    assert [row["id"] for row in states["stuck"]] == expected_ids
    assert states["stuck_count"] == len(expected_ids)
    per_state = {row["state"]: row["stuck"] for row in states["counts"]}
    assert per_state == {
        "generated": 1,
        "approved": 2,
        "blocked": None,
        "rejected": None,
        "executed": 1,
        "failed": None,
        "expired": None,
        "closed": None,
    }
    oldest = states["stuck"][0]
    assert oldest["state"] == "executed"
    assert oldest["age_seconds"] == 30 * 3600
    assert oldest["age"] == "1 d 6 h"

    html = get(trader_client, HEALTH, live).content.decode()
    for signal_id in expected_ids:
        assert f'href="/signals/{signal_id}/"' in html
    assert "10 min after it was created" in html
    assert "2 candles past its maximum hold" in html


def test_the_deadlines_come_from_the_setting(trader_client, live, settings):
    populate(live)
    settings.STUCK_SIGNAL_DEADLINES = {
        "generated": timedelta(minutes=5),
        "approved": None,
        "executed": timedelta(hours=1),
    }
    states = twin_data(trader_client, live)["states"]
    stuck = Signal.objects.filter(pk__in=[row["id"] for row in states["stuck"]])
    # Generated after 5 min: both; executed 1 h past its 24-candle hold: the 30 h one.
    assert sorted(stuck.values_list("state", flat=True)) == ["executed", "generated", "generated"]
    per_state = {row["state"]: row["stuck"] for row in states["counts"]}
    assert per_state["approved"] is None  # not watched
    assert states["counts"][0]["deadline"] == "5 min after it was created"


def test_each_executed_signal_is_late_by_its_own_maximum_hold(trader_client, live):
    """Executed signals of one timeframe with different maximum holds: each is judged by
    its own, read from its row in the statement (one condition per timeframe)."""
    # (hours in the state, max hold in 1h candles): late past hold + 2 candles.
    for hours_ago, hold in ((30, 24), (30, 28), (20, 10), (20, 19), (13, 10), (13, 11)):
        at(
            NOW - timedelta(hours=hours_ago),
            SignalFactory,
            book=live,
            state=SignalState.EXECUTED,
            decided_at=NOW - timedelta(hours=hours_ago),
            max_hold_candles=hold,
        )
    expected = plain_stuck_ids(live, NOW)
    # 30 h > 26, 20 h > 12, 13 h > 12; not 30 h = 30 (the deadline itself), 20 h < 21
    # nor 13 h = 13.
    assert len(expected) == 3
    states = twin_data(trader_client, live)["states"]
    assert [row["id"] for row in states["stuck"]] == expected
    assert states["stuck_count"] == 3


def test_a_replay_says_its_stuck_signals_are_where_its_candles_ended(trader_client):
    replay = BookFactory()
    at(NOW - timedelta(days=2), SignalFactory, book=replay, state=SignalState.APPROVED)
    html = get(trader_client, HEALTH, replay).content.decode()
    assert "This is a replay" in html
    assert twin_data(trader_client, replay)["live"] is False


def test_throughput_counts_rows_per_wall_clock_hour_over_the_last_24(trader_client, live):
    moments = [
        NOW - timedelta(minutes=1),  # the hour in progress
        NOW - timedelta(minutes=29),  # 12:01, same hour
        NOW - timedelta(minutes=31),  # 11:59
        NOW - timedelta(hours=5),
        NOW - timedelta(hours=23, minutes=30),  # 13:00 yesterday: the first bucket
        NOW - timedelta(hours=23, minutes=31),  # 12:59 yesterday: too old
        NOW - timedelta(days=3),
    ]
    for moment in moments:
        signal = at(moment, SignalFactory, book=live, state=SignalState.BLOCKED)
        at(moment, SignalTransitionFactory, signal=signal, from_state="", to_state="generated")
        at(moment, SignalTransitionFactory, signal=signal)
    other = BookFactory()
    at(NOW, SignalTransitionFactory, signal=SignalFactory(book=other))

    tp = twin_data(trader_client, live)["throughput"]

    first = datetime(2024, 2, 29, 13, tzinfo=UTC)
    starts = [first + timedelta(hours=i) for i in range(24)]
    assert tp["hours"] == [start.isoformat() for start in starts]
    expected_transitions = [
        sum(
            1
            for t in SignalTransition.objects.filter(signal__book=live)
            if start <= t.created_at < start + timedelta(hours=1) and t.created_at <= NOW
        )
        for start in starts
    ]
    expected_signals = [
        sum(
            1
            for s in Signal.objects.filter(book=live)
            if start <= s.created_at < start + timedelta(hours=1)
        )
        for start in starts
    ]
    assert tp["transitions"] == expected_transitions
    assert tp["signals"] == expected_signals
    assert sum(expected_signals) == 5 and expected_signals[-1] == 2 and expected_signals[0] == 1
    assert tp["total_transitions"] == 10
    chart = tp["chart"]
    assert chart["labels"][0] == "13:00" and chart["labels"][-1] == "12:00"
    assert chart["series"][0]["values"] == [float(v) for v in expected_transitions]


def test_decision_latency_percentiles_match_numpy(trader_client, live):
    rng = np.random.default_rng(5)
    hour = timedelta(hours=1)
    for i in range(40):
        timeframe = "4h" if i % 3 == 0 else "1h"
        candle = 4 * hour if timeframe == "4h" else hour
        decided = NOW - timedelta(hours=int(rng.integers(0, 72)), minutes=int(rng.integers(60)))
        delay = timedelta(seconds=float(rng.uniform(1, 900)))
        candle_time = decided - delay - candle
        signal = at(
            decided,
            SignalFactory,
            book=live,
            state=SignalState.BLOCKED if i % 2 else SignalState.CLOSED,
            candle_time=candle_time,
            decided_at=candle_time + candle,  # market time, as the engine writes it
            strategy_config__timeframe=timeframe,
        )
        if i % 5:  # the decision's log row; without it the signal's created_at counts
            at(
                decided,
                SignalTransitionFactory,
                signal=signal,
                name="approve",
                from_state="generated",
                to_state="approved",
            )
            at(
                decided + hour,
                SignalTransitionFactory,
                signal=signal,
                name="execute",
                from_state="approved",
                to_state="executed",
            )
    at(NOW - timedelta(hours=30), SignalFactory, book=live)  # undecided: left out

    latency = twin_data(trader_client, live)["latency"]

    waits, recent = [], []
    for signal in Signal.objects.filter(book=live).exclude(state=SignalState.GENERATED):
        decision = signal.transitions.filter(from_state="generated").order_by("id").first()
        decided = decision.created_at if decision else signal.created_at
        candle = timedelta(hours=4 if signal.timeframe == "4h" else 1)
        wait = (decided - (signal.candle_time + candle)).total_seconds()
        waits.append(wait)
        if decided >= NOW - timedelta(hours=24):
            recent.append(wait)
    assert 5 < len(recent) < len(waits) == 40
    for key, values in (("all_time", waits), ("last_24h", recent)):
        assert latency[key]["count"] == len(values)
        # Shown to 0.1 s; all time is read from the latency histogram, within 1 %.
        rel = 0.01 if key == "all_time" else 0
        for p in (50, 95):
            expected = np.percentile(values, p)
            assert latency[key][f"p{p}_seconds"] == pytest.approx(expected, rel=rel, abs=0.05)


def test_periodic_tasks_are_flagged_when_they_have_not_succeeded_in_two_intervals(
    trader_client, live
):
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    minute = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    five = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    daily = CrontabSchedule.objects.create(minute="0", hour="6")
    PeriodicTask.objects.create(name="advance", task="shadow.advance_live_books", interval=minute)
    PeriodicTask.objects.create(name="monitor", task="analytics.monitor_pipeline", interval=five)
    PeriodicTask.objects.create(name="sync", task="signals.sync_watched_markets", interval=minute)
    PeriodicTask.objects.create(name="report", task="analytics.daily_report", crontab=daily)
    PeriodicTask.objects.create(name="off", task="analytics.off", interval=minute, enabled=False)
    TaskHeartbeat.objects.create(
        task="shadow.advance_live_books", last_success_at=NOW - timedelta(seconds=130), runs=9
    )
    TaskHeartbeat.objects.create(
        task="analytics.monitor_pipeline",
        last_success_at=NOW - timedelta(minutes=9),
        last_failure_at=NOW - timedelta(minutes=4),
        last_error="OperationalError: server closed the connection",
        runs=3,
        failures=1,
    )
    TaskHeartbeat.objects.create(
        task="analytics.daily_report", last_success_at=NOW - timedelta(hours=30)
    )
    TaskHeartbeat.objects.create(task="shadow.advance_book", last_success_at=NOW, runs=40)

    tasks = twin_data(trader_client, live)["tasks"]

    status = {row["name"]: row["status"] for row in tasks["periodic"]}
    assert status == {
        "advance": "late",  # 130 s > 2 x 60 s
        "monitor": "ok",  # 9 min < 2 x 5 min, though it failed since
        "sync": "no success yet",
        "report": "ok",  # daily: 30 h < 48 h
        "off": "disabled",
    }
    assert tasks["flagged"] == 2
    report = next(row for row in tasks["periodic"] if row["name"] == "report")
    assert report["interval_seconds"] == 86400
    monitor = next(row for row in tasks["periodic"] if row["name"] == "monitor")
    assert monitor["failures"] == 1 and "OperationalError" in monitor["last_error"]
    assert [row["task"] for row in tasks["on_demand"]] == ["shadow.advance_book"]

    html = get(trader_client, HEALTH, live).content.decode()
    assert "server closed the connection" in html
    assert "every 5 minutes" in html


def test_queue_depth_is_read_from_the_real_redis(trader_client, live, broker, settings):
    assert queue_names() == ["default", "market_data", "signals", "shadow", "analytics", "alerts"]
    for _ in range(3):
        broker.lpush("signals", b"{}")
    broker.lpush("analytics", b"{}")
    broker.lpush("analytics\x06\x169", b"{}")  # a priority-9 message of the same queue
    broker.hset("unacked", "tag-1", b"{}")

    queues = twin_data(trader_client, live)["queues"]

    assert queues["status"] == "ok"
    assert {q["name"]: q["depth"] for q in queues["queues"]} == {
        "default": 0,
        "market_data": 0,
        "signals": 3,
        "shadow": 0,
        "analytics": 2,
        "alerts": 0,
    }
    assert queues["total"] == 5 and queues["unacked"] == 1
    parts = urlsplit(settings.CELERY_BROKER_URL)
    assert queues["broker"] == f"redis://{parts.hostname}:{parts.port}"


def test_a_broker_that_is_down_is_an_error_on_the_page_without_its_password(
    trader_client, live, settings
):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CELERY_BROKER_URL = f"redis://worker:hunter2-secret@127.0.0.1:{port}/0"

    queues = queue_depths()
    assert queues["status"] == "error" and queues["error"]
    page = get(trader_client, HEALTH, live).content.decode()
    assert "could not be read" in page
    assert f"redis://127.0.0.1:{port}" in page
    twin = get(trader_client, TWIN, live).content.decode()
    assert "hunter2" not in page and "hunter2" not in twin


def test_the_page_issues_a_fixed_number_of_queries(trader_client, live, broker):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries():
        with CaptureQueriesContext(connection) as captured:
            get(trader_client, HEALTH, live)
        return len(captured)

    populate(live)
    TaskHeartbeat.objects.create(task="a.task", runs=1)
    RecoveryRun.objects.create(actor="beat", stuck_found=1)
    # The engine keeps a book's rollups in the transaction that writes its signals; rows
    # written here by factories get theirs the same way before the page is read.
    rollups.rebuild(live.pk)
    small = queries()
    for i in range(30):
        signal = at(NOW - timedelta(hours=i), SignalFactory, book=live, state=SignalState.BLOCKED)
        at(NOW - timedelta(hours=i), SignalTransitionFactory, signal=signal, from_state="generated")
        at(NOW - timedelta(hours=i), SignalFactory, book=live, strategy_config__timeframe="4h")
        TaskHeartbeat.objects.create(task=f"task.{i}", runs=1)
        RecoveryRun.objects.create(actor="beat", stuck_found=i)
    rollups.rebuild(live.pk)
    assert queries() == small
    # The frame's (session, user, the user's and their groups' permissions, books,
    # filters, data sources), the page's own (what the book's rows say, read for the hour
    # with the page cache off here: the rollups' freshness check and their sum per state,
    # the pending signals, the latency histogram, the paper balance when a signal failed,
    # the rows per hour (two), the last 24 hours' decisions; then heartbeats, periodic
    # tasks, recovery runs), and the system's line (/healthz's checks, the broker's
    # reached by the queue read).
    assert small <= 32


def test_the_page_shows_what_its_twin_says(trader_client, live, broker):
    populate(live)
    data = twin_data(trader_client, live)
    page = get(trader_client, HEALTH, live)
    assert page.context["data"]["states"]["stuck_count"] == data["states"]["stuck_count"]
    assert page.context["data"]["latency"] == data["latency"]
    assert page.context["data"]["throughput"]["transitions"] == data["throughput"]["transitions"]
    html = page.content.decode()
    assert "Run recovery now" not in html  # the trader is not staff


def plain_latency(book, now):
    """The decision latency by the documented rule, one signal at a time: the waits of
    every decision and of those of the last 24 hours, for numpy's percentiles."""
    waits, recent = [], []
    for signal in Signal.objects.filter(book=book).exclude(state=SignalState.GENERATED):
        try:
            candle = timeframe_delta(signal.timeframe)
        except ValueError:
            continue
        decision = signal.transitions.filter(from_state="generated").order_by("id").first()
        decided = decision.created_at if decision else signal.created_at
        wait = (decided - (signal.candle_time + candle)).total_seconds()
        waits.append(wait)
        if decided >= now - timedelta(hours=24):
            recent.append(wait)
    return waits, recent


def test_decision_latency_equals_numpy_on_every_kind_of_timeframe(live):
    """Ranked in the database, interpolated here: the same p50 and p95 as numpy over
    the waits, at several cutoffs, every timeframe kind included (an unreadable one is
    left out), and an empty book."""
    from analytics.pages.health import decision_latency

    rng = np.random.default_rng(11)
    frames = ("1m", "15m", "1h", "4h", "1d", "1w", "bad")
    for i in range(61):
        timeframe = frames[i % len(frames)]
        decided = NOW - timedelta(
            hours=int(rng.integers(0, 60)), seconds=float(rng.uniform(0, 3600))
        )
        signal = at(
            decided,
            SignalFactory,
            book=live,
            state=SignalState.BLOCKED if i % 2 else SignalState.CLOSED,
            candle_time=decided - timedelta(seconds=float(rng.uniform(-100, 90000))),
            strategy_config__timeframe=timeframe,
        )
        if i % 4:
            at(
                decided + timedelta(microseconds=int(rng.integers(1, 999_999))),
                SignalTransitionFactory,
                signal=signal,
                name="approve",
                from_state="generated",
                to_state="approved",
            )
    Signal.objects.filter(book=live, strategy_config__timeframe="bad").update(timeframe="bad")
    counts = set()
    for hours in (0, 5, 24, 30, 100):
        now = NOW - timedelta(hours=hours)
        latency = decision_latency(book=live, now=now)
        waits, recent = plain_latency(live, now)
        assert len(waits) == 53  # 8 of 61 on the bad timeframe
        counts.add(len(recent))
        for key, values in (("all_time", waits), ("last_24h", recent)):
            assert latency[key]["count"] == len(values)
            if not values:
                assert latency[key]["p50_seconds"] is None
                continue
            for p in (50, 95):
                # Shown to 0.1 s: within half of that of numpy's figure; all time is
                # read from the latency histogram: within 1 % of the larger of the two
                # waits the percentile lies between, plus a millisecond, besides.
                ordered = sorted(values)
                low = math.floor((len(values) - 1) * p / 100)
                near = max(abs(v) for v in ordered[low : low + 2])
                slack = (RATIO - 1) * near + SMALLEST if key == "all_time" else 0
                got = latency[key][f"p{p}_seconds"]
                assert abs(got - np.percentile(values, p)) <= 0.05 + slack + 1e-9
    assert len(counts) >= 3  # the cutoffs see different recent decisions
    empty = decision_latency(book=BookFactory(name="empty"), now=NOW)
    assert empty["all_time"] == empty["last_24h"]
    assert empty["all_time"] == {
        "count": 0,
        "p50_seconds": None,
        "p95_seconds": None,
        "p50": "—",
        "p95": "—",
    }


def test_what_the_rows_say_is_kept_until_the_book_is_written(trader_client, live, settings):
    """With the page cache on, what the page reads from the book's rows is kept under the
    book's data stamp and the hour: the next request of the hour reads none of those
    rows, yet the last 24 hours still end at its own clock (a decision leaves them to
    the microsecond), and a write of the book is seen by the very next request."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.PAGE_CACHE = True
    cache.clear()

    def decide(moment, **kwargs):
        signal = at(moment, SignalFactory, book=live, state=SignalState.BLOCKED, **kwargs)
        at(moment, SignalTransitionFactory, signal=signal, from_state="generated")
        return signal

    edge = NOW - timedelta(hours=24) + timedelta(minutes=10)  # leaves at NOW + 10 min
    decide(edge)
    decide(NOW - timedelta(hours=1))

    def read(clock):
        with (
            time_machine.travel(clock, tick=False),
            CaptureQueriesContext(connection) as captured,
        ):
            response = trader_client.get(TWIN, {"book": live.pk})
        assert response.status_code == 200
        return response.json()["data"], len(captured)

    data, first = read(NOW)
    assert data["latency"]["last_24h"]["count"] == 2
    assert data["throughput"]["total_signals"] == 1  # the edge's hour is not on the chart
    blocked = next(row for row in data["states"]["counts"] if row["state"] == "blocked")
    assert blocked["count"] == 2

    data, kept = read(NOW + timedelta(minutes=10))  # the edge's decision is 24 h old
    assert kept < first
    assert data["latency"]["last_24h"]["count"] == 2
    data, again = read(NOW + timedelta(minutes=10, microseconds=1))
    assert again == kept
    assert data["latency"]["last_24h"]["count"] == 1

    # A write (a new decision): the next request sees it.
    decide(NOW + timedelta(minutes=11))
    data, after = read(NOW + timedelta(minutes=12))
    assert after > kept
    assert data["latency"]["last_24h"]["count"] == 2
    assert data["throughput"]["total_signals"] == 2
    blocked = next(row for row in data["states"]["counts"] if row["state"] == "blocked")
    assert blocked["count"] == 3

    # The next hour reads the rows again: its chart starts an hour later.
    data, next_hour = read(NOW + timedelta(minutes=40))
    assert next_hour > kept
    assert data["throughput"]["hours"][0] == "2024-02-29T14:00:00+00:00"


def test_the_stuck_signals_picked_from_the_pending_ones_are_those_the_database_finds(live):
    """``analytics.stuck.late`` over the rows of ``pending`` (what the page keeps for the
    hour) against ``overdue`` (the statement /healthz and recovery run), at clocks on
    and around every signal's deadline, with the default and other deadlines."""
    from django.test import override_settings

    from analytics.stuck import late, overdue, pending

    populate(live)
    for hold in (3, 24, 30):  # executed signals of one timeframe, several holds
        at(
            NOW - timedelta(hours=hold),
            SignalFactory,
            book=live,
            state=SignalState.EXECUTED,
            decided_at=NOW - timedelta(hours=hold, minutes=1),
            max_hold_candles=hold - 2,
        )
    bad = at(NOW - timedelta(hours=2), SignalFactory, book=live, state=SignalState.APPROVED)
    Signal.objects.filter(pk=bad.pk).update(timeframe="bad")  # never flagged
    rows = pending(book=live)
    assert (
        len(rows)
        == Signal.objects.filter(book=live, state__in=["generated", "approved", "executed"]).count()
    )
    clocks = [NOW + timedelta(minutes=m) for m in range(-120, 600, 7)]
    clocks += [
        NOW + timedelta(hours=1, minutes=1),
        NOW + timedelta(hours=1, minutes=1, microseconds=1),
    ]
    seen = set()
    for deadlines in (
        None,
        {"generated": timedelta(minutes=5), "approved": None, "executed": timedelta(hours=1)},
    ):
        with override_settings(STUCK_SIGNAL_DEADLINES=deadlines):
            for clock in clocks:
                expected = list(
                    overdue(book=live, now=clock)
                    .order_by("since", "id")
                    .values_list("id", flat=True)
                )
                assert [row[0] for row in late(rows, now=clock)] == expected, clock
                seen.add(len(expected))
    assert len(seen) >= 5  # the clocks cross deadlines
