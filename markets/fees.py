"""Trading fees as ccxt knows them, without a network round trip."""

import importlib.util
from decimal import Decimal
from functools import cache
from pathlib import Path

from markets.gateway import ccxt_module


@cache
def exchange_taker_fee(exchange_id: str) -> Decimal | None:
    """The taker fee rate ccxt's class for ``exchange_id`` declares for its base tier
    (Kraken 0.26 %, Binance 0.1 %, ...), or ``None`` when ccxt has no such exchange or
    declares none. Per-market and per-account rates need the exchange's market data
    (``markets.orders.OrderGateway.taker_fee``)."""
    if not _ccxt_has(exchange_id):
        return None
    # ccxt is imported on first use (0.6 s and 50 MiB), by the one function that does.
    taker = getattr(ccxt_module(), exchange_id)().fees.get("trading", {}).get("taker")
    if not isinstance(taker, int | float) or isinstance(taker, bool) or taker < 0:
        return None
    return Decimal(str(taker))


def _ccxt_has(exchange_id: str) -> bool:
    # Looked up on disk so that synthetic data, files and benchmarks (exchange names
    # ccxt does not have) never pay for importing ccxt.
    spec = importlib.util.find_spec("ccxt")
    if spec is None or not spec.submodule_search_locations or not exchange_id.isidentifier():
        return False
    return any(
        (Path(folder) / f"{exchange_id}.py").is_file() for folder in spec.submodule_search_locations
    )
