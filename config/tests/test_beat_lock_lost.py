"""A beat that loses its single-beat lock stops sending at once: real beat processes, a
probe task every second on a queue of its own, and the lock taken away twice, by
terminating the lock's connection (``pg_terminate_backend``) and by restarting a
private PostgreSQL server. A second beat then takes the lock; every probe message names
the process that sent it (celery's ``origin`` header), so the test reads who sent what,
in order: the first beat never sends again once the second one has the lock, and the
second beat's first send comes after the first beat exited.
"""

import json
import time

import psycopg
import pytest
import redis

from config.tests.test_faults import (  # noqa: F401 (fixtures)
    Process,
    _database_url,
    private_postgres,
    processes,
)

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]
PROBE = "probe-beat-lock"

PROBE_TASK = f"""
from django_celery_beat.models import IntervalSchedule, PeriodicTask
every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
PeriodicTask.objects.update_or_create(
    name="{PROBE}", defaults=dict(task="config.noop", interval=every, queue="{PROBE}"))
"""


def _senders(queue: redis.Redis) -> list[int]:
    """The pid of the process that sent each probe message, oldest first."""
    messages = queue.lrange(PROBE, 0, -1)[::-1]  # kombu LPUSHes: newest first
    return [int(json.loads(raw)["headers"]["origin"].split("@")[0][3:]) for raw in messages]


def _wait(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _lose_the_lock_and_hand_over(processes, queue, take_away, **env: str) -> None:  # noqa: F811
    first: Process = processes("beat", **env).start()
    first.wait_for("holds the single-beat lock", timeout=60)
    _wait(lambda: len(_senders(queue)) >= 3, timeout=60, what="three probe sends")
    assert first.process is not None
    first_pid = first.process.pid

    take_away()
    # A second beat, as systemd would restart it on another machine, takes the lock as
    # soon as it is free.
    second: Process = processes("beat", **env).start()
    second.wait_for("holds the single-beat lock", timeout=60)
    assert second.process is not None
    _wait(lambda: _senders(queue).count(second.process.pid) >= 5, timeout=60, what="5 sends")

    assert not first.alive(), "the first beat stopped"
    assert first.process.returncode == 4
    assert "no longer holds the single-beat lock" in first.text()
    senders = _senders(queue)
    handover = senders.index(second.process.pid)
    assert set(senders[:handover]) == {first_pid}
    assert set(senders[handover:]) == {second.process.pid}, "no send from the first beat after"
    second.stop()


@pytest.mark.reliability(
    fault="the single-beat lock connection terminated while beat runs (pg_terminate_backend)",
    expected="the first beat stops sending and exits before a second beat takes the lock: every tick sent once",
)
def test_a_beat_whose_lock_connection_is_terminated_exits_before_another_takes_over(
    processes,  # noqa: F811
    settings,
    reliability,
):
    from django.core.management import call_command

    call_command("shell", "-c", PROBE_TASK)
    queue = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue.delete(PROBE)

    def terminate() -> None:
        with psycopg.connect(_database_url(), autocommit=True) as conn:
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'celery-beat-lock' AND datname = current_database()"
            ).fetchall()
        assert killed == [(True,)]

    _lose_the_lock_and_hand_over(processes, queue, terminate)
    reliability.observed(
        "the first beat exited; none of its sends came after the second beat's first",
        lost=0,
        duplicated=0,
    )


@pytest.mark.reliability(
    fault="PostgreSQL restarted under a running beat (pg_ctl restart)",
    expected="the first beat stops sending and exits before a second beat takes the lock: every tick sent once",
)
def test_a_beat_exits_when_postgres_restarts_under_it(
    processes,  # noqa: F811
    private_postgres,  # noqa: F811
    settings,
    reliability,
):
    private_postgres.manage("shell", "-c", PROBE_TASK)
    queue = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue.delete(PROBE)
    _lose_the_lock_and_hand_over(
        processes, queue, private_postgres.restart, DATABASE_URL=private_postgres.url
    )
    reliability.observed(
        "the first beat exited; none of its sends came after the second beat's first",
        lost=0,
        duplicated=0,
    )
