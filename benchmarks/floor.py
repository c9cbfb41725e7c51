"""The floor: the strategy and the fill model as one plain Python loop over numpy arrays.

``python benchmarks/floor.py CANDLES.csv`` reads the CSV with numpy, computes the EMAs
and the ATR, then walks the candles once holding at most one position: a crossover on
the close of candle t enters at the open of t+1 and exits on the stop, the target or
after ``max_hold`` candles, with the project's fill rules (a candle opening beyond the
stop or target exits at its open; the stop wins when both are touched; slippage against
every fill; fees on both sides). It prints the trade count. No database, no objects per
candle: about the least work the same backtest can be done with in Python, so
"project time / floor time" says what everything else costs.
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
    open_: FloatArray, high: FloatArray, low: FloatArray, close: FloatArray
) -> list[Trade]:
    """Every closed trade of the EMA crossover with ATR stop and target, one at a time."""
    spread = (ema(close, FAST) - ema(close, SLOW)).tolist()
    ranges = atr(high, low, close, ATR_PERIOD).tolist()
    opens, highs, lows, closes = open_.tolist(), high.tolist(), low.tolist(), close.tolist()

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
        if side or pending is not None:
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
    trades = backtest(candles[:, 1], candles[:, 2], candles[:, 3], candles[:, 4])
    print(f"candles: {len(candles)}")
    print(f"P&L: {sum(trade.pnl for trade in trades):.2f}")
    print(f"trades: {len(trades)}")


if __name__ == "__main__":
    main(sys.argv)
