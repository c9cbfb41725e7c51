"""Task heartbeats: written by a real Celery worker for a task that succeeds and one that
fails; the handlers never fail a task, mask credentials, and skip eager runs. A name's
row is written at most once per HEARTBEAT_WRITE_SECONDS per process (a burst of tasks
on a real worker, counted by a trigger on the table), failures and the recovery after
them at once, and the health page's "late" keeps a wide margin over that interval."""

import time
from types import SimpleNamespace

import pytest
from django.db import OperationalError, connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from analytics import heartbeats
from analytics.models import TaskHeartbeat
from markets.redaction import forget_secrets, register_secrets


@pytest.fixture(autouse=True)
def fresh_recorder():
    """Each test starts with nothing waiting and no name written by this process."""
    heartbeats.recorder.reset()
    yield
    heartbeats.recorder.reset()


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


def run(task, task_id, *, fail=False):
    """The handlers of one run of ``task``, in the order Celery sends them."""
    heartbeats.on_prerun(sender=task, task_id=task_id)
    if fail:
        heartbeats.on_failure(sender=task, task_id=task_id, exception=ValueError("no"))
    else:
        task.request.id = task_id
        heartbeats.on_success(sender=task)
    heartbeats.on_postrun(sender=task, task_id=task_id)


@pytest.mark.django_db
def test_runs_within_the_interval_wait_and_go_in_with_one_write(settings):
    settings.HEARTBEAT_WRITE_SECONDS = 3600
    task = fake_task()
    run(task, "id-1")  # the name's first event in this process: written at once
    beat = TaskHeartbeat.objects.get(task="analytics.test")
    assert (beat.runs, beat.last_success_at) == (1, None)

    with CaptureQueriesContext(connection) as queries:
        for n in range(2, 6):
            run(task, f"id-{n}")
    assert len(queries) == 0, "runs inside the interval touch no database"
    assert TaskHeartbeat.objects.get(task="analytics.test").runs == 1
    waiting = heartbeats.recorder.waiting()["analytics.test"]
    assert (waiting.runs, waiting.failures) == (4, 0)

    with CaptureQueriesContext(connection) as queries:
        heartbeats.recorder.flush()
    assert len(queries) == 1, "one UPDATE carries every waiting run"
    beat = TaskHeartbeat.objects.get(task="analytics.test")
    assert (beat.runs, beat.failures) == (5, 0)
    assert beat.last_started_at <= beat.last_success_at
    assert heartbeats.recorder.waiting() == {}


@pytest.mark.django_db
def test_a_failure_and_the_recovery_after_it_are_written_at_once(settings):
    settings.HEARTBEAT_WRITE_SECONDS = 3600
    task = fake_task()
    run(task, "id-1")
    run(task, "id-2")  # waits
    run(task, "id-3", fail=True)
    beat = TaskHeartbeat.objects.get(task="analytics.test")
    assert (beat.runs, beat.failures) == (3, 1), "the failure brought the waiting run along"
    assert beat.last_error == "ValueError: no"
    assert beat.last_success_at < beat.last_failure_at

    run(task, "id-4")  # the recovery: written at once, the row no longer reads "failing"
    beat = TaskHeartbeat.objects.get(task="analytics.test")
    assert beat.runs == 4 and beat.last_success_at > beat.last_failure_at

    run(task, "id-5")  # healthy again: back to waiting
    assert TaskHeartbeat.objects.get(task="analytics.test").runs == 4
    assert heartbeats.recorder.waiting()["analytics.test"].runs == 1


@pytest.mark.django_db
def test_an_elapsed_interval_writes_on_the_next_event(settings):
    settings.HEARTBEAT_WRITE_SECONDS = 0.2
    task = fake_task()
    run(task, "id-1")
    run(task, "id-2")
    assert TaskHeartbeat.objects.get(task="analytics.test").runs == 1
    time.sleep(0.25)
    run(task, "id-3")  # its start is past the interval: written, the waiting run with it
    assert TaskHeartbeat.objects.get(task="analytics.test").runs == 3


def test_the_health_pages_late_mark_keeps_a_wide_margin_over_the_write_interval(settings):
    """A periodic task is "late" on the health page after LATE_AFTER_INTERVALS intervals
    without a success; its row may lag by HEARTBEAT_WRITE_SECONDS. The slack between an
    on-time success (one interval) and the late mark must dwarf that lag."""
    from analytics.pages.health import LATE_AFTER_INTERVALS

    intervals = [
        float(entry["schedule"])
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if isinstance(entry["schedule"], int | float)
    ]
    assert intervals, "no interval schedule to check"
    slack = (LATE_AFTER_INTERVALS - 1) * min(intervals)
    assert slack >= settings.HEARTBEAT_WRITE_SECONDS * 4


@pytest.mark.django_db(transaction=True)
def test_a_burst_on_a_real_worker_writes_the_row_a_few_times_and_ends_exact(
    celery_worker_process, wait_for, settings
):
    """40 no-ops on a real worker: the row ends with all 40 runs (the timer writes what
    waits), in a handful of writes instead of two per task. A trigger counts the writes."""
    if connection.vendor != "postgresql":
        pytest.skip("the write counter is a PostgreSQL trigger")
    table = TaskHeartbeat._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE heartbeat_writes (id serial PRIMARY KEY, op text)")
        cursor.execute(
            "CREATE FUNCTION heartbeat_written() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO heartbeat_writes (op) VALUES (TG_OP); RETURN NULL; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER heartbeat_written AFTER INSERT OR UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION heartbeat_written()"
        )
    try:
        started = time.monotonic()
        for _ in range(40):
            celery_worker_process.send("config.noop")
        beat = wait_for(
            lambda: TaskHeartbeat.objects.filter(
                task="config.noop", runs=40, last_success_at__gte=F("last_started_at")
            ).first(),
            what="40 no-op runs recorded",
        )
        elapsed = time.monotonic() - started
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM heartbeat_writes")
            (writes,) = cursor.fetchone()
        assert beat.failures == 0 and beat.last_failure_at is None
        # The first event, then at most one write per interval (the timer's, or an
        # event's past the interval) plus one at the end; 80 without the interval.
        interval = settings.HEARTBEAT_WRITE_SECONDS
        assert 1 <= writes <= 2 + 2 * (elapsed / interval + 1), (writes, elapsed)
        assert writes < 20
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS heartbeat_written ON {table}")
            cursor.execute("DROP FUNCTION IF EXISTS heartbeat_written()")
            cursor.execute("DROP TABLE IF EXISTS heartbeat_writes")
