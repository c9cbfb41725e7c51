"""Fault: Redis emptied with one-off work queued and no worker consuming (issue 13, point 5).

Before: the daily report, the threshold recommendations and the ablation legs queued at
the time never ran, and nothing said so. Now each is a ``WorkRequest`` row in the
database; the sweep (``work.resend_lost``) sends again what was not started, and each
run claims its row, so every piece of work runs exactly once however many of its
messages arrive.
"""

import re
from datetime import timedelta
from io import StringIO

import pytest
import redis
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from analytics.models import Report
from analytics.tests.factories import BookFactory, decided_signal
from config.celery import app
from config.tests import test_faults
from shadow.ablation import ablation_start
from signals.models import Book
from work.models import WorkRequest
from work.services import resend_after, work_resend_lost

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

processes = test_faults.processes


def _queued(client: redis.Redis) -> dict[str, int]:
    return {queue: client.llen(queue) for queue in ("analytics", "shadow")}


@pytest.mark.reliability(
    fault="Redis emptied with one-off work queued and no worker consuming: the daily report, "
    "the threshold recommendations, 2 ablation legs",
    expected="the sweep sends each again (logged); each runs exactly once, even with every "
    "message re-sent twice",
)
def test_redis_emptied_with_each_kind_of_work_queued_every_piece_runs_exactly_once(
    processes, settings, reliability
):
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    # A live book with a signal (the daily report has something to report), and a
    # replayed history to ablate (two default guards: two legs).
    live = BookFactory(name="live", kind="live")
    decided_signal(live, blocked_by=["cooldown"], pnl="-5")
    test_faults._markets(400)
    call_command(
        "replay",
        *("--exchange", "gen", "--all-symbols", "--timeframe", "1h"),
        *("--book", "history", "--no-progress"),
        stdout=StringIO(),
    )
    history = Book.objects.get(name="history")

    # Queued while no worker consumes: beat's two daily tasks (published by name, as
    # beat does) and an ablation asked for from the guard page.
    app.send_task("analytics.daily_report")
    app.send_task("analytics.recommend_thresholds")
    with transaction.atomic():
        guards = ablation_start(book=history)
    assert len(guards) == 2
    assert _queued(client) == {"analytics": 2, "shadow": 2}
    rows = list(WorkRequest.objects.order_by("id"))
    assert [row.kind for row in rows] == [
        "analytics.daily_report",
        "analytics.recommend_thresholds",
        "shadow.ablation_leg",
        "shadow.ablation_leg",
    ]
    assert all(row.sends == 1 and row.finished_at is None for row in rows)

    # Redis comes back empty (no persistence, like the production one): every message
    # is gone.
    client.flushdb()
    assert client.dbsize() == 0

    # The sweep, run once the grace has passed, sends every piece again; a second sweep
    # as well (as if the first re-send only looked lost): two messages of each.
    later = timezone.now() + resend_after() + timedelta(seconds=1)
    first = work_resend_lost(now=later)
    assert sorted(first.resent) == sorted(row.task_id for row in rows)
    second = work_resend_lost(now=timezone.now() + resend_after() + timedelta(seconds=1))
    assert sorted(second.resent) == sorted(first.resent)
    assert _queued(client) == {"analytics": 4, "shadow": 4}

    worker = processes("worker").start()
    worker.wait_for("ready")
    test_faults._wait(
        lambda: (
            not WorkRequest.objects.filter(finished_at__isnull=True).exists()
            and sum(_queued(client).values()) == 0
        ),
        timeout=180,
        what="every piece of work and every duplicate message consumed",
    )
    worker.wait_for("not run again", count=4, timeout=60)
    worker.wait_for("succeeded in", count=8, timeout=60)

    log = worker.text()
    done = WorkRequest.objects.filter(outcome="done")
    runs = sum(row.attempts for row in done)
    reliability.observed(
        f"{len(first.resent)} of {len(rows)} re-sent by the first sweep (logged), "
        f"{len(re.findall(r'] received', log))} messages received, {done.count()} done in "
        f"{runs} run(s); {log.count('not run again')} duplicate deliveries not run",
        lost=len(rows) - done.count(),
        duplicated=runs - done.count(),
    )
    for row in WorkRequest.objects.all():
        assert (row.outcome, row.attempts, row.sends) == ("done", 1, 3), row
    assert len(re.findall(r"not run again: already done", log)) == 4
    assert log.count("[REPORT] book=live ") == 1, "the daily report ran once"
    assert Report.objects.filter(book=live).count() == 1
    legs = Book.objects.filter(ablation_of=history)
    assert sorted(legs.values_list("without_guard", flat=True)) == sorted(guards)
    assert legs.count() == 2
    assert len(re.findall(r"Task analytics\.recommend_thresholds\[[^\]]+\] succeeded", log)) == 2
    assert "raised unexpected" not in log


