"""The candle as pure code sees it, and timeframe arithmetic (no Django here)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

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


@dataclass(frozen=True, slots=True)
class CandleCloses:
    """One market's candles as two columns: open times (ms) and closes, oldest first."""

    time: np.ndarray
    close: np.ndarray

    def __len__(self) -> int:
        return int(self.time.size)

    @classmethod
    def from_table(cls, table: np.ndarray) -> "CandleCloses":
        """From a float table whose last two columns are ``time_ms`` and ``close``."""
        return cls(
            time=np.rint(table[:, -2]).astype(np.int64), close=np.ascontiguousarray(table[:, -1])
        )


@dataclass(frozen=True, slots=True)
class CandleArrays:
    """The closed candles of one market as columns, oldest first, for vectorised code.

    ``time`` is each candle's open, epoch milliseconds (int64); prices and volume are
    float64. Floats live only here and in the numeric code that reads these arrays:
    the database keeps ``Decimal`` and the drivers convert at the boundary.
    """

    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[float]]) -> "CandleArrays":
        """From ``(time_ms, open, high, low, close, volume)`` rows, oldest first."""
        return cls.from_table(np.asarray(rows, dtype=np.float64).reshape(-1, 6))

    @classmethod
    def from_table(cls, table: np.ndarray) -> "CandleArrays":
        """From a float table of ``(time_ms, open, high, low, close, volume)`` rows."""
        return cls(
            # Rounded, not truncated: a time may arrive as a float of milliseconds (to
            # even at .5, as ``round``; a float64 holds every millisecond time exactly).
            time=np.rint(table[:, 0]).astype(np.int64),
            open=np.ascontiguousarray(table[:, 1]),
            high=np.ascontiguousarray(table[:, 2]),
            low=np.ascontiguousarray(table[:, 3]),
            close=np.ascontiguousarray(table[:, 4]),
            volume=np.ascontiguousarray(table[:, 5]),
        )

    def head(self, count: int) -> "CandleArrays":
        """The first ``count`` candles (a view, no copy)."""
        return CandleArrays(
            self.time[:count],
            self.open[:count],
            self.high[:count],
            self.low[:count],
            self.close[:count],
            self.volume[:count],
        )

    def tail(self, start: int) -> "CandleArrays":
        """The candles from index ``start`` on (a view, no copy)."""
        return CandleArrays(
            self.time[start:],
            self.open[start:],
            self.high[start:],
            self.low[start:],
            self.close[start:],
            self.volume[start:],
        )

    def then(self, later: "CandleArrays") -> "CandleArrays":
        """These candles followed by ``later`` ones."""
        return CandleArrays(
            np.concatenate((self.time, later.time)),
            np.concatenate((self.open, later.open)),
            np.concatenate((self.high, later.high)),
            np.concatenate((self.low, later.low)),
            np.concatenate((self.close, later.close)),
            np.concatenate((self.volume, later.volume)),
        )
