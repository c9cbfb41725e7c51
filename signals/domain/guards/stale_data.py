"""Stale data: the latest closed candle is too old."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from markets.timestamps import ms_from_utc
from signals.domain.guards.base import Snapshot, Verdict
from signals.domain.strategies import Proposal


@dataclass(frozen=True, slots=True)
class StaleData:
    """Blocks when the latest candle of the snapshot closed more than ``max_timeframes``
    timeframes before the driver's clock (the signal candle's close when no clock is
    given): the feed has stopped and the market may have moved. At the limit it
    passes."""

    kind: ClassVar[str] = "stale_data"
    unit: ClassVar[str] = "timeframes"
    blocks_when: ClassVar[str] = ">"
    release: ClassVar[str] = "with the feed: the next fresh candle"
    live_only: ClassVar[bool] = False
    max_timeframes: float = 2.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_timeframes) and self.max_timeframes >= 0):
            raise ValueError("stale_data needs max_timeframes >= 0")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        candles = snapshot.candles
        threshold = self.max_timeframes
        if not len(candles) or snapshot.timeframe_ms <= 0:
            return Verdict(self.kind, True, "no candle to date", None, threshold)
        clock = snapshot.clock if snapshot.clock is not None else snapshot.now
        closed_ms = int(candles.time[-1]) + snapshot.timeframe_ms
        age_ms = ms_from_utc(clock) - closed_ms
        observed = age_ms / snapshot.timeframe_ms
        return Verdict(
            guard=self.kind,
            passed=observed <= threshold,
            reason=(
                f"last candle closed {observed:.2f} timeframes ({age_ms / 60000:.0f} min) "
                f"ago, limit {threshold:g} timeframes"
            ),
            observed=observed,
            threshold=threshold,
        )
