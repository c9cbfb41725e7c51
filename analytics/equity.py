"""A book's equity at every candle close, marked to market (pure numpy; no Django).

Equity at the close of candle k = realised P&L of the paper trades whose exit became
known by then + the open trades' unrealised P&L at that close. An open trade is marked
at ``direction * (close - entry_price) * quantity``; its fees are booked with its
realised P&L when it closes (so the curve steps by the fees at the exit candle). Several
markets share one timeline, the union of their candle times, each market's last close
carried forward. Quote currencies are added as they are (a book is meant to trade one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from markets.bars import CandleArrays


@dataclass(frozen=True, slots=True)
class PaperPosition:
    """A paper trade as the curve needs it: entered at the candle opening at
    ``entry_time`` (ms), exited (if it has) on the candle opening at ``exit_time``."""

    market: str
    direction: int
    quantity: float
    entry_price: float
    entry_time: int
    exit_time: int | None = None
    pnl: float = 0.0


@dataclass(frozen=True, slots=True)
class EquityCurve:
    """``time`` are candle closes (ms); ``equity`` realised + unrealised, quote currency."""

    time: np.ndarray
    equity: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    def sampled(self, points: int) -> EquityCurve:
        """At most ``points`` points for a chart: the last point of each bucket, so the
        final equity is always shown."""
        if len(self) <= points:
            return self
        edges = np.linspace(0, len(self), points + 1).astype(np.int64)[1:] - 1
        return EquityCurve(self.time[edges], self.equity[edges])


def equity_curve(
    candles: Mapping[str, CandleArrays],
    positions: Sequence[PaperPosition],
    *,
    step_ms: Mapping[str, int],
) -> EquityCurve:
    """The book's equity at each candle close of its markets."""
    if not candles or all(len(c) == 0 for c in candles.values()):
        return EquityCurve(np.empty(0, dtype=np.int64), np.empty(0))
    closes = np.unique(
        np.concatenate([c.time + step_ms[key] for key, c in candles.items() if len(c)])
    )
    total = np.zeros(len(closes))
    for key, market in candles.items():
        if not len(market):
            continue
        own = [p for p in positions if p.market == key]
        per_candle = _market_equity(market, own)
        # Carry this market's value to every close of the shared timeline.
        at = np.searchsorted(market.time + step_ms[key], closes, side="right") - 1
        total += np.where(at >= 0, per_candle[np.clip(at, 0, None)], 0.0)
    return EquityCurve(closes, total)


def _market_equity(market: CandleArrays, positions: Sequence[PaperPosition]) -> np.ndarray:
    """Realised + unrealised P&L of ``positions`` at each of ``market``'s candle closes."""
    n = len(market)
    size = np.zeros(n + 1)  # direction * quantity of the trades open at each candle
    cost = np.zeros(n + 1)  # direction * quantity * entry price of those trades
    realised = np.zeros(n + 1)
    for p in positions:
        start = int(np.searchsorted(market.time, p.entry_time))
        stop = n if p.exit_time is None else int(np.searchsorted(market.time, p.exit_time))
        signed = p.direction * p.quantity
        # Open from the entry candle's close up to the candle before the exit candle.
        size[start] += signed
        size[stop] -= signed
        cost[start] += signed * p.entry_price
        cost[stop] -= signed * p.entry_price
        if p.exit_time is not None:
            realised[stop] += p.pnl
    size, cost = np.cumsum(size)[:n], np.cumsum(cost)[:n]
    return np.cumsum(realised)[:n] + size * market.close - cost
