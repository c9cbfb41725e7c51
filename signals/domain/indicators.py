"""Textbook indicators over whole candle arrays, resumable from a carried state.

The conventions are TA-Lib's: an EMA of period n is seeded with the simple average of
its first n values (NaN before), then ``ema = alpha * x + (1 - alpha) * ema`` with
``alpha = 2 / (n + 1)``; Wilder's ATR of period n is the mean of the first n true
ranges (the first candle has none: it needs a previous close), then
``atr = (atr * (n - 1) + tr) / n``; Wilder's RSI smooths the gains and losses of the
closes the same way. Rolling means, standard deviations and channels are exact over
their window, so they need no seed.

Each function takes the state left by the previous call (``None`` at the start of the
history) and returns the new one, so a live run that feeds the candles a few at a time
computes exactly the values a replay computes over the whole array: to the bit, because
every value is computed in the same order whatever the split. States are plain
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


def wilder_rsi(
    close: np.ndarray, period: int, state: IndicatorState | None = None
) -> tuple[np.ndarray, IndicatorState]:
    """Wilder's RSI (0 to 100) through each close and the state to continue with.

    The average gain and loss start as the means of the first ``period`` close-to-close
    changes (so the first RSI is on candle ``period``), then are smoothed like the ATR.
    RSI = 100 * gain / (gain + loss): 100 with no loss, 50 when the closes never moved.
    """
    previous = _number(state["previous_close"]) if state else math.nan
    seen = state["seen"] if state else 0
    gain_total = state["gain_total"] if state else 0.0
    loss_total = state["loss_total"] if state else 0.0
    gain = _number(state["gain"]) if state else math.nan
    loss = _number(state["loss"]) if state else math.nan
    if not len(close):
        return np.empty(0), _rsi_state(previous, seen, gain_total, loss_total, gain, loss)
    # The first close of the history has no change (NaN), like the first true range.
    changes = close - np.concatenate(([previous], close[:-1]))
    gains = np.maximum(changes, 0.0).tolist()
    losses = np.maximum(-changes, 0.0).tolist()
    average_gain = np.empty(len(close))
    average_loss = np.empty(len(close))
    for index, (up, down) in enumerate(zip(gains, losses, strict=True)):
        if up == up:  # not NaN
            if seen < period:
                seen += 1
                gain_total += up
                loss_total += down
                if seen == period:
                    gain, loss = gain_total / period, loss_total / period
            else:
                gain = (gain * (period - 1) + up) / period
                loss = (loss * (period - 1) + down) / period
        average_gain[index] = gain
        average_loss[index] = loss
    moved = average_gain + average_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi = np.where(moved > 0, 100.0 * average_gain / moved, 50.0)
    rsi[np.isnan(moved)] = math.nan
    return rsi, _rsi_state(float(close[-1]), seen, gain_total, loss_total, gain, loss)


def _rsi_state(
    previous: float, seen: int, gain_total: float, loss_total: float, gain: float, loss: float
) -> IndicatorState:
    return {
        "previous_close": _json(previous),
        "seen": seen,
        "gain_total": gain_total,
        "loss_total": loss_total,
        "gain": _json(gain),
        "loss": _json(loss),
    }


def macd(
    close: np.ndarray,
    fast: int,
    slow: int,
    signal: int,
    state: IndicatorState | None = None,
) -> tuple[np.ndarray, np.ndarray, IndicatorState]:
    """The MACD line, EMA(fast) - EMA(slow) of the closes, and its signal line, the EMA
    of period ``signal`` of that line, through each close; with the state to continue.

    The line exists once the slow EMA does (candle ``slow - 1``); the signal line is
    seeded with the mean of the first ``signal`` values of the line (TA-Lib seeds the
    fast EMA later, aligned with the slow one; ours is the plain textbook EMA).
    """
    state = state or {}
    fast_ema, fast_state = ema(close, fast, state.get("fast"))
    slow_ema, slow_state = ema(close, slow, state.get("slow"))
    line = fast_ema - slow_ema
    # The line is undefined only on a prefix of the history: feed the signal EMA the rest.
    defined = ~np.isnan(line)
    signal_values, signal_state = ema(line[defined], signal, state.get("signal"))
    signal_line = np.full(len(close), math.nan)
    signal_line[defined] = signal_values
    return (
        line,
        signal_line,
        {"fast": fast_state, "slow": slow_state, "signal": signal_state},
    )


def rolling_mean_std(
    values: np.ndarray, period: int, state: IndicatorState | None = None
) -> tuple[np.ndarray, np.ndarray, IndicatorState]:
    """The mean and the population standard deviation (ddof 0, Bollinger's choice) of the
    last ``period`` values through each value (NaN until there are ``period``), and the
    state to continue with: the last ``period - 1`` values.
    """
    carried = np.asarray(state["window"] if state else [], dtype=np.float64)
    window = np.concatenate((carried, values))
    mean = np.full(len(values), math.nan)
    std = np.full(len(values), math.nan)
    count = len(window) - period + 1
    if count > 0:
        # One window per output, summed oldest value first: the same additions in the
        # same order whatever the split, so a resumed run is exact to the bit.
        total = window[:count].copy()
        for offset in range(1, period):
            total += window[offset : offset + count]
        average = total / period
        squares = (window[:count] - average) ** 2
        for offset in range(1, period):
            squares += (window[offset : offset + count] - average) ** 2
        start = period - 1 - len(carried)
        mean[start:] = average
        std[start:] = np.sqrt(squares / period)
    keep = window[max(0, len(window) - (period - 1)) :]
    return mean, std, {"window": keep.tolist()}


def donchian(
    high: np.ndarray, low: np.ndarray, period: int, state: IndicatorState | None = None
) -> tuple[np.ndarray, np.ndarray, IndicatorState]:
    """The Donchian channel of each candle: the highest high and the lowest low of the
    ``period`` candles before it (the candle itself excluded, so its close can break
    out), NaN until there are ``period`` of them; with the state to continue (the last
    ``period`` highs and lows).
    """
    highs = np.concatenate((np.asarray(state["highs"] if state else [], np.float64), high))
    lows = np.concatenate((np.asarray(state["lows"] if state else [], np.float64), low))
    carried = len(highs) - len(high)
    upper = np.full(len(high), math.nan)
    lower = np.full(len(high), math.nan)
    if len(highs) > period:
        # Window k is candles k .. k + period - 1 of the buffer: the channel of the next.
        start = period - carried
        upper[start:] = np.lib.stride_tricks.sliding_window_view(highs[:-1], period).max(axis=1)
        lower[start:] = np.lib.stride_tricks.sliding_window_view(lows[:-1], period).min(axis=1)
    return (
        upper,
        lower,
        {"highs": highs[-period:].tolist(), "lows": lows[-period:].tolist()},
    )
