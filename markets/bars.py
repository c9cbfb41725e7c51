"""The candle as pure code sees it, and timeframe arithmetic (no Django here)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class Bar:
    """A closed candle; ``open_time`` is its open, UTC."""

    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)


def timeframe_delta(timeframe: str) -> timedelta:
    """Length of one candle for a ccxt timeframe string such as ``1m``, ``4h`` or ``1d``.

    Raises ``ValueError`` for anything else.
    """
    amount, unit = timeframe[:-1], timeframe[-1:]
    if not amount.isdigit() or unit not in _UNIT_SECONDS or int(amount) <= 0:
        raise ValueError(f"unknown timeframe {timeframe!r}: use e.g. 1m, 5m, 1h, 4h, 1d")
    return timedelta(seconds=int(amount) * _UNIT_SECONDS[unit])
