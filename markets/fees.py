"""Trading fees as ccxt knows them, without a network round trip."""

from decimal import Decimal
from functools import cache

import ccxt


@cache
def exchange_taker_fee(exchange_id: str) -> Decimal | None:
    """The taker fee rate ccxt's class for ``exchange_id`` declares for its base tier
    (Kraken 0.26 %, Binance 0.1 %, ...), or ``None`` when ccxt has no such exchange or
    declares none. Per-market and per-account rates need the exchange's market data
    (``markets.orders.OrderGateway.taker_fee``)."""
    if exchange_id not in ccxt.exchanges:
        return None
    taker = getattr(ccxt, exchange_id)().fees.get("trading", {}).get("taker")
    if not isinstance(taker, int | float) or isinstance(taker, bool) or taker < 0:
        return None
    return Decimal(str(taker))
