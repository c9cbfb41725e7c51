"""The strategy's indicators in numpy, shared by backtesting.py's run and the floor loop.

The same textbook definitions the project's ``EmaCrossover`` uses, so the three
measurements compute the same thing: an EMA with alpha = 2/(n+1) seeded with the mean of
the first n values (NaN before), and Wilder's ATR in TA-Lib's convention (the first
value, at index n, is the mean of the first n true ranges; then
atr = (previous * (n - 1) + tr) / n). Only numpy, so it runs in both virtualenvs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def ema(values: FloatArray, period: int) -> FloatArray:
    """Exponential moving average through each value; NaN for the first ``period - 1``."""
    out = np.full(len(values), np.nan)
    if len(values) < period:
        return out
    alpha = 2.0 / (period + 1)
    current = float(np.mean(values[:period]))
    out[period - 1] = current
    seeded = [current]
    for value in values[period:].tolist():
        current = alpha * value + (1.0 - alpha) * current
        seeded.append(current)
    out[period - 1 :] = seeded
    return out


def true_range(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    """True range of each candle; NaN for the first, which has no previous close."""
    previous = np.concatenate(([np.nan], close[:-1]))
    return np.maximum(high - low, np.maximum(np.abs(high - previous), np.abs(low - previous)))


def atr(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    """Wilder's average true range through each candle; NaN for the first ``period``."""
    out = np.full(len(close), np.nan)
    if len(close) < period + 1:
        return out
    ranges = true_range(high, low, close)
    current = float(np.mean(ranges[1 : period + 1]))
    smoothed = [current]
    for value in ranges[period + 1 :].tolist():
        current = (current * (period - 1) + value) / period
        smoothed.append(current)
    out[period:] = smoothed
    return out
