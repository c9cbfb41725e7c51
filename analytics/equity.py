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


def equity_curve(
    candles: Mapping[str, CandleArrays],
    positions: Sequence[PaperPosition],
    *,
    step_ms: Mapping[str, int],
) -> EquityCurve:
    """The book's equity at each candle close of its markets."""
    keys = list(candles)
    index = {key: i for i, key in enumerate(keys)}
    known = [p for p in positions if p.market in index]
    return equity_curve_arrays(
        candles,
        PositionArrays(
            market=np.array([index[p.market] for p in known], dtype=np.int64),
            signed=np.array([p.direction * p.quantity for p in known], dtype=float),
            entry_price=np.array([p.entry_price for p in known], dtype=float),
            entry_time=np.array([p.entry_time for p in known], dtype=np.int64),
            exit_time=np.array(
                [np.nan if p.exit_time is None else p.exit_time for p in known], dtype=float
            ),
            pnl=np.array([p.pnl for p in known], dtype=float),
        ),
        step_ms=step_ms,
    )


@dataclass(frozen=True, slots=True)
class PositionArrays:
    """Paper positions as columns: ``market`` is the index of the position's market in
    the ``candles`` mapping's order, ``signed`` direction * quantity, ``exit_time`` NaN
    while open (``pnl`` then ignored)."""

    market: np.ndarray
    signed: np.ndarray
    entry_price: np.ndarray
    entry_time: np.ndarray
    exit_time: np.ndarray
    pnl: np.ndarray


def equity_curve_arrays(
    candles: Mapping[str, CandleArrays],
    positions: PositionArrays,
    *,
    step_ms: Mapping[str, int],
) -> EquityCurve:
    """``equity_curve`` over positions given as columns (no object per trade)."""
    if not candles or all(len(c) == 0 for c in candles.values()):
        return EquityCurve(np.empty(0, dtype=np.int64), np.empty(0))
    closes = np.unique(
        np.concatenate([c.time + step_ms[key] for key, c in candles.items() if len(c)])
    )
    total = np.zeros(len(closes))
    for number, (key, market) in enumerate(candles.items()):
        if not len(market):
            continue
        per_candle = _market_equity(market, positions, positions.market == number)
        # Carry this market's value to every close of the shared timeline.
        at = np.searchsorted(market.time + step_ms[key], closes, side="right") - 1
        total += np.where(at >= 0, per_candle[np.clip(at, 0, None)], 0.0)
    return EquityCurve(closes, total)


def _market_equity(market: CandleArrays, positions: PositionArrays, own: np.ndarray) -> np.ndarray:
    """Realised + unrealised P&L of the ``own`` positions at each of ``market``'s candle
    closes (``np.add.at`` adds in the positions' order, as a loop over them would)."""
    n = len(market)
    size = np.zeros(n + 1)  # direction * quantity of the trades open at each candle
    cost = np.zeros(n + 1)  # direction * quantity * entry price of those trades
    realised = np.zeros(n + 1)
    signed = positions.signed[own]
    price = positions.entry_price[own]
    exits = positions.exit_time[own]
    closed = ~np.isnan(exits)
    start = np.searchsorted(market.time, positions.entry_time[own])
    stop = np.full(start.shape, n, dtype=np.int64)
    stop[closed] = np.searchsorted(market.time, exits[closed].astype(np.int64))
    # Open from the entry candle's close up to the candle before the exit candle, in the
    # order the loop over positions added them: +start, -stop per position.
    np.add.at(
        size, np.stack((start, stop), axis=1).ravel(), np.stack((signed, -signed), axis=1).ravel()
    )
    weighted = signed * price
    np.add.at(
        cost,
        np.stack((start, stop), axis=1).ravel(),
        np.stack((weighted, -weighted), axis=1).ravel(),
    )
    np.add.at(realised, stop[closed], positions.pnl[own][closed])
    size, cost = np.cumsum(size)[:n], np.cumsum(cost)[:n]
    return np.cumsum(realised)[:n] + size * market.close - cost
