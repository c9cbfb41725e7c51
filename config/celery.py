"""The Celery application: settings come from Django's, under the CELERY_ namespace."""

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import beat_init, worker_init
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = logging.getLogger("config.tasks")

app = Celery("config", task_cls="config.task_base:PipelineTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="config.noop")
def noop() -> None:
    """Does nothing: the benchmarks' yardstick for the broker's per-task cost."""


@beat_init.connect
def _single_beat(**kwargs: object) -> None:
    # Imported here: this module loads with the config package, before Django is set up,
    # and config.beat_lock imports django_celery_beat's models (only beat needs them).
    from config.beat_lock import acquire_or_exit

    acquire_or_exit()


# --- Every task ends well before the broker would hand its message to another worker ---
# Redis keeps a message unacknowledged while its task waits for a retry's countdown and
# runs (late acknowledgement); once it has been unacknowledged for the visibility timeout
# (CELERY_BROKER_TRANSPORT_OPTIONS) any worker restores it and the task runs twice. Kombu
# restores by age across every queue of the broker, so a queue cannot have a longer
# timeout of its own on one Redis database: every task fits under the one timeout.
VISIBILITY_MARGIN_SECONDS = 60
# Countdowns a task's own code sets on the messages it sends to itself (not autoretry):
# task name -> the setting holding the longest one.
COUNTDOWN_SETTINGS = {"alerts.deliver": "ALERT_RETRY_MAX_SECONDS"}


def longest_unacked_seconds(task: Any) -> float | None:
    """How long a message of ``task`` can stay unacknowledged: the longest countdown before
    it runs plus its hard time limit (``None`` when it has no time limit)."""
    limit = task.time_limit if task.time_limit is not None else task.app.conf.task_time_limit
    if limit is None:
        return None
    countdown = 0.0
    if getattr(task, "autoretry_for", ()):
        # Celery's autoretry: exponential backoff capped at retry_backoff_max, else the
        # task's default retry delay (Celery's defaults when the task sets neither).
        backoff = getattr(task, "retry_backoff", False)
        countdown = float(
            getattr(task, "retry_backoff_max", 600) if backoff else task.default_retry_delay
        )
    own = COUNTDOWN_SETTINGS.get(task.name)
    if own is not None:
        countdown = max(countdown, float(getattr(settings, own, 0)))
    return float(limit) + countdown


def visibility_problems(celery_app: Celery | None = None) -> list[str]:
    """Every registered task whose message could outlive the visibility timeout (and so
    run twice), or whose soft limit does not come before its hard one: one line each."""
    celery_app = celery_app or app
    celery_app.loader.import_default_modules()
    options = celery_app.conf.broker_transport_options or {}
    # kombu's default for Redis when the setting is absent.
    timeout = float(options.get("visibility_timeout", 3600))
    problems = []
    for name, task in sorted(celery_app.tasks.items()):
        unacked = longest_unacked_seconds(task)
        if unacked is None:
            problems.append(f"{name}: no hard time limit")
            continue
        if unacked + VISIBILITY_MARGIN_SECONDS > timeout:
            problems.append(
                f"{name}: countdown + hard time limit {unacked:g} s + margin "
                f"{VISIBILITY_MARGIN_SECONDS} s exceeds the visibility timeout {timeout:g} s"
            )
        soft = task.soft_time_limit or celery_app.conf.task_soft_time_limit
        hard = task.time_limit or celery_app.conf.task_time_limit
        if soft is not None and soft >= hard:
            problems.append(f"{name}: soft time limit {soft} s is not below the hard {hard} s")
    return problems


@worker_init.connect
def _warn_on_visibility(**kwargs: object) -> None:
    # Not fatal: the fault suite runs workers with a 5 s timeout on purpose.
    for problem in visibility_problems():
        logger.critical("[VISIBILITY] %s: it may run twice", problem)
