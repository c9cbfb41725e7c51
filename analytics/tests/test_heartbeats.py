"""Task heartbeats: written by a real Celery worker for a task that succeeds and one that
fails; the handlers never fail a task, mask credentials, and skip eager runs."""

from types import SimpleNamespace

import pytest
from django.db import OperationalError
from django.db.models import F

from analytics import heartbeats
from analytics.models import TaskHeartbeat
from markets.redaction import forget_secrets, register_secrets


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_records_successes_and_failures(celery_worker_process, wait_for):
    from django.db import connection

    from signals.tests.factories import BookFactory

    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("a worker process cannot share an in-memory SQLite test database")

    BookFactory(name="live", kind="live")
    celery_worker_process.send("analytics.monitor_pipeline")
    celery_worker_process.send("analytics.monitor_pipeline")
    # No such book: the task raises DoesNotExist (not one of its retried errors).
    celery_worker_process.send("shadow.advance_book", book_id=987654)

    # Wait for the second run's success, not only its start: between the second run's
    # prerun (runs=2) and its success, the row still holds the first run's success,
    # stamped before the second start (the race this test once lost one run in five).
    monitor = wait_for(
        lambda: TaskHeartbeat.objects.filter(
            task="analytics.monitor_pipeline",
            runs=2,
            last_success_at__gte=F("last_started_at"),
        ).first(),
        what="two monitor_pipeline runs recorded",
    )
    failed = wait_for(
        lambda: TaskHeartbeat.objects.filter(task="shadow.advance_book", failures=1).first(),
        what="the failing advance_book recorded",
    )
    assert monitor.failures == 0 and monitor.last_failure_at is None
    assert monitor.last_started_at <= monitor.last_success_at
    assert monitor.last_duration_ms is not None and monitor.last_duration_ms < 60_000
    assert failed.runs == 1 and failed.last_success_at is None
    assert failed.last_error.startswith("DoesNotExist: Book matching query does not exist")
    assert failed.last_started_at <= failed.last_failure_at


def fake_task(name="analytics.test", task_id="id-1", eager=False):
    return SimpleNamespace(name=name, request=SimpleNamespace(id=task_id, is_eager=eager))


@pytest.mark.django_db
def test_the_handlers_count_runs_and_record_the_last_error_masked():
    register_secrets("sk-live-0123456789")
    try:
        task = fake_task()
        heartbeats.on_prerun(sender=task, task_id="id-1")
        heartbeats.on_success(sender=task)
        heartbeats.on_postrun(sender=task, task_id="id-1")
        heartbeats.on_prerun(sender=task, task_id="id-2")
        error = RuntimeError(
            "exchange said no to sk-live-0123456789 via redis://ops:pa55word@broker:6379/0"
        )
        heartbeats.on_failure(sender=task, task_id="id-2", exception=error)
        heartbeats.on_postrun(sender=task, task_id="id-2")
    finally:
        forget_secrets()
    beat = TaskHeartbeat.objects.get(task="analytics.test")
    assert (beat.runs, beat.failures) == (2, 1)
    assert beat.last_success_at is not None and beat.last_failure_at >= beat.last_success_at
    assert (
        beat.last_error == "RuntimeError: exchange said no to *** via redis://ops:***@broker:6379/0"
    )
    assert heartbeats._started == {}


@pytest.mark.django_db
def test_a_failing_database_write_never_fails_the_task(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise OperationalError("the database is gone")

    monkeypatch.setattr(TaskHeartbeat.objects, "filter", broken)
    task = fake_task()
    heartbeats.on_prerun(sender=task, task_id="id-1")  # does not raise
    heartbeats.on_success(sender=task)
    heartbeats.on_failure(sender=task, task_id="id-1", exception=ValueError("x"))
    heartbeats.on_postrun(sender=task, task_id="id-1")
    assert "could not record analytics.test" in caplog.text


@pytest.mark.django_db
def test_eager_runs_are_not_recorded():
    from analytics.tasks import monitor_pipeline

    monitor_pipeline.apply()
    heartbeats.on_prerun(sender=fake_task(eager=True), task_id="x")
    assert not TaskHeartbeat.objects.exists()
