"""Volatility ceiling: Wilder's ATR as a percentage of the price."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from signals.domain.guards.base import CONTEXT_CANDLES, Snapshot, Verdict
from signals.domain.indicators import wilder_atr
from signals.domain.strategies import Proposal


@dataclass(frozen=True, slots=True)
class VolatilityCeiling:
    """Blocks when Wilder's ATR(``atr_period``) at the signal candle is more than
    ``max_atr_pct`` percent of that candle's close. The ATR starts at the oldest
    candle of the snapshot (up to 200), so it needs ``atr_period`` + 1 of them; with
    fewer it passes. At the ceiling it passes."""

    kind: ClassVar[str] = "volatility_ceiling"
    unit: ClassVar[str] = "%"
    blocks_when: ClassVar[str] = ">"
    release: ClassVar[str] = "with the market: it reads the latest candles, not the book's trades"
    live_only: ClassVar[bool] = False
    tunable: ClassVar[str | None] = "max_atr_pct"
    tolerance: ClassVar[float] = 0.0
    pauses_trading: ClassVar[bool] = False
    atr_period: int = 14
    max_atr_pct: float = 5.0

    def __post_init__(self) -> None:
        if not 1 <= self.atr_period < CONTEXT_CANDLES:
            raise ValueError(
                f"volatility_ceiling needs atr_period between 1 and {CONTEXT_CANDLES - 1}"
            )
        if not self.max_atr_pct > 0:
            raise ValueError("volatility_ceiling needs max_atr_pct > 0")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        candles = snapshot.candles
        threshold = self.max_atr_pct
        atr = math.nan
        if len(candles):
            atr = float(
                wilder_atr(candles.high, candles.low, candles.close, self.atr_period)[0][-1]
            )
        close = float(candles.close[-1]) if len(candles) else math.nan
        if math.isnan(atr) or not close > 0:
            return Verdict(
                self.kind,
                True,
                f"{len(candles)} candle(s), ATR({self.atr_period}) needs {self.atr_period + 1}",
                None,
                threshold,
            )
        observed = 100 * atr / close
        return Verdict(
            guard=self.kind,
            passed=observed <= threshold,
            reason=(
                f"ATR({self.atr_period}) {atr:.2f} is {observed:.2f}% of the close {close:.2f}, "
                f"ceiling {threshold:.2f}%"
            ),
            observed=observed,
            threshold=threshold,
        )
