"""Celery tasks of the signal side: thin wrappers that call one service each."""

from __future__ import annotations

from functools import partial
from typing import Any

from celery import current_app, shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from markets.orders import OrderGateway
from signals.execution import book_execute, orders_settle, positions_reconcile
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


@shared_task(name="signals.execute_book", time_limit=120, soft_time_limit=100)
def execute_book(book_id: int) -> dict[str, Any]:
    """Place the real orders a live book's live-flagged signals need (TRADING_MODE=live)."""
    if settings.TRADING_MODE != "live":
        return {"skipped": "paper mode"}
    gateway = OrderGateway.for_exchange(settings.EXCHANGE_ID)
    return book_execute(book_id=book_id, gateway=gateway, now=timezone.now()).as_dict()


@shared_task(name="signals.settle_orders", time_limit=120, soft_time_limit=100)
def settle_orders() -> dict[str, Any]:
    """Look up every unsettled real order by its client order id and record its fate,
    then compare the open orders and positions with the exchange."""
    if settings.TRADING_MODE != "live":
        return {"skipped": "paper mode"}
    gateway = OrderGateway.for_exchange(settings.EXCHANGE_ID)
    settled = orders_settle(gateway=gateway, now=timezone.now()).as_dict()
    return {"orders": settled, "reconciled": positions_reconcile(gateway=gateway)}


@worker_ready.connect
def _settle_orders_on_start(sender: Any = None, **kwargs: Any) -> None:
    # A worker that died mid-send left orders it does not know the fate of: before it
    # takes new work, ask the exchange about them (never send them again blindly).
    if settings.TRADING_MODE == "live":
        current_app.send_task("signals.settle_orders")
