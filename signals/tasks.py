"""Celery tasks of the signal side: thin wrappers that call one service each."""

from __future__ import annotations

from functools import partial

from celery import current_app, shared_task
from django.db import transaction

from signals.models import StrategyConfig


@shared_task(name="signals.sync_watched_markets", time_limit=60, soft_time_limit=50)
def sync_watched_markets() -> int:
    """Ask the market-data queue to sync every market an enabled strategy watches."""
    markets = (
        StrategyConfig.objects.filter(enabled=True)
        .values_list("exchange", "symbol", "timeframe")
        .distinct()
    )
    for exchange, symbol, timeframe in markets:
        transaction.on_commit(
            partial(
                current_app.send_task,
                "markets.sync_candles",
                kwargs={"exchange": exchange, "symbol": symbol, "timeframe": timeframe},
            )
        )
    return len(markets)
