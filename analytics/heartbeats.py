"""Task heartbeats: the last start, success and failure of every Celery task name.

Celery signal handlers (connected in ``AnalyticsConfig.ready``) keep one
``TaskHeartbeat`` row per task name up to date from the worker: ``task_prerun`` counts a
run and stamps its start, ``task_success`` its success and duration, ``task_failure``
the failure with the exception's class and message (credentials masked).

Every task of the project pays for these handlers, so they write a name's row at most
once per ``HEARTBEAT_WRITE_SECONDS`` (default 5) per worker process: what happens in
between (runs counted, the newest start, success and failure) waits in the process's
memory and goes in with the next write, one UPDATE (an INSERT for a new name) that adds
the counts up. A timer thread writes what waits ``HEARTBEAT_WRITE_SECONDS`` after it
began waiting, so a row is never older than that. A no-op task then costs no database
statement and no connection (before: two connections and four statements, measured in
docs/performance.md). Written at once, whatever the interval:

- a name's first event in a process (a new worker shows up at once);
- a failure, and the first success after a failure this process wrote, so the
  "failing" alert (``alerts.watchers``) and the health page see the change at once;
- what waits when the worker stops (``worker_shutdown``, ``worker_process_shutdown``).

A worker killed outright (SIGKILL) loses at most the last ``HEARTBEAT_WRITE_SECONDS`` of
its successes; its failures are already written. The health page calls a periodic task
late after two intervals without a success (at least 120 s for the 60 s tasks), far
beyond this lag (``analytics/tests/test_heartbeats.py`` keeps that margin). A handler
never fails the task: a database error is logged and swallowed.

Tasks run eagerly (in the web process or a test, ``CELERY_TASK_ALWAYS_EAGER``) are not
recorded: a heartbeat says what the worker did.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    task_success,
    worker_init,
    worker_process_shutdown,
    worker_shutdown,
)
from django.conf import settings
from django.db import IntegrityError, connections, transaction
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


@dataclass
class _Waiting:
    """What happened to one task name since its row was last written."""

    runs: int = 0
    failures: int = 0
    fields: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """The heartbeats of one process: written through, or kept until the next write."""

    def __init__(self) -> None:
        # Held while a write is made, so a row never goes back to older values when the
        # timer thread and a task both write.
        self._lock = threading.RLock()
        self._waiting: dict[str, _Waiting] = {}
        self._written: dict[str, float] = {}  # name -> time.monotonic() of its last write
        self._failing: set[str] = set()  # names whose last write here was a failure
        self._timer: threading.Timer | None = None
        self._timer_pid = 0
        # Set on a worker (``worker_init``): a timer thread writes what waits. Elsewhere
        # (handlers called by a test) what waits is written by ``flush`` or the next write.
        self.timer_enabled = False

    @staticmethod
    def interval() -> float:
        return float(getattr(settings, "HEARTBEAT_WRITE_SECONDS", 5))

    def record(
        self,
        name: str,
        *,
        fields: dict[str, Any],
        runs: int = 0,
        failures: int = 0,
        urgent: bool = False,
    ) -> None:
        """Add an event of ``name``; write its row now when it is urgent, new to this
        process, or last written ``interval()`` ago or more."""
        with self._lock:
            waiting = self._waiting.setdefault(name, _Waiting())
            waiting.runs += runs
            waiting.failures += failures
            waiting.fields.update(fields)
            last = self._written.get(name)
            if urgent or last is None or time.monotonic() - last >= self.interval():
                self._write(name)
            else:
                self._arm()

    def is_failing(self, name: str) -> bool:
        return name in self._failing

    def waiting(self) -> dict[str, _Waiting]:
        """What waits to be written, by task name (a copy)."""
        with self._lock:
            return dict(self._waiting)

    def flush(self) -> None:
        """Write everything that waits."""
        with self._lock:
            for name in list(self._waiting):
                self._write(name)

    def reset(self) -> None:
        """Forget everything (tests): nothing waits, no name was written."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None
            self._waiting.clear()
            self._written.clear()
            self._failing.clear()

    def _write(self, name: str) -> None:
        waiting = self._waiting.pop(name)
        update, create = dict(waiting.fields), dict(waiting.fields)
        for counter in ("runs", "failures"):
            added = getattr(waiting, counter)
            if added:
                update[counter] = F(counter) + added
                create[counter] = added
        _upsert(name, update=update, create=create)
        # A failed write is not retried before the interval either: a database that is
        # down must not cost every task a connection attempt.
        self._written[name] = time.monotonic()
        if "last_failure_at" in waiting.fields and (
            waiting.fields.get("last_success_at") is None
            or waiting.fields["last_failure_at"] >= waiting.fields["last_success_at"]
        ):
            self._failing.add(name)
        elif "last_success_at" in waiting.fields:
            self._failing.discard(name)

    def _arm(self) -> None:
        """Start the timer that writes what waits, unless one is already running in this
        process (a timer does not survive a fork)."""
        if not self.timer_enabled:
            return
        pid = os.getpid()
        if self._timer is not None and self._timer_pid == pid and self._timer.is_alive():
            return
        self._timer = threading.Timer(self.interval(), self._on_timer)
        self._timer.daemon = True
        self._timer_pid = pid
        self._timer.start()

    def _on_timer(self) -> None:
        try:
            self.flush()
        finally:
            # This thread's own database connection: closed, not left to the server.
            connections.close_all()