def test_a_claim_that_meets_a_database_error_is_retried_not_run_unclaimed():
    """The claim's own write fails (PostgreSQL's serialization failure, once): the task
    asks again after a pause and then runs the work once, never without its claim."""
    from django.db import connection

    from analytics.reports import daily_report

    live = BookFactory(name="live", kind="live")
    decided_signal(live, blocked_by=["cooldown"], pnl="-5")
    row = WorkRequest.objects.create(task_id="claim-fault", kind="analytics.daily_report")
    with connection.cursor() as cursor:
        cursor.execute("CREATE SEQUENCE claim_fault_shots")
        cursor.execute(
            "CREATE FUNCTION claim_fault_once() RETURNS trigger AS $$ BEGIN "
            "IF nextval('claim_fault_shots') = 1 THEN "
            "RAISE EXCEPTION 'fault' USING ERRCODE = '40001'; END IF; RETURN NEW; END $$ "
            "LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER claim_fault_once BEFORE UPDATE ON work_workrequest "
            "FOR EACH ROW EXECUTE FUNCTION claim_fault_once()"
        )
    try:
        result = daily_report.apply(task_id=row.task_id)
        assert result.successful(), result.traceback
        with connection.cursor() as cursor:
            cursor.execute("SELECT last_value FROM claim_fault_shots")
            (shots,) = cursor.fetchone()
    finally:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS claim_fault_once ON work_workrequest")
            cursor.execute("DROP FUNCTION IF EXISTS claim_fault_once()")
            cursor.execute("DROP SEQUENCE IF EXISTS claim_fault_shots")
    assert shots >= 2, "the first claim failed and a retry claimed"
    row.refresh_from_db()
    assert (row.outcome, row.attempts) == ("done", 1)
    assert Report.objects.filter(book=live).count() == 1


def test_what_a_real_beat_sent_before_redis_was_emptied_runs_once(processes, settings):
    """Beat's own sends are recorded (Celery's publish signals in the beat process), so
    the daily report it sent into a Redis that then came back empty still runs."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    live = BookFactory(name="live", kind="live")
    decided_signal(live, blocked_by=["cooldown"], pnl="-5")
    every = IntervalSchedule.objects.create(every=3, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="report-probe", task="analytics.daily_report", interval=every)

    beat = processes("beat").start()
    test_faults._wait(
        lambda: WorkRequest.objects.filter(sends=1).exists(), timeout=60, what="beat's send"
    )
    beat.stop()
    sent = list(WorkRequest.objects.values_list("task_id", flat=True))
    assert sent and client.llen("analytics") >= len(sent)
    client.flushdb()

    later = timezone.now() + resend_after() + timedelta(seconds=1)
    assert sorted(work_resend_lost(now=later).resent) == sorted(sent)
    worker = processes("worker").start()
    worker.wait_for("ready")
    test_faults._wait(
        lambda: not WorkRequest.objects.filter(finished_at__isnull=True).exists(),
        timeout=60,
        what="the re-sent reports",
    )
    assert [row.attempts for row in WorkRequest.objects.all()] == [1] * len(sent)
    assert worker.text().count("[REPORT] book=live ") == len(sent)
    assert Report.objects.filter(book=live).count() == 1  # one per book and day, replaced
