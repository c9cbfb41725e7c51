"""Pause a market whose recent trades lost money, weighted by their size."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from signals.domain.guards.base import RECENT_CLOSED_KEPT, Snapshot, Verdict
from signals.domain.strategies import Proposal


@dataclass(frozen=True, slots=True)
class LowProfitMarkets:
    """Blocks a symbol whose last ``lookback_trades`` closed trades returned less than
    ``min_profit_pct`` percent of the money they put in: 100 * sum(P&L) / sum(notional).

    Weighted by notional, unlike Freqtrade's LowProfitPairs, whose unweighted sum of
    ratios lets a small winner hide a large loser (freqtrade issue #7500). With fewer
    than ``min_trades`` closed trades it passes. At the minimum it passes.
    """

    kind: ClassVar[str] = "low_profit_markets"
    unit: ClassVar[str] = "%"
    blocks_when: ClassVar[str] = "<"
    lookback_trades: int = 10
    min_trades: int = 3
    min_profit_pct: float = 0.0

    def __post_init__(self) -> None:
        # The snapshot keeps the latest RECENT_CLOSED_KEPT (200) trades of a symbol.
        if not 1 <= self.lookback_trades <= RECENT_CLOSED_KEPT:
            raise ValueError(
                f"low_profit_markets needs lookback_trades between 1 and {RECENT_CLOSED_KEPT}"
            )
        if not 1 <= self.min_trades <= self.lookback_trades:
            raise ValueError("low_profit_markets needs min_trades between 1 and lookback_trades")
        if not math.isfinite(self.min_profit_pct):
            raise ValueError("low_profit_markets needs a finite min_profit_pct")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        trades = list(snapshot.symbol_closed())[-self.lookback_trades :]
        threshold = self.min_profit_pct
        if len(trades) < self.min_trades:
            return Verdict(
                self.kind,
                True,
                f"{len(trades)} closed trade(s) on this symbol, fewer than {self.min_trades}",
                None,
                threshold,
            )
        notional = sum(trade.notional for trade in trades)
        if notional <= 0:
            return Verdict(
                self.kind, True, "no notional recorded for these trades", None, threshold
            )
        pnl = sum(trade.pnl for trade in trades)
        observed = 100 * pnl / notional
        return Verdict(
            guard=self.kind,
            passed=observed >= threshold,
            reason=(
                f"last {len(trades)} trade(s) on {snapshot.symbol} returned {observed:.2f}% "
                f"of their notional ({pnl:.2f} quote on {notional:.2f} quote), "
                f"minimum {threshold:.2f}%"
            ),
            observed=observed,
            threshold=threshold,
        )
