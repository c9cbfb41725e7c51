"""Textbook indicators over whole candle arrays, resumable from a carried state.

The conventions are TA-Lib's: an EMA of period n is seeded with the simple average of
its first n values (NaN before), then ``ema = alpha * x + (1 - alpha) * ema`` with
``alpha = 2 / (n + 1)``; Wilder's ATR of period n is the mean of the first n true
ranges (the first candle has none: it needs a previous close), then
``atr = (atr * (n - 1) + tr) / n``.

Each function takes the state left by the previous call (``None`` at the start of the
history) and returns the new one, so a live run that feeds the candles a few at a time
computes exactly the values a replay computes over the whole array. States are plain
JSON-friendly dicts because the live driver stores them between runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

IndicatorState = dict[str, Any]


def _number(value: float | None) -> float:
    return math.nan if value is None else value


def _json(value: float) -> float | None:
    # PostgreSQL's jsonb has no NaN: "not yet defined" is stored as null.
    return None if math.isnan(value) else value


def ema(
    values: np.ndarray, period: int, state: IndicatorState | None = None
) -> tuple[np.ndarray, IndicatorState]:
    """The EMA through each of ``values`` and the state to continue with."""
    seen = state["seen"] if state else 0
    total = state["total"] if state else 0.0
    current = _number(state["value"]) if state else math.nan
    alpha = 2.0 / (period + 1)
    keep = 1.0 - alpha
    out = np.empty(len(values))
    for index, value in enumerate(values.tolist()):
        if seen < period:
            seen += 1
            total += value
            if seen == period:
                current = total / period
        else:
            current = alpha * value + keep * current
        out[index] = current
    return out, {"seen": seen, "total": total, "value": _json(current)}


def wilder_atr(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    period: int,
    state: IndicatorState | None = None,
) -> tuple[np.ndarray, IndicatorState]:
    """Wilder's average true range through each candle and the state to continue with."""
    previous = _number(state["previous_close"]) if state else math.nan
    seen = state["seen"] if state else 0
    total = state["total"] if state else 0.0
    current = _number(state["value"]) if state else math.nan
    out = np.empty(len(close))
    if not len(close):
        return out, dict(state) if state else _atr_state(previous, seen, total, current)
    previous_closes = np.concatenate(([previous], close[:-1]))
    # The first candle of the history has no previous close, hence no true range (NaN).
    true_ranges = np.maximum(
        high - low, np.maximum(np.abs(high - previous_closes), np.abs(low - previous_closes))
    )
    for index, true_range in enumerate(true_ranges.tolist()):
        if true_range == true_range:  # not NaN
            if seen < period:
                seen += 1
                total += true_range
                if seen == period:
                    current = total / period
            else:
                current = (current * (period - 1) + true_range) / period
        out[index] = current
    return out, _atr_state(float(close[-1]), seen, total, current)


def _atr_state(previous: float, seen: int, total: float, current: float) -> IndicatorState:
    return {
        "previous_close": _json(previous),
        "seen": seen,
        "total": total,
        "value": _json(current),
    }
