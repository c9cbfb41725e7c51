"""A bare Celery app: no Django, one no-op task, the project's broker flags.

The yardstick of ``benchmarks/tasks.py``: what Celery itself costs per task on this broker
and machine. It copies the settings of ``config/settings.py`` that shape a task's trip
(late acknowledgement, rejected when its worker is lost, prefetch 1, the default queue,
the transport options, no result backend); the worker is started with the same flags as
the project's (solo pool, the same queues, info log). It imports nothing but Celery, so
its worker is what a project without the bookkeeping would cost.

The broker is ``BENCH_BROKER_URL`` (default Redis database 14, the live benchmark's).
"""

from __future__ import annotations

import os

from celery import Celery

bare = Celery("bare", broker=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/11"))
bare.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue="default",
    task_time_limit=600,
    task_soft_time_limit=570,
    result_backend=None,
    broker_transport_options={
        "visibility_timeout": 900,
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 10,
    },
)


@bare.task(name="config.noop")
def noop() -> None:
    """Does nothing, under the project's no-op's name (the same message on the wire)."""
