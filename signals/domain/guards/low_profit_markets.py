"""Pause a market whose recent trades lost money, weighted by their size."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from signals.domain.guards.base import (
    RECENT_CLOSED_KEPT,
    STOP_MINUTES,
    Look,
    Snapshot,
    Verdict,
    look_back,
    released_note,
)
from signals.domain.strategies import Proposal


@dataclass(frozen=True, slots=True)
class LowProfitMarkets:
    """Blocks a symbol whose last ``lookback_trades`` closed trades returned less than
    ``min_profit_pct`` percent of the money they put in: 100 * sum(P&L) / sum(notional).

    Weighted by notional, unlike Freqtrade's LowProfitPairs, whose unweighted sum of
    ratios lets a small winner hide a large loser (freqtrade issue #7500). With fewer
    than ``min_trades`` closed trades it passes. At the minimum it passes.

    Release: a block lasts ``stop_minutes`` from the exit of the latest of those trades;
    then the guard releases and counts only trades that close after the release, so a
    market it paused can trade again (with fewer than ``min_trades`` it passes).
    """

    kind: ClassVar[str] = "low_profit_markets"
    unit: ClassVar[str] = "%"
    blocks_when: ClassVar[str] = "<"
    release: ClassVar[str] = (
        "after stop_minutes from the latest counted trade; only trades closed after the "
        "release count"
    )
    live_only: ClassVar[bool] = False
    tunable: ClassVar[str | None] = "min_profit_pct"
    tolerance: ClassVar[float] = 0.0
    pauses_trading: ClassVar[bool] = False
    lookback_trades: int = 10
    min_trades: int = 3
    min_profit_pct: float = 0.0
    stop_minutes: int = STOP_MINUTES

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
        if self.stop_minutes <= 0:
            raise ValueError("low_profit_markets needs stop_minutes > 0")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        known = list(snapshot.symbol_closed())

        def observe(since: datetime | None) -> Look:
            counted = known if since is None else [t for t in known if t.known_at > since]
            trades = counted[-self.lookback_trades :]
            changed_at = trades[-1].known_at if trades else None
            notional = sum(trade.notional for trade in trades)
            pnl = sum(trade.pnl for trade in trades)
            if len(trades) < self.min_trades or notional <= 0:
                return Look(None, changed_at, (len(trades), pnl, notional))
            return Look(100 * pnl / notional, changed_at, (len(trades), pnl, notional))

        threshold = self.min_profit_pct
        look, since = look_back(
            observe,
            lambda observed: observed < threshold,
            stop_minutes=self.stop_minutes,
            now=snapshot.now,
            since=snapshot.released_at,
        )
        released_at = since if since != snapshot.released_at else None
        count, pnl, notional = look.facts
        note = released_note(since)
        if count < self.min_trades:
            return Verdict(
                self.kind,
                True,
                f"{count} closed trade(s) on this symbol{note}, fewer than {self.min_trades}",
                None,
                threshold,
                released_at,
            )
        if look.value is None:
            return Verdict(
                self.kind,
                True,
                "no notional recorded for these trades",
                None,
                threshold,
                released_at,
            )
        observed = look.value
        return Verdict(
            guard=self.kind,
            passed=observed >= threshold,
            reason=(
                f"last {count} trade(s) on {snapshot.symbol}{note} returned {observed:.2f}% "
                f"of their notional ({pnl:.2f} quote on {notional:.2f} quote), "
                f"minimum {threshold:.2f}%"
            ),
            observed=observed,
            threshold=threshold,
            released_at=released_at,
        )
