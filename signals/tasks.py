"""Celery tasks of the signal side: thin wrappers that call one service each."""

from __future__ import annotations

import logging

from celery import current_app, shared_task
from django.utils import timezone

from signals.models import StrategyConfig
from signals.services import book_live, signals_catch_up

logger = logging.getLogger("signals")


@shared_task(name="signals.sync_watched_markets")
def sync_watched_markets() -> int:
    """Ask the market-data queue to sync every market an enabled strategy watches."""
    markets = (
        StrategyConfig.objects.filter(enabled=True)
        .values_list("exchange", "symbol", "timeframe")
        .distinct()
    )
    for exchange, symbol, timeframe in markets:
        current_app.send_task(
            "markets.sync_candles",
            kwargs={"exchange": exchange, "symbol": symbol, "timeframe": timeframe},
        )
    return len(markets)


@shared_task(name="signals.generate_signals")
def generate_signals() -> int:
    """Run every enabled strategy over the closed candles it has not seen, in the live book."""
    book, now = book_live(), timezone.now()
    processed = 0
    for config in StrategyConfig.objects.filter(enabled=True):
        try:
            processed += signals_catch_up(book=book, config=config, now=now)
        except ValueError as error:
            # A configuration edited into an invalid state must not stop the others.
            logger.error("[SIGNAL-BUS] strategy %r skipped: %s", config.name, error)
    return processed
