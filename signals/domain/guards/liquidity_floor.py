"""Liquidity floor: quote volume traded over the latest candles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from signals.domain.guards.base import CONTEXT_CANDLES, Snapshot, Verdict
from signals.domain.strategies import Proposal


@dataclass(frozen=True, slots=True)
class LiquidityFloor:
    """Blocks when the quote volume of the last ``window`` candles, up to and including
    the signal candle, is below ``min_quote_volume``; each candle's quote volume is
    taken as its volume times its close. With fewer candles it passes. At the floor it
    passes."""

    kind: ClassVar[str] = "liquidity_floor"
    unit: ClassVar[str] = "quote"
    blocks_when: ClassVar[str] = "<"
    release: ClassVar[str] = "with the market: it reads the latest candles, not the book's trades"
    live_only: ClassVar[bool] = False
    tunable: ClassVar[str | None] = "min_quote_volume"
    tolerance: ClassVar[float] = 0.0
    pauses_trading: ClassVar[bool] = False
    window: int = 24
    min_quote_volume: float = 1_000_000.0

    def __post_init__(self) -> None:
        if not 1 <= self.window <= CONTEXT_CANDLES:
            raise ValueError(f"liquidity_floor needs window between 1 and {CONTEXT_CANDLES}")
        if not self.min_quote_volume >= 0:
            raise ValueError("liquidity_floor needs min_quote_volume >= 0 (quote currency)")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        candles = snapshot.candles
        threshold = self.min_quote_volume
        if len(candles) < self.window:
            return Verdict(
                self.kind,
                True,
                f"{len(candles)} candle(s), the window needs {self.window}",
                None,
                threshold,
            )
        last = slice(len(candles) - self.window, None)
        observed = float(np.dot(candles.volume[last], candles.close[last]))
        return Verdict(
            guard=self.kind,
            passed=observed >= threshold,
            reason=(
                f"{observed:,.2f} quote traded over the last {self.window} candle(s), "
                f"floor {threshold:,.2f} quote"
            ),
            observed=observed,
            threshold=threshold,
        )
