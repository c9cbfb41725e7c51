"""Trade statistics a database cannot give directly, from one query's columns with numpy.

Conventions (the same on every page and in every report):

- **win rate**: closed trades with P&L > 0 over closed trades.
- **profit factor**: gross profit / gross loss (both positive); ``None`` without a loss.
- **expectancy**: mean P&L per closed trade (money).
- **max drawdown**: the largest fall of realised equity (the running sum of closed-trade
  P&L in exit order, starting at 0) below its running peak, as a positive amount of money.
- **Sharpe**: of daily realised P&L, every calendar day (UTC) from the first to the last
  exit counted (days without a close count as 0), mean / sample standard deviation times sqrt(365);
  ``None`` with fewer than two days or no variation. It is a ratio of money to money, so
  it needs no starting balance.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class TradeStats:
    trades: int
    wins: int
    losses: int
    win_rate: float | None
    total_pnl: float
    gross_profit: float
    gross_loss: float
    profit_factor: float | None
    expectancy: float | None
    max_drawdown: float
    sharpe: float | None


def _arrays(
    pnl: Sequence[float] | np.ndarray, exit_ms: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(pnl, dtype=float)
    times = np.asarray(exit_ms, dtype=np.int64)
    if values.shape != times.shape:
        raise ValueError("pnl and exit_ms must have the same length")
    order = np.argsort(times, kind="stable")
    return values[order], times[order]


def max_drawdown(pnl_in_exit_order: Sequence[float] | np.ndarray) -> float:
    """Largest fall of the running sum below its running peak (peak starts at 0)."""
    values = np.asarray(pnl_in_exit_order, dtype=float)
    if values.size == 0:
        return 0.0
    equity = np.concatenate(([0.0], np.cumsum(values)))
    return float(np.max(np.maximum.accumulate(equity) - equity))


def daily_pnl(
    pnl: Sequence[float] | np.ndarray, exit_ms: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(day start in ms, P&L closed that UTC day) for every day from the first exit to the
    last, zero-filled."""
    values, times = _arrays(pnl, exit_ms)
    if values.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    days = times // DAY_MS
    first = int(days[0])
    totals = np.bincount(days - first, weights=values)
    return (np.arange(first, first + totals.size, dtype=np.int64) * DAY_MS), totals


def sharpe(pnl: Sequence[float] | np.ndarray, exit_ms: Sequence[int] | np.ndarray) -> float | None:
    """Annualised Sharpe of daily realised P&L (see the module's conventions)."""
    _, per_day = daily_pnl(pnl, exit_ms)
    if per_day.size < 2:
        return None
    spread = float(np.std(per_day, ddof=1))
    if spread == 0 or not np.isfinite(spread):
        return None
    return float(np.mean(per_day) / spread * np.sqrt(365.0))


def trade_stats(
    pnl: Sequence[float] | np.ndarray, exit_ms: Sequence[int] | np.ndarray
) -> TradeStats:
    """Every statistic above for the closed trades with these P&Ls and exit times."""
    values, times = _arrays(pnl, exit_ms)
    count = int(values.size)
    wins = int(np.count_nonzero(values > 0))
    losses = int(np.count_nonzero(values < 0))
    gross_profit = float(values[values > 0].sum())
    gross_loss = float(-values[values < 0].sum())
    return TradeStats(
        trades=count,
        wins=wins,
        losses=losses,
        win_rate=wins / count if count else None,
        total_pnl=float(values.sum()),
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        profit_factor=gross_profit / gross_loss if gross_loss > 0 else None,
        expectancy=float(values.mean()) if count else None,
        max_drawdown=max_drawdown(values),
        sharpe=sharpe(values, times),
    )
