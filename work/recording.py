"""Every publish of a recorded task's message is written down (Celery's publish signals).

Beat publishes the daily report and the threshold recommendations by name; nothing else
knows they were asked for. ``before_task_publish`` writes the request's row (once per
task id) before the message reaches the broker, so a send that fails or a message that
Redis loses is still on record; ``after_task_publish`` stamps the send. Neither ever stops
a publish: when the database cannot be written the message goes out unrecorded, and the
worker records it when it starts (``work.task_base.WorkTask``).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import after_task_publish, before_task_publish
from django.db.models import F
from django.utils import timezone

from work.models import WorkRequest
from work.services import registry_whole, task_registry
from work.task_base import WorkTask

logger = logging.getLogger("work")


_kinds: dict[str, bool] | None = None


def work_kinds() -> dict[str, bool]:
    """The names of the tasks run as recorded work (``WorkTask``), each with whether every
    send of it is recorded (``record_every_send``) or only those ``work_request`` made."""
    global _kinds
    if _kinds is not None:
        return _kinds
    registry = task_registry()
    kinds = {
        name: bool(task.record_every_send)
        for name, task in registry.items()
        if isinstance(task, WorkTask)
    }
    if registry_whole():
        _kinds = kinds
    return kinds


def _body(body: Any) -> tuple[list[Any], dict[str, Any]]:
    # Celery's message protocol 2: (args, kwargs, embed).
    if isinstance(body, tuple | list) and len(body) >= 2:
        return list(body[0] or ()), dict(body[1] or {})
    return [], {}


def on_before_publish(
    sender: str | None = None,
    body: Any = None,
    headers: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    task_id = (headers or {}).get("id")
    if not sender or not task_id or not work_kinds().get(sender):
        return
    args, task_kwargs = _body(body)
    try:
        WorkRequest.objects.get_or_create(
            task_id=task_id, defaults={"kind": sender, "args": args, "kwargs": task_kwargs}
        )
    except Exception:
        logger.warning(
            "[WORK] could not record the request of %s %s", sender, task_id, exc_info=True
        )


def on_after_publish(
    sender: str | None = None, headers: dict[str, Any] | None = None, **kwargs: Any
) -> None:
    task_id = (headers or {}).get("id")
    if not sender or not task_id or sender not in work_kinds():
        return
    try:
        WorkRequest.objects.filter(task_id=task_id).update(
            sent_at=timezone.now(), sends=F("sends") + 1
        )
    except Exception:
        logger.warning("[WORK] could not record the send of %s %s", sender, task_id, exc_info=True)


def connect() -> None:
    """Connect the publish handlers (idempotent: each has a dispatch uid)."""
    before_task_publish.connect(on_before_publish, weak=False, dispatch_uid="work.before_publish")
    after_task_publish.connect(on_after_publish, weak=False, dispatch_uid="work.after_publish")