recorder = Recorder()


def _duration_ms(task_id: str | None) -> int | None:
    started = _started.get(task_id or "")
    return None if started is None else max(int((time.monotonic() - started) * 1000), 0)


def on_prerun(sender: Any = None, task_id: str | None = None, **kwargs: Any) -> None:
    name = _task_name(sender)
    if name is None:
        return
    if task_id:
        _started[task_id] = time.monotonic()
    recorder.record(name, fields={"last_started_at": timezone.now()}, runs=1)


def on_success(sender: Any = None, **kwargs: Any) -> None:
    name = _task_name(sender)
    if name is None:
        return
    fields = {
        "last_success_at": timezone.now(),
        "last_duration_ms": _duration_ms(sender.request.id),
    }
    # The first success after a failure ends the "failing" state: written at once.
    recorder.record(name, fields=fields, urgent=recorder.is_failing(name))


def on_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    **kwargs: Any,
) -> None:
    name = _task_name(sender)
    if name is None:
        return
    fields = {
        "last_failure_at": timezone.now(),
        "last_error": error_text(exception),
        "last_duration_ms": _duration_ms(task_id),
    }
    recorder.record(name, fields=fields, failures=1, urgent=True)


def on_postrun(sender: Any = None, task_id: str | None = None, **kwargs: Any) -> None:
    _started.pop(task_id or "", None)


def on_worker_init(**kwargs: Any) -> None:
    recorder.timer_enabled = True


def on_worker_shutdown(**kwargs: Any) -> None:
    recorder.flush()


def connect() -> None:
    """Connect the handlers (idempotent: each has a dispatch uid)."""
    worker_init.connect(on_worker_init, weak=False, dispatch_uid="analytics.heartbeats.init")
    worker_shutdown.connect(
        on_worker_shutdown, weak=False, dispatch_uid="analytics.heartbeats.shutdown"
    )
    worker_process_shutdown.connect(
        on_worker_shutdown, weak=False, dispatch_uid="analytics.heartbeats.process_shutdown"
    )
    task_prerun.connect(on_prerun, weak=False, dispatch_uid="analytics.heartbeats.prerun")
    task_success.connect(on_success, weak=False, dispatch_uid="analytics.heartbeats.success")
    task_failure.connect(on_failure, weak=False, dispatch_uid="analytics.heartbeats.failure")
    task_postrun.connect(on_postrun, weak=False, dispatch_uid="analytics.heartbeats.postrun")
