"""Recorded one-off work: the claim that runs a request once, and the sweep that re-sends
a request whose message the broker lost (against the real Redis database of the run)."""

import json
import logging
import socket
import subprocess
import sys
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from analytics.models import Report
from analytics.reports import daily_report
from analytics.tests.factories import BookFactory, decided_signal
from shadow.tasks import ablation_leg
from work.models import WorkRequest
from work.services import SEND_GRACE, resend_after, work_request, work_resend_lost

pytestmark = pytest.mark.django_db


@pytest.fixture
def live_book():
    book = BookFactory(name="live", kind="live")
    decided_signal(book, blocked_by=["cooldown"], pnl="-5")
    return book


@pytest.fixture
def broker(settings):
    """The run's own Redis database, emptied; the queues' messages by queue name."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()

    def ids(queue: str) -> list[str]:
        return [json.loads(raw)["headers"]["id"] for raw in client.lrange(queue, 0, -1)]

    yield ids
    client.flushdb()


def _requested(kind: str = "analytics.daily_report", **fields) -> WorkRequest:
    return WorkRequest.objects.create(
        task_id=f"test-{kind}-{WorkRequest.objects.count()}", kind=kind, **fields
    )


def test_a_resent_request_that_already_finished_is_not_run_again(live_book, caplog):
    row = _requested()
    daily_report.apply(task_id=row.task_id).get()
    row.refresh_from_db()
    assert (row.outcome, row.attempts) == ("done", 1)
    assert row.finished_at is not None and row.running_until is None
    assert Report.objects.count() == 1

    # The sweep re-sent it (the first message only looked lost), or the broker restored
    # it: the second delivery finds the work done and does not do it again.
    Report.objects.all().delete()
    with caplog.at_level("WARNING", logger="work"):
        assert daily_report.apply(task_id=row.task_id).get() is None
    assert not Report.objects.exists(), "the report was made a second time"
    row.refresh_from_db()
    assert row.attempts == 1
    assert any("not run again: already done" in r.getMessage() for r in caplog.records)


def test_a_request_running_elsewhere_is_not_run_twice(live_book):
    now = timezone.now()
    row = _requested(
        started_at=now, attempts=1, running_until=now + timedelta(minutes=10), worker="other:1"
    )
    assert daily_report.apply(task_id=row.task_id).get() is None
    assert not Report.objects.exists()
    row.refresh_from_db()
    assert row.attempts == 1 and row.finished_at is None


def test_a_run_whose_process_died_on_this_machine_is_taken_over(live_book):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    now = timezone.now()
    row = _requested(
        started_at=now,
        attempts=1,
        running_until=now + timedelta(minutes=10),
        worker=f"{socket.gethostname()}:{dead.pid}",
    )
    daily_report.apply(task_id=row.task_id).get()
    assert Report.objects.count() == 1
    row.refresh_from_db()
    assert (row.outcome, row.attempts) == ("done", 2)


def test_a_run_that_fails_for_good_is_recorded_failed_and_never_resent(broker):
    row = _requested("shadow.ablation_leg", args=[987654, "cooldown"])
    result = ablation_leg.apply(args=[987654, "cooldown"], task_id=row.task_id)
    assert result.failed()
    row.refresh_from_db()
    assert row.outcome == "failed" and "DoesNotExist" in row.error
    later = timezone.now() + resend_after() + timedelta(hours=1)
    assert work_resend_lost(now=later).resent == []


def test_a_task_run_in_process_without_a_request_is_not_recorded(live_book):
    daily_report.apply().get()
    assert Report.objects.count() == 1
    assert not WorkRequest.objects.exists()


def test_the_sweep_resends_work_whose_message_is_gone_and_says_so(
    live_book, broker, django_capture_on_commit_callbacks, caplog
):
    # The request is recorded, but its send never happens (the process died at the
    # commit, or Redis refused it).
    with django_capture_on_commit_callbacks(execute=False):
        row = work_request(kind="shadow.ablation_leg", args=[live_book.pk, "cooldown"])
    assert broker("shadow") == []

    assert work_resend_lost(now=timezone.now()).resent == [], "not before the send grace"
    with caplog.at_level("WARNING", logger="work"):
        sweep = work_resend_lost(now=timezone.now() + SEND_GRACE + timedelta(seconds=1))
    assert sweep.resent == [row.task_id]
    assert broker("shadow") == [row.task_id], "sent again under its own task id"
    row.refresh_from_db()
    assert row.sends == 1 and row.sent_at is not None
    line = next(r.getMessage() for r in caplog.records if "[WORK] re-sent" in r.getMessage())
    assert "shadow.ablation_leg" in line and "never sent" in line

    # Sent and not started: lost only once it has waited longer than a normal queue wait.
    assert work_resend_lost(now=row.sent_at + resend_after() - timedelta(seconds=1)).resent == []
    assert work_resend_lost(now=row.sent_at + resend_after() + timedelta(seconds=1)).resent == [
        row.task_id
    ]
    assert broker("shadow") == [row.task_id, row.task_id]


def test_every_send_of_a_recorded_task_is_recorded_beats_included(broker):
    # Beat publishes the daily report by name, like this.
    from config.celery import app

    result = app.send_task("analytics.daily_report")
    row = WorkRequest.objects.get(task_id=result.id)
    assert (row.kind, row.sends) == ("analytics.daily_report", 1)
    assert broker("analytics") == [result.id]


def test_the_sweep_leaves_running_and_finished_work_alone_and_gives_up_in_the_end(broker, caplog):
    long_ago = timezone.now() - timedelta(days=1)
    running = _requested(
        sent_at=long_ago,
        sends=1,
        started_at=long_ago,
        running_until=timezone.now() + timedelta(minutes=5),
    )
    _requested(sent_at=long_ago, sends=1, finished_at=long_ago, outcome="done")
    lost = _requested(sent_at=long_ago, sends=5)
    with caplog.at_level("ERROR", logger="work"):
        sweep = work_resend_lost()
    assert sweep.resent == [] and sweep.given_up == [lost.task_id]
    lost.refresh_from_db()
    assert lost.outcome == "failed" and lost.error.startswith("given up: sent 5 times")
    assert any("given up" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    running.refresh_from_db()
    assert running.finished_at is None
    # Its run dies without finishing: once its claim has run out, it is sent again.
    after = running.running_until + timedelta(seconds=1)
    assert work_resend_lost(now=after).resent == [running.task_id]


def test_finished_work_is_forgotten_after_the_keep_days(settings):
    settings.WORK_KEEP_DAYS = 30
    old = timezone.now() - timedelta(days=31)
    _requested(finished_at=old, outcome="done")
    kept = _requested(finished_at=timezone.now(), outcome="done")
    assert work_resend_lost().pruned == 1
    assert list(WorkRequest.objects.all()) == [kept]


def test_the_sweep_task_alerts_on_work_resent_and_given_up(broker):
    from alerts.models import Alert
    from work.tasks import resend_lost

    long_ago = timezone.now() - timedelta(days=1)
    lost = [_requested(sent_at=long_ago, sends=1) for _ in range(2)]
    hopeless = _requested("shadow.ablation_leg", args=[1, "cooldown"], sent_at=long_ago, sends=5)
    result = resend_lost.apply().get()
    assert sorted(result["resent"]) == sorted(row.task_id for row in lost)
    assert result["given_up"] == [hopeless.task_id]
    resent = Alert.objects.get(kind="work_resent")
    assert resent.key == "analytics.daily_report" and resent.severity == "warning"
    assert all(row.task_id in resent.message for row in lost)
    given_up = Alert.objects.get(kind="work_given_up")
    assert given_up.key == hopeless.task_id and given_up.severity == "critical"
    assert sorted(broker("analytics")) == sorted(row.task_id for row in lost)


def test_a_broken_task_module_does_not_stop_work_from_being_sent(broker, monkeypatch, caplog):
    from celery import current_app

    from work import recording, services

    monkeypatch.setattr(services, "_registry_whole", False)
    monkeypatch.setattr(recording, "_kinds", None)
    monkeypatch.setitem(
        current_app.conf, "imports", [*current_app.conf.imports, "work.tests.no_such_module"]
    )
    row = _requested(sent_at=timezone.now() - timedelta(days=1), sends=1)
    with caplog.at_level("ERROR", logger="work"):
        assert work_resend_lost().resent == [row.task_id]
    assert broker("analytics") == [row.task_id]
    assert any("could not import every task module" in r.getMessage() for r in caplog.records)
    assert not services.registry_whole()
