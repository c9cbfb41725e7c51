"""Celery tasks of the markets app: thin wrappers that call one service and own retries."""

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone

from markets.errors import ExchangeDataError, ExchangeUnavailableError
from markets.services import candles_sync_latest

# Only transient trouble is worth another try; a refused request (bad symbol or key)
# would fail the same way every time.
RETRIED_ERRORS = (ExchangeUnavailableError, ExchangeDataError)


@shared_task(
    name="markets.sync_candles",
    autoretry_for=RETRIED_ERRORS,
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
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
