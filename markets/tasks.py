"""Celery tasks of the markets app: thin wrappers that call one service and own retries."""

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone

from markets.services import candles_sync_latest

# Retries live in ONE layer. The gateway already retries every transient exchange error
# (network, timeout, 5xx, rate limit) a bounded number of times with exponential backoff
# (``markets.gateway.DEFAULT_MAX_ATTEMPTS``) before it raises ``ExchangeUnavailableError``.
# A Celery ``autoretry_for`` on top used to multiply that budget: 6 task runs x 5 gateway
# attempts = 30 requests to an exchange that is already failing. So this task does not
# retry: the failure is recorded and the next beat tick (``signals.sync_watched_markets``,
# every minute) syncs the market again from its newest stored candle, losing nothing.
# A refused request (bad symbol or key) would fail the same way every time anyway.
# Database errors are another matter: those it retries, like every task
# (config.task_base.DATABASE_ERRORS).


@shared_task(name="markets.sync_candles")
def sync_candles(
    exchange: str, symbol: str, timeframe: str, lookback_minutes: int | None = None
) -> dict[str, Any]:
    """Bring one market's stored candles up to date: from the newest stored candle (or
    ``lookback_minutes`` ago, whichever is later) to now. Returns the load summary."""
    lookback = timedelta(minutes=lookback_minutes) if lookback_minutes is not None else None
    summary = candles_sync_latest(
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        now=timezone.now(),
        lookback=lookback,
    )
    return summary.as_dict()
