"""The base class of every task: poison messages are quarantined.

Tasks are acknowledged late and rejected back to the queue when their worker process
dies (``acks_late`` + ``task_reject_on_worker_lost``), so a task killed by a crash or a
SIGKILL runs again. A task that kills its process *every* time would loop forever; so
each *redelivery* is counted (by the delivery ledger an app registers: ``alerts``
keeps it in ``alerts.TaskDelivery``), and past ``TASK_MAX_DELIVERIES`` (default 3) the
message is not run again: it is dropped from the queue, kept in the ledger (Admin →
Alerts → Task deliveries) with its arguments, logged and alerted on.

A first delivery costs nothing: only a message the broker marks redelivered (Redis and
RabbitMQ both set the flag on a message that comes back unacknowledged: a rejected
message of a dead worker process, or one restored after the visibility timeout) is
counted, its first delivery included. A run whose process survived (success or an
ordinary exception) clears its count, so the ledger holds only the unfinished.

``config`` imports no app: the ledger is registered by the app that keeps it
(``register_delivery_ledger`` in ``AlertsConfig.ready``); without one, nothing is counted.

Every task retries the database errors it can meet mid-write (``DATABASE_ERRORS``: a
dropped connection, a restart, a serialization failure, a deadlock), with backoff, both
as Django raises them and as psycopg raises them raw (a bulk ``COPY`` goes through
psycopg's own cursor, outside Django's error wrapping). Before a retry the connections
are closed, so the run that follows opens a fresh one.
"""

import logging
from typing import Any, Protocol

import psycopg
from celery import Task
from celery.exceptions import Reject
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections

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


class DeliveryLedger(Protocol):
    """Where redeliveries are counted and poison messages kept (``alerts.deliveries``)."""

    def count(self, *, task_id: str, task: str, arguments: str) -> int:
        """Count one more delivery of ``task_id`` (its first delivery included: the
        first call says 2) and return how many there have been."""
        ...

    def quarantine(self, *, task_id: str, task: str, deliveries: int, limit: int) -> None:
        """Keep ``task_id`` as quarantined and tell the operators."""
        ...

    def forget(self, *, task_id: str) -> None:
        """Its process survived a run: drop the count (never a quarantined one)."""
        ...


_ledger: DeliveryLedger | None = None


def register_delivery_ledger(ledger: DeliveryLedger | None) -> None:
    """Install the ledger redeliveries are counted in (an app's ``ready``)."""
    global _ledger
    _ledger = ledger


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
        """A redelivered message run by a worker: the only kind whose deliveries count."""
        request = self.request
        if not request.id or request.is_eager or request.called_directly or _ledger is None:
            return False
        return bool((request.delivery_info or {}).get("redelivered"))

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
        assert _ledger is not None
        return _ledger.count(
            task_id=self._delivery_key(),
            task=self.name,
            arguments=repr({"args": args, "kwargs": kwargs})[:2000],
        )

    def _quarantine(self, deliveries: int, limit: int) -> None:
        assert _ledger is not None
        task_id = self._delivery_key()
        message = (
            f"[QUARANTINE] task {self.name} id={task_id} killed its worker process "
            f"{deliveries - 1} times (limit {limit}); not run again. It is kept in "
            "Admin → Alerts → Task deliveries."
        )
        logger.critical(message)
        try:
            _ledger.quarantine(task_id=task_id, task=self.name, deliveries=deliveries, limit=limit)
        except Exception:
            logger.exception("[QUARANTINE] the quarantine could not be recorded")

    def after_return(self, status: str, retval: Any, task_id: str, *args: Any, **kw: Any) -> None:
        # The process survived this run (success, failure or retry): forget the count,
        # which only a redelivered message has.
        if task_id and self._counted():
            assert _ledger is not None
            try:
                _ledger.forget(task_id=self._delivery_key())
            except Exception:
                logger.exception("could not clear the delivery count of %s", task_id)
        super().after_return(status, retval, task_id, *args, **kw)
