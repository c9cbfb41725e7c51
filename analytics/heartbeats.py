"""Task heartbeats: the last start, success and failure of every Celery task name.

Celery signal handlers (connected in ``AnalyticsConfig.ready``) upsert one
``TaskHeartbeat`` row per task name on the worker: ``task_prerun`` counts a run and
stamps its start, ``task_success`` its success and duration, ``task_failure`` the
failure with the exception's class and message (credentials masked). Each handler
issues one query (an UPDATE), two when the row does not exist yet (then an INSERT), and
never fails the task: a database error is logged and swallowed.

Tasks run eagerly (in the web process or a test, ``CELERY_TASK_ALWAYS_EAGER``) are not
recorded: a heartbeat says what the worker did.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from celery.signals import task_failure, task_postrun, task_prerun, task_success
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from markets.redaction import redact

logger = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 1000
# user:password@ in any URL an error message may quote (a broker or database URL).
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):[^@/\s]*@", re.I)

# Start times of the tasks this worker process is running, by task id.
_started: dict[str, float] = {}


def error_text(exc: BaseException | None) -> str:
    """``"Class: message"`` with registered credentials and URL passwords masked."""
    if exc is None:
        return ""
    message = _URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", redact(str(exc)))
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text[:MAX_ERROR_LENGTH]


def _task_name(task: Any) -> str | None:
    name = getattr(task, "name", None)
    if not name or getattr(getattr(task, "request", None), "is_eager", False):
        return None
    return str(name)


def _upsert(name: str, *, update: dict[str, Any], create: dict[str, Any]) -> None:
    """UPDATE the row of ``name``; INSERT it when there is none. Never raises."""
    from analytics.models import TaskHeartbeat

    try:
        if TaskHeartbeat.objects.filter(task=name).update(**update):
            return
        try:
            with transaction.atomic():
                TaskHeartbeat.objects.create(task=name, **create)
        except IntegrityError:
            # Another worker created the row in between: update it after all.
            TaskHeartbeat.objects.filter(task=name).update(**update)
    except Exception as exc:
        logger.warning("[HEARTBEAT] could not record %s: %s", name, error_text(exc))


def _duration_ms(task_id: str | None) -> int | None:
    started = _started.get(task_id or "")
    return None if started is None else max(int((time.monotonic() - started) * 1000), 0)


def on_prerun(sender: Any = None, task_id: str | None = None, **kwargs: Any) -> None:
    name = _task_name(sender)
    if name is None:
        return
    if task_id:
        _started[task_id] = time.monotonic()
    now = timezone.now()
    _upsert(
        name,
        update={"last_started_at": now, "runs": F("runs") + 1},
        create={"last_started_at": now, "runs": 1},
    )


def on_success(sender: Any = None, **kwargs: Any) -> None:
    name = _task_name(sender)
    if name is None:
        return
    now = timezone.now()
    fields = {"last_success_at": now, "last_duration_ms": _duration_ms(sender.request.id)}
    _upsert(name, update=fields, create=fields)


def on_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    **kwargs: Any,
) -> None:
    name = _task_name(sender)
    if name is None:
        return
    now = timezone.now()
    fields = {
        "last_failure_at": now,
        "last_error": error_text(exception),
        "last_duration_ms": _duration_ms(task_id),
    }
    _upsert(
        name,
        update={**fields, "failures": F("failures") + 1},
        create={**fields, "failures": 1},
    )


def on_postrun(sender: Any = None, task_id: str | None = None, **kwargs: Any) -> None:
    _started.pop(task_id or "", None)


def connect() -> None:
    """Connect the handlers (idempotent: each has a dispatch uid)."""
    task_prerun.connect(on_prerun, weak=False, dispatch_uid="analytics.heartbeats.prerun")
    task_success.connect(on_success, weak=False, dispatch_uid="analytics.heartbeats.success")
    task_failure.connect(on_failure, weak=False, dispatch_uid="analytics.heartbeats.failure")
    task_postrun.connect(on_postrun, weak=False, dispatch_uid="analytics.heartbeats.postrun")
