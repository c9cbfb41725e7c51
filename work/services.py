"""The writes of recorded work: request, claim, finish, and the sweep that re-sends work
whose message the broker lost."""

from __future__ import annotations

import importlib
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from work.models import WorkRequest

logger = logging.getLogger("work")

# A request made inside a transaction is sent when it commits, a moment later: only a
# request older than this that was never sent lost its send.
SEND_GRACE = timedelta(seconds=60)
# A run's claim lasts its task's hard time limit plus this; past it, the run is dead.
CLAIM_MARGIN = timedelta(seconds=60)


def resend_after() -> timedelta:
    """How long a sent request may wait unstarted before its message counts as lost:
    longer than a normal wait in the queue, so a re-send is rare and only ever wasted."""
    return timedelta(seconds=getattr(settings, "WORK_RESEND_AFTER_SECONDS", 600))


def max_sends() -> int:
    """Sends of one request before the sweep gives it up as failed."""
    return int(getattr(settings, "WORK_MAX_SENDS", 5))


def work_request(*, kind: str, args: list[Any] | None = None, **kwargs: Any) -> WorkRequest:
    """Record a piece of work (the task ``kind`` with these arguments) and send its
    message when the current transaction commits. The row is written in the caller's
    transaction: if the send fails or the broker loses the message, the sweep sends it
    again."""
    row = WorkRequest.objects.create(
        task_id=_new_task_id(), kind=kind, args=list(args or []), kwargs=kwargs
    )
    transaction.on_commit(lambda: _send(row))
    return row


def _new_task_id() -> str:
    return str(uuid4())


_registry_whole = False


def task_registry() -> Any:
    """Celery's task registry, with every task module imported when that works."""
    global _registry_whole
    if not _registry_whole:
        # A web or manage.py process has not imported the task modules yet (workers and
        # beat do, at start). Not through ``loader.import_default_modules()``: its Django
        # fix-up runs django.setup() (resetting logging) and the system checks again.
        try:
            current_app.autodiscover_tasks(force=True)
            for module in current_app.conf.imports or ():
                importlib.import_module(module)
            _registry_whole = True
        except Exception:
            # A broken task module must not stop work from being sent: by name, then.
            logger.exception("[WORK] could not import every task module")
    return current_app.tasks


def registry_whole() -> bool:
    """Whether every task module has been imported into the registry."""
    return _registry_whole


def publish(row: WorkRequest) -> None:
    """Send the message of ``row`` under its own task id (run in-process when Celery runs
    tasks eagerly)."""
    task = task_registry().get(row.kind)
    if task is None:
        current_app.send_task(row.kind, args=row.args, kwargs=row.kwargs, task_id=row.task_id)
    else:
        task.apply_async(args=row.args, kwargs=row.kwargs, task_id=row.task_id)


def _send(row: WorkRequest) -> None:
    try:
        publish(row)
    except Exception:
        logger.exception(
            "[WORK] could not send %s (task %s); the sweep sends it again", row.kind, row.task_id
        )


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead(worker: str) -> bool:
    """Whether the run recorded as ``worker`` (host:pid) is known to be over: its process
    on this machine is gone, or is this very process (which runs one task at a time)."""
    host, _, pid_text = worker.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class Claim:
    """The answer to a run asking for its work: ``run`` or why not."""

    run: bool
    reason: str = ""
    attempt: int = 0


