"""Stale data: the latest closed candle is too old."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from markets.timestamps import ms_from_utc
from signals.domain.guards.base import Snapshot, Verdict
from signals.domain.strategies import Proposal

REPLAY_REASON = (
    "replay: a replayed candle is known at its close, so data age is observed in live runs only"
)


@dataclass(frozen=True, slots=True)
class StaleData:
    """Blocks when the latest candle of the snapshot closed more than ``max_timeframes``
    timeframes before the driver's clock: the feed has stopped and the market may have
    moved. At the limit it passes.

    Live only: a replay has no delivery to observe (a replayed candle is known at its
    close, so its age would always be 0); there the guard passes and observes nothing,
    and says so in its reason."""

    kind: ClassVar[str] = "stale_data"
    unit: ClassVar[str] = "timeframes"
    blocks_when: ClassVar[str] = ">"
    release: ClassVar[str] = (
        "with the feed: the next fresh candle (live only: in a replay a candle is known at "
        "its close, so it never blocks there)"
    )
    live_only: ClassVar[bool] = True
    tunable: ClassVar[str | None] = "max_timeframes"
    tolerance: ClassVar[float] = 0.0
    pauses_trading: ClassVar[bool] = False
    max_timeframes: float = 2.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_timeframes) and self.max_timeframes >= 0):
            raise ValueError("stale_data needs max_timeframes >= 0")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        candles = snapshot.candles
        threshold = self.max_timeframes
        if snapshot.clock is None:
            return Verdict(self.kind, True, REPLAY_REASON, None, threshold)
        if not len(candles) or snapshot.timeframe_ms <= 0:
            return Verdict(self.kind, True, "no candle to date", None, threshold)
        clock = snapshot.clock
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
