"""The base class of every task: poison messages are quarantined.

Tasks are acknowledged late and rejected back to the queue when their worker process
dies (``acks_late`` + ``task_reject_on_worker_lost``), so a task killed by a crash or a
SIGKILL runs again. A task that kills its process *every* time would loop forever; so
each delivery is counted in the database (``alerts.TaskDelivery``) before the task runs,
and past ``TASK_MAX_DELIVERIES`` (default 3) the message is not run again: it is dropped
from the queue, kept in the table (Admin → Alerts → Task deliveries) with its arguments,
logged and alerted on. The row of a task whose process survived (success or an ordinary
exception, which Celery handles) is deleted, so the table holds only the unfinished.

Every task retries the database errors it can meet mid-write (``DATABASE_ERRORS``: a
dropped connection, a restart, a serialization failure, a deadlock), with backoff, both
as Django raises them and as psycopg raises them raw (a bulk ``COPY`` goes through
psycopg's own cursor, outside Django's error wrapping). Before a retry the connections
are closed, so the run that follows opens a fresh one.
"""

import logging
from typing import Any

import psycopg
from celery import Task
from celery.exceptions import Reject
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction
from django.db.models import F
from django.utils import timezone

logger = logging.getLogger("config.tasks")


# What a task retries (Celery's ``autoretry_for``). psycopg's ``OperationalError`` covers its
# subclasses: AdminShutdown and ConnectionFailure (the connection dropped or the server
# restarted), SerializationFailure and DeadlockDetected (both TransactionRollback); Django
# raises them as its own ``OperationalError``. A task whose work is not a database write
# that may be repeated whole must not keep this default.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


class PipelineTask(Task):
    autoretry_for = DATABASE_ERRORS
    retry_backoff = 5
    retry_backoff_max = 60
    max_retries = 5

    def retry(
        self,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        exc: Exception | None = None,
        *rest: Any,
        **options: Any,
    ) -> Any:
        if isinstance(exc, DATABASE_ERRORS):
            # The failed connection may be dead without Django knowing (psycopg's raw COPY
            # error bypasses its bookkeeping): a retry in this process must not reuse it.
            connections.close_all()
        return super().retry(args, kwargs, exc, *rest, **options)

    def _delivery_key(self) -> str:
        # A retry (``self.retry``, ``autoretry_for``) is a new message with the same id:
        # it is counted apart, so ordinary failures that retry never add up to a
        # quarantine, even when the count of a failed run could not be cleared (the
        # database was down: the very failure being retried).
        return f"{self.request.id}#{self.request.retries or 0}"

    def _counted(self) -> bool:
        request = self.request
        return bool(request.id) and not request.is_eager and not request.called_directly

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._counted():
            try:
                deliveries = self._count_delivery(args, kwargs)
            except Exception:
                # The count is a guard, not the work: when it cannot be written (the
                # database is restarting), the task runs and meets the same error inside
                # its body, where its own retries (autoretry_for) handle it. Raising here,
                # outside them, would fail the task for good.
                logger.warning("could not count the delivery of %s", self.name, exc_info=True)
                deliveries = 0
            limit = getattr(settings, "TASK_MAX_DELIVERIES", 3)
            if deliveries > limit:
                self._quarantine(deliveries, limit)
                raise Reject(f"quarantined after {deliveries - 1} deliveries", requeue=False)
        return super().__call__(*args, **kwargs)

    def _count_delivery(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
        from alerts.models import TaskDelivery

        task_id = self._delivery_key()
        with transaction.atomic():
            row, created = TaskDelivery.objects.select_for_update().get_or_create(
                task_id=task_id,
                defaults={
                    "task": self.name,
                    "arguments": repr({"args": args, "kwargs": kwargs})[:2000],
                    "deliveries": 1,
                },
            )
            if not created:
                TaskDelivery.objects.filter(pk=row.pk).update(
                    deliveries=F("deliveries") + 1, last_at=timezone.now()
                )
                row.refresh_from_db(fields=["deliveries"])
        return row.deliveries

    def _quarantine(self, deliveries: int, limit: int) -> None:
        from alerts.models import TaskDelivery
        from alerts.services import raise_alert

        task_id = self._delivery_key()
        TaskDelivery.objects.filter(task_id=task_id).update(quarantined_at=timezone.now())
        message = (
            f"[QUARANTINE] task {self.name} id={task_id} killed its worker process "
            f"{deliveries - 1} times (limit {limit}); not run again. It is kept in "
            "Admin → Alerts → Task deliveries."
        )
        logger.critical(message)
        try:
            raise_alert(
                "task_quarantined",
                self.name,
                title=f"Task {self.name} quarantined",
                message=message,
                severity="critical",
            )
        except Exception:
            logger.exception("[QUARANTINE] the alert could not be raised")

    def after_return(self, status: str, retval: Any, task_id: str, *args: Any, **kw: Any) -> None:
        # The process survived this run (success, failure or retry): forget the count.
        if task_id and not self.request.is_eager:
            from alerts.models import TaskDelivery

            try:
                TaskDelivery.objects.filter(
                    task_id=self._delivery_key(), quarantined_at__isnull=True
                ).delete()
            except Exception:
                logger.exception("could not clear the delivery count of %s", task_id)
        super().after_return(status, retval, task_id, *args, **kw)
