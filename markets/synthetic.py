"""Synthetic candles for demos and tests: a seeded geometric random walk. Not market data.

Pure code: the same arguments and seed always give the same candles. Each candle opens
at the previous close, so the series is continuous like a real one; the close follows a
log-normal step whose size scales with the square root of the candle length, and the
wicks extend beyond the body by a random fraction of that step, so every candle has
``low <= min(open, close) <= max(open, close) <= high`` and all prices are positive.
"""

import math
import random
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from markets.bars import Bar
from markets.timestamps import floor_to_grid

DEFAULT_START_PRICE = Decimal("30000")
# About 3% a day: the order of magnitude of BTC's daily volatility.
DEFAULT_DAILY_VOLATILITY = 0.03
# Plausible levels for the demo's markets, by base currency: a start price in USD near
# its real level in late 2026 and a daily volatility of its order (an altcoin swings
# more than BTC). Any other base gets the defaults above.
PLAUSIBLE: dict[str, tuple[Decimal, float]] = {
    "BTC": (Decimal("90000"), 0.03),
    "ETH": (Decimal("3200"), 0.04),
    "SOL": (Decimal("150"), 0.055),
    "XRP": (Decimal("2.2"), 0.05),
}


def plausible_market(symbol: str) -> tuple[Decimal, float]:
    """The start price and daily volatility the demo gives ``symbol`` (``BASE/QUOTE``)."""
    base = symbol.partition("/")[0].upper()
    return PLAUSIBLE.get(base, (DEFAULT_START_PRICE, DEFAULT_DAILY_VOLATILITY))


_QUANTUM = Decimal("0.00000001")
_ONE_DAY = timedelta(days=1)


def synthetic_bars(
    *,
    timeframe: timedelta,
    count: int,
    end: datetime,
    seed: int,
    start_price: Decimal = DEFAULT_START_PRICE,
    daily_volatility: float = DEFAULT_DAILY_VOLATILITY,
) -> list[Bar]:
    """``count`` consecutive candles on the ``timeframe`` grid, oldest first, the last one
    being the last candle already closed at ``end``; deterministic for a given ``seed``."""
    if count < 0:
        raise ValueError("count cannot be negative")
    if start_price <= 0:
        raise ValueError("the start price must be positive")
    rng = random.Random(seed)
    sigma = daily_volatility * math.sqrt(timeframe / _ONE_DAY)
    last_open = floor_to_grid(end, timeframe) - timeframe
    first_open = last_open - timeframe * (count - 1)

    bars = []
    price = float(start_price)
    for index in range(count):
        open_ = price
        close = open_ * math.exp(rng.gauss(0.0, sigma))
        high = max(open_, close) * math.exp(abs(rng.gauss(0.0, sigma / 2)))
        low = min(open_, close) * math.exp(-abs(rng.gauss(0.0, sigma / 2)))
        volume = rng.lognormvariate(0.0, 0.5) * 10
        # Rounding is monotonic, so the OHLC order survives it; the floor keeps prices positive.
        bars.append(
            Bar(
                open_time=first_open + timeframe * index,
                open=_price(open_),
                high=_price(high),
                low=_price(low),
                close=_price(close),
                volume=_price(volume),
            )
        )
        price = close
    return bars


def _price(value: float) -> Decimal:
    return max(Decimal(repr(value)).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN), _QUANTUM)