def work_claim(
    *,
    task_id: str,
    kind: str,
    args: list[Any],
    kwargs: dict[str, Any],
    lease: timedelta,
    create: bool = True,
    now: datetime | None = None,
) -> Claim | None:
    """Claim the work of ``task_id`` for this run: a conditional update that only one run
    can win, so a message delivered twice (re-sent by the sweep, restored by the broker)
    runs its work once. ``None`` when there is no row and ``create`` is false (a task run
    in-process, not as requested work)."""
    now = now or timezone.now()
    if create:
        row, _ = WorkRequest.objects.get_or_create(
            task_id=task_id, defaults={"kind": kind, "args": args, "kwargs": kwargs}
        )
    else:
        found = WorkRequest.objects.filter(task_id=task_id).first()
        if found is None:
            return None
        row = found
    claim = {
        "started_at": now,
        "attempts": F("attempts") + 1,
        "running_until": now + lease + CLAIM_MARGIN,
        "worker": this_worker()[:255],
    }
    free = Q(running_until__isnull=True) | Q(running_until__lt=now)
    if WorkRequest.objects.filter(free, pk=row.pk, finished_at__isnull=True).update(**claim):
        return Claim(True, attempt=row.attempts + 1)
    row.refresh_from_db()
    if row.finished_at is not None:
        return Claim(False, f"already {row.outcome} at {row.finished_at:%Y-%m-%d %H:%M:%S} UTC")
    if _dead(row.worker):
        # Its process died mid-run (a hard kill, the OOM killer): the broker handed the
        # message back, and this run takes the work over from the dead one.
        taken = WorkRequest.objects.filter(
            pk=row.pk,
            finished_at__isnull=True,
            worker=row.worker,
            running_until=row.running_until,
        ).update(**claim)
        if taken:
            return Claim(True, f"taken over from dead process {row.worker}", row.attempts + 1)
    return Claim(False, f"running in {row.worker} since {row.started_at:%Y-%m-%d %H:%M:%S} UTC")


def work_finish(*, task_id: str, outcome: str, error: str = "") -> None:
    """Mark the claimed work of ``task_id`` done or failed for good; it is never run again."""
    WorkRequest.objects.filter(task_id=task_id, finished_at__isnull=True).update(
        finished_at=timezone.now(), outcome=outcome, error=error, running_until=None
    )


def work_release(*, task_id: str) -> None:
    """Give the claim of ``task_id`` back (its run will retry): the retry may claim it."""
    WorkRequest.objects.filter(task_id=task_id, finished_at__isnull=True).update(running_until=None)


def lost(*, now: datetime) -> Q:
    """Unfinished work not running now whose message should have started by ``now``: never
    sent past the send grace, or sent (last) longer ago than ``resend_after``."""
    return (
        Q(finished_at__isnull=True)
        & (Q(running_until__isnull=True) | Q(running_until__lt=now))
        & (
            Q(sent_at__isnull=True, requested_at__lt=now - SEND_GRACE)
            | Q(sent_at__lt=now - resend_after())
        )
    )


@dataclass(frozen=True)
class Sweep:
    resent: list[str]
    given_up: list[str]
    failed_sends: list[str]
    pruned: int


def work_resend_lost(*, now: datetime | None = None) -> Sweep:
    """Send again, with its own task id, every piece of work whose message is gone (the
    claim makes a needless re-send harmless); give up, as failed, work sent
    ``max_sends`` times that never finished; forget finished work past
    ``WORK_KEEP_DAYS``."""
    now = now or timezone.now()
    resent: list[str] = []
    given_up: list[str] = []
    failed: list[str] = []
    for row in WorkRequest.objects.filter(lost(now=now)).order_by("requested_at", "id"):
        if row.sends >= max_sends():
            reason = (
                f"given up: sent {row.sends} times and never finished (started "
                f"{row.attempts} times); its message keeps being lost or its run keeps dying"
            )
            WorkRequest.objects.filter(pk=row.pk, finished_at__isnull=True).update(
                finished_at=now,
                outcome=WorkRequest.Outcome.FAILED,
                error=reason,
                running_until=None,
            )
            logger.error("[WORK] %s (task %s) %s", row.kind, row.task_id, reason)
            given_up.append(row.task_id)
            continue
        why = (
            "never sent"
            if row.sent_at is None
            else f"sent {row.sent_at:%Y-%m-%d %H:%M:%S} UTC and not "
            + ("started" if row.started_at is None else "finished by a live run")
        )
        try:
            publish(row)
        except Exception as exc:
            logger.error(
                "[WORK] could not re-send %s %s (task %s): %s",
                row.kind,
                row.kwargs or row.args,
                row.task_id,
                exc,
            )
            failed.append(row.task_id)
            continue
        logger.warning(
            "[WORK] re-sent %s %s (task %s, requested %s UTC, send %d): %s, its message is gone",
            row.kind,
            row.kwargs or row.args,
            row.task_id,
            f"{row.requested_at:%Y-%m-%d %H:%M:%S}",
            row.sends + 1,
            why,
        )
        resent.append(row.task_id)
    keep = timedelta(days=getattr(settings, "WORK_KEEP_DAYS", 30))
    pruned, _ = WorkRequest.objects.filter(finished_at__lt=now - keep).delete()
    return Sweep(resent, given_up, failed, pruned)
