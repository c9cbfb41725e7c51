"""Candle rows for tests: a seeded random walk, or an exact path of closes."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from markets.models import Candle

START = datetime(2024, 1, 1, tzinfo=UTC)
MARKET = {"exchange": "testex", "symbol": "BTC/USD", "timeframe": "1h"}


def store_walk(
    count: int, *, seed: int = 1, start: datetime = START, **market: str
) -> list[Candle]:
    """``count`` hourly candles of a seeded random walk around 30000, stored."""
    return store(walk(count, seed=seed, start=start), **market)


def walk(count: int, *, seed: int = 1, start: datetime = START) -> list[tuple]:
    """``(open_time, open, high, low, close)`` rows of a seeded hourly random walk."""
    rng = random.Random(seed)
    price = 30000.0
    rows = []
    for i in range(count):
        open_ = price
        price = max(100.0, price * (1 + rng.gauss(0, 0.012)))
        high = max(open_, price) * (1 + abs(rng.gauss(0, 0.004)))
        low = min(open_, price) * (1 - abs(rng.gauss(0, 0.004)))
        rows.append((start + timedelta(hours=i), open_, high, low, price))
    return rows


def store(rows: list[tuple], **market: str) -> list[Candle]:
    """Store ``(open_time, open, high, low, close)`` rows as candles of ``market``."""
    where = {**MARKET, **market}
    candles = [
        Candle(
            **where,
            open_time=t,
            open=_d(o),
            high=_d(h),
            low=_d(lo),
            close=_d(c),
            volume=Decimal(1),
            source=Candle.Source.SYNTHETIC,
        )
        for t, o, h, lo, c in rows
    ]
    return Candle.objects.bulk_create(candles)


def _d(value: float | str | Decimal) -> Decimal:
    return Decimal(str(round(float(value), 6)))
