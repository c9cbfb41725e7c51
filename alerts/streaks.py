"""Repeated exchange errors: a market-data task failing with an exchange error
``ALERT_EXCHANGE_ERROR_STREAK`` times in a row (default 3; the gateway has already
retried each time) raises one alert; a success ends the streak. Counted by Celery signal
handlers on the worker, in ``WatchState`` rows, so the count survives restarts."""

import logging
from typing import Any

from celery.signals import task_failure, task_success
from django.conf import settings
from django.db import transaction

from alerts.models import WatchState
from alerts.services import raise_alert
from markets.redaction import redact

logger = logging.getLogger(__name__)
EXCHANGE_ERRORS = {"ExchangeUnavailableError", "ExchangeDataError", "ExchangeRequestError"}


def _streak_name(task_name: str, exchange: str) -> str:
    return f"streak:{task_name}:{exchange}"


def _exchange_of(kwargs: dict[str, Any] | None) -> str:
    return str((kwargs or {}).get("exchange", "")) or "exchange"


def record_failure(task_name: str, exchange: str, error: BaseException) -> int:
    """Count one more exchange failure; raise the alert when the streak reaches the limit.
    Returns the streak's length."""
    limit = getattr(settings, "ALERT_EXCHANGE_ERROR_STREAK", 3)
    with transaction.atomic():
        state, _ = WatchState.objects.select_for_update().get_or_create(
            name=_streak_name(task_name, exchange)
        )
        count = int(state.value.get("count", 0)) + 1
        state.value = {"count": count, "last_error": redact(f"{type(error).__name__}: {error}")}
        state.save()
    if count >= limit:
        raise_alert(
            "exchange_errors",
            exchange,
            title=f"Repeated exchange errors from {exchange}",
            message=f"{task_name} failed {count} times in a row, each after the gateway's "
            f"retries. Last error: {state.value['last_error']}",
            severity="critical",
        )
    return count


def record_success(task_name: str, exchange: str) -> None:
    WatchState.objects.filter(name=_streak_name(task_name, exchange)).delete()


@task_failure.connect
def _on_failure(sender: Any = None, exception: BaseException | None = None, **kw: Any) -> None:
    name = getattr(sender, "name", "") or ""
    if not name.startswith("markets.") or type(exception).__name__ not in EXCHANGE_ERRORS:
        return
    try:
        assert exception is not None
        record_failure(name, _exchange_of(kw.get("kwargs")), exception)
    except Exception:
        logger.exception("[ALERT] could not count an exchange error")


@task_success.connect
def _on_success(sender: Any = None, **kw: Any) -> None:
    name = getattr(sender, "name", "") or ""
    if not name.startswith("markets."):
        return
    try:
        request = getattr(sender, "request", None)
        record_success(name, _exchange_of(getattr(request, "kwargs", None)))
    except Exception:
        logger.exception("[ALERT] could not reset an exchange error streak")
