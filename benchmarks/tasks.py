"""The per-task cost of the project against a bare Celery app, side by side in one run.

Each round times ``BENCH_NOOP_TASKS`` no-op tasks (default 2,000) through one worker:

- **project**: the project's worker exactly as ``make bench``'s live path and the test
  suite start it (``config.settings_test``, solo pool, the project's queues and flags) on
  a fresh migrated PostgreSQL database, running ``config.noop``: everything every task
  of the project pays (the delivery bookkeeping of ``config/task_base.py``, the
  heartbeats of ``analytics/heartbeats.py``, Django's per-task hooks);
- **bare**: ``benchmarks/bare_celery.py``, a Celery app without Django with the same
  broker, flags and worker arguments, running a no-op of the same name.

The two sides alternate (project first in odd rounds, bare first in even ones) for
``BENCH_TASK_ROUNDS`` rounds each (default 3), each round on a freshly started worker
and an emptied broker database (``BENCH_BROKER_URL``, default Redis database 14). Both
sides are sent the same messages by the same plain sender (a Celery app without Django)
and timed the same way: from sending the first task to the worker logging that the
last one succeeded, after one untimed task that connects both ends. The result is each
side's tasks/s per round, the medians, and project / bare; beside them the worker
process's CPU time per task over the same span (``/proc/PID/stat``), which a busy shared
machine disturbs less than the wall clock.

Runnable alone (the project's virtualenv, PostgreSQL and Redis running)::

    .venv/bin/python benchmarks/tasks.py
    BENCH_NOOP_TASKS=500 BENCH_TASK_ROUNDS=2 .venv/bin/python benchmarks/tasks.py

``make bench`` runs it as its "tasks" part (``BENCH_SKIP=tasks`` leaves it out) and sets
the live path's signals/s beside the bare no-op rate.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.databases import app_env, postgres_database
from benchmarks.live import BROKER, WORKER_ARGV, Worker, celery_worker, succeeded, worker_env
from benchmarks.measure import ROOT, cpu_seconds
from benchmarks.project import manage

SIDES = ("project", "bare")
# The same worker arguments as the project's, on the bare app.
BARE_ARGV = ["benchmarks.bare_celery:bare" if arg == "config" else arg for arg in WORKER_ARGV]
LOGS = {side: ROOT / "var" / f"bench-tasks-{side}.log" for side in SIDES}
NOOP = "config.noop"
# A round in which no task finishes for this long has lost its messages.
STALL_SECONDS = 30.0


@dataclass(frozen=True)
class Round:
    side: str
    tasks: int
    seconds: float
    cpu_seconds: float  # the worker process's user + system time over the same span

    @property
    def per_second(self) -> float:
        return self.tasks / self.seconds

    @property
    def cpu_ms_per_task(self) -> float:
        return self.cpu_seconds * 1000 / self.tasks


@dataclass(frozen=True)
class TasksResult:
    rounds: list[Round]

    def rates(self, side: str) -> list[float]:
        return [r.per_second for r in self.rounds if r.side == side]

    def median(self, side: str) -> float:
        return statistics.median(self.rates(side))

    def cpu_ms(self, side: str) -> float:
        """The worker's median CPU time per task, in milliseconds: what a busy machine
        moves least."""
        return statistics.median(r.cpu_ms_per_task for r in self.rounds if r.side == side)

    @property
    def ratio(self) -> float:
        """The project's median rate over the bare app's."""
        return self.median("project") / self.median("bare")


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        sys.exit(f"{name} must be a whole number, not {os.environ[name]!r}")


def _wait_progressing(worker: Worker, pattern: re.Pattern[str], count: int, *, since: int) -> None:
    """Wait until ``count`` log lines after line ``since`` match ``pattern``, like
    ``Worker.wait_for``, but give up (``RuntimeError``) as soon as none has matched for
    ``STALL_SECONDS``: a stalled round is not waited out to its timeout."""
    seen, checked = 0, since
    last = time.monotonic()
    while seen < count:
        total = worker.refresh()
        for line in worker.lines[checked:total]:
            if "raised unexpected" in line:
                raise RuntimeError(f"a task failed in the worker:\n{worker.tail()}")
            if pattern.search(line):
                seen += 1
                last = time.monotonic()
        checked = total
        if worker.process.poll() is not None:
            raise RuntimeError(f"the Celery worker exited:\n{worker.tail()}")
        if seen < count and time.monotonic() - last > STALL_SECONDS:
            raise RuntimeError(
                f"stalled: no task finished for {STALL_SECONDS:.0f} s ({seen} of {count})"
            )
        time.sleep(0.02)


def _time_noops(side: str, env: dict[str, str], tasks: int, timeout: float) -> Round:
    """One round: a fresh worker of ``side``, one untimed no-op, then ``tasks`` timed."""
    from celery import Celery

    sender = Celery("sender", broker=BROKER)
    sender.conf.task_default_queue = "default"
    argv = WORKER_ARGV if side == "project" else BARE_ARGV
    done = succeeded(NOOP)
    try:
        with celery_worker(env, timeout, argv=argv, log=LOGS[side]) as worker:
            # The mark before the send: a fast worker logs the success before a later read.
            mark = worker.refresh()
            sender.send_task(NOOP)
            worker.wait_for(done, since=mark)
            mark = worker.refresh()
            cpu = cpu_seconds(worker.process.pid)
            started = time.perf_counter()
            with sender.producer_or_acquire() as producer:
                for _ in range(tasks):
                    sender.send_task(NOOP, producer=producer)
            _wait_progressing(worker, done, tasks, since=mark)
            seconds = time.perf_counter() - started
            cpu = cpu_seconds(worker.process.pid) - cpu
    finally:
        sender.close()
    return Round(side, tasks, seconds, cpu)


def measure_tasks(
    *, database_url: str, rounds: int = 3, tasks: int = 2_000, timeout: float = 3600
) -> TasksResult:
    """Migrate the empty database at ``database_url``, then alternate ``rounds`` rounds of
    ``tasks`` no-ops on each side."""
    manage("migrate", "--no-input", "-v", "0", env=app_env(database_url))
    envs = {
        "project": worker_env(database_url),
        "bare": {
            **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
            "BENCH_BROKER_URL": BROKER,
        },
    }
    # The untimed first task may wait for a slow start; the timed ones stop at a stall.
    round_timeout = min(timeout, 120.0)
    measured = []
    for n in range(rounds):
        for side in SIDES if n % 2 == 0 else SIDES[::-1]:
            # A round that stalls (the worker died, or lost its broker) is run once more
            # on a fresh worker.
            try:
                measured.append(_time_noops(side, envs[side], tasks, round_timeout))
            except RuntimeError as error:
                print(f"    round {n + 1} {side}: {str(error).splitlines()[0]}; again", flush=True)
                measured.append(_time_noops(side, envs[side], tasks, round_timeout))
            print(
                f"    round {n + 1} {side:<7} {measured[-1].per_second:,.0f} tasks/s, worker "
                f"CPU {measured[-1].cpu_ms_per_task:.2f} ms/task",
                flush=True,
            )
    return TasksResult(measured)


def report(result: TasksResult) -> str:
    def rates(side: str) -> str:
        return ", ".join(f"{rate:,.0f}" for rate in result.rates(side))

    tasks = result.rounds[0].tasks
    return "\n".join(
        [
            f"Per-task cost: {tasks:,} no-op tasks a round through one worker (solo pool, acks "
            "late, prefetch 1), sides alternating on the same Redis",
            f"  project  {result.median('project'):,.0f} tasks/s median  (rounds: "
            f"{rates('project')}); worker CPU {result.cpu_ms('project'):.2f} ms/task",
            f"  bare     {result.median('bare'):,.0f} tasks/s median  (rounds: {rates('bare')}); "
            f"worker CPU {result.cpu_ms('bare'):.2f} ms/task",
            f"  project / bare  {result.ratio:.2f} in tasks/s (goal: at least 0.80); "
            f"{result.cpu_ms('project') / result.cpu_ms('bare'):.2f}x the CPU per task",
        ]
    )


def main() -> None:
    rounds = _env_int("BENCH_TASK_ROUNDS", 3)
    tasks = _env_int("BENCH_NOOP_TASKS", 2_000)
    with postgres_database() as url:
        result = measure_tasks(database_url=url, rounds=rounds, tasks=tasks)
    print(report(result))


if __name__ == "__main__":
    main()
