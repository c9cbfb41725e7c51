"""Cooldown on a symbol after a stop-out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from signals.domain.guards.base import STOP_OUT_REASONS, Snapshot, Verdict
from signals.domain.strategies import Proposal


@dataclass(frozen=True, slots=True)
class CooldownAfterStop:
    """Blocks new signals on a symbol for ``minutes`` after a trade on it was stopped out,
    counted from when the stop-out became known (its exit candle's close). Once exactly
    ``minutes`` have elapsed it passes."""

    kind: ClassVar[str] = "cooldown_after_stop"
    unit: ClassVar[str] = "minutes"
    blocks_when: ClassVar[str] = "<"
    release: ClassVar[str] = "by itself: once minutes have passed since the stop-out"
    live_only: ClassVar[bool] = False
    tunable: ClassVar[str | None] = "minutes"
    tolerance: ClassVar[float] = 0.0
    pauses_trading: ClassVar[bool] = False
    minutes: int = 240

    def __post_init__(self) -> None:
        if self.minutes < 0:
            raise ValueError("cooldown_after_stop needs minutes >= 0")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        # Newest last: the first stop-out from the end is the latest one.
        last_stop_out = next(
            (
                trade.known_at
                for trade in reversed(snapshot.recent_closed)
                if trade.exit_reason in STOP_OUT_REASONS
                and trade.symbol == snapshot.symbol
                and trade.known_at <= snapshot.now
            ),
            None,
        )
        threshold = float(self.minutes)
        if last_stop_out is None:
            return Verdict(self.kind, True, "no stop-out on this symbol", None, threshold)
        elapsed = (snapshot.now - last_stop_out).total_seconds() / 60
        return Verdict(
            guard=self.kind,
            passed=elapsed >= threshold,
            reason=f"last stop-out {elapsed:.0f} min ago, cooldown {self.minutes} min",
            observed=elapsed,
            threshold=threshold,
        )
