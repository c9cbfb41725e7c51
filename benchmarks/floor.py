"""The floor: the strategy, the guards and the fill model as one plain Python loop.

``python benchmarks/floor.py CANDLES.csv`` reads the CSV with numpy, computes the EMAs
and the ATR, then walks the candles once with the benchmark book's rules: the default
guards (``signals.services.DEFAULT_GUARDS``): at most one position, open or awaiting
entry (``max_open_positions`` 1), and no signal for ``COOLDOWN_MINUTES`` after a stop-out
(``cooldown_after_stop`` 240 minutes, a stop or a gap through it, counted from the close
of the exit candle, when the stop-out became known); a crossover on the close of candle
t enters at the open of t+1 and exits on the stop, the target or after ``max_hold``
candles, with the project's fill rules (``signals.domain.fills``: a candle opening
beyond the stop or target exits at its open; the stop wins when both are touched;
slippage against every fill; fees on both sides; a trade still open when the candles
run out is not closed). It prints the closed trades' count and total P&L. No database,
no objects per candle: about the least work the same backtest can be done with in
Python, so "project time / floor time" says what everything else costs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks.indicators import FloatArray, atr, ema

FAST, SLOW, ATR_PERIOD = 12, 26, 14
STOP_ATR, TARGET_ATR, MAX_HOLD = 1.5, 3.0, 48
SLIPPAGE, FEE_RATE, NOTIONAL = 5 / 10_000, 0.0026, 1000.0
COOLDOWN_MINUTES = 240
STOP_OUTS = frozenset({"stop", "gap"})


@dataclass(frozen=True, slots=True)
class Trade:
    side: int  # +1 long, -1 short
    entry_index: int
    exit_index: int
    reason: str
    pnl: float


def read_csv(path: Path) -> FloatArray:
    """Columns ``timestamp_ms, open, high, low, close, volume`` as one float array."""
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def backtest(
    time: FloatArray, open_: FloatArray, high: FloatArray, low: FloatArray, close: FloatArray
) -> list[Trade]:
    """Every closed trade of the EMA crossover with ATR stop and target, one at a time,
    none entered while a stop-out's cooldown runs (``time``: candle open times, ms)."""
    spread = (ema(close, FAST) - ema(close, SLOW)).tolist()
    ranges = atr(high, low, close, ATR_PERIOD).tolist()
    opens, highs, lows, closes = open_.tolist(), high.tolist(), low.tolist(), close.tolist()
    times = time.astype(np.int64).tolist()
    cooldown_ms = COOLDOWN_MINUTES * 60_000
    # Open time of the latest stop-out's exit candle: a signal candle passes once its
    # close is ``cooldown_ms`` after that candle's close, i.e. its open time is too.
    stopped_at: int | None = None

    trades: list[Trade] = []
    side = 0  # the open position: +1 long, -1 short, 0 none
    entry_index, entry_price, stop, target = 0, 0.0, 0.0, 0.0
    pending: tuple[int, float, float] | None = None  # side, stop, target of the next entry
    for i in range(1, len(closes)):
        if pending is not None:
            side, stop, target = pending
            pending = None
            entry_index, entry_price = i, opens[i] * (1 + side * SLIPPAGE)
        if side:
            bar_open = opens[i]
            exit_raw: float | None = None
            reason = ""
            if side * (bar_open - stop) <= 0:
                exit_raw, reason = bar_open, "gap"
            elif side * (bar_open - target) >= 0:
                exit_raw, reason = bar_open, "target"
            elif side * ((lows[i] if side > 0 else highs[i]) - stop) <= 0:
                exit_raw, reason = stop, "stop"
            elif side * ((highs[i] if side > 0 else lows[i]) - target) >= 0:
                exit_raw, reason = target, "target"
            elif i - entry_index == MAX_HOLD - 1:
                exit_raw, reason = closes[i], "timeout"
            if exit_raw is not None:
                exit_price = exit_raw * (1 - side * SLIPPAGE)
                quantity = NOTIONAL / entry_price
                fees = FEE_RATE * quantity * (entry_price + exit_price)
                pnl = side * (exit_price - entry_price) * quantity - fees
                trades.append(Trade(side, entry_index, i, reason, pnl))
                side = 0
                if reason in STOP_OUTS:
                    stopped_at = times[i]
        if side or pending is not None:
            continue
        if stopped_at is not None and times[i] - stopped_at < cooldown_ms:
            continue
        before, now, distance = spread[i - 1], spread[i], ranges[i]
        if not distance > 0:
            continue
        if before <= 0 < now:
            pending = (1, closes[i] - STOP_ATR * distance, closes[i] + TARGET_ATR * distance)
        elif before >= 0 > now:
            pending = (-1, closes[i] + STOP_ATR * distance, closes[i] - TARGET_ATR * distance)
    return trades


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit(f"usage: {argv[0]} CANDLES.csv")
    candles = read_csv(Path(argv[1]))
    trades = backtest(candles[:, 0], candles[:, 1], candles[:, 2], candles[:, 3], candles[:, 4])
    print(f"candles: {len(candles)}")
    print(f"trades: {len(trades)}")
    print(f"pnl: {sum(trade.pnl for trade in trades)!r}")


if __name__ == "__main__":
    main(sys.argv)
