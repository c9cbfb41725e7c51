"""Cooldown on a symbol after any close."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from signals.domain.guards.base import Snapshot, Verdict
from signals.domain.strategies import Proposal


@dataclass(frozen=True, slots=True)
class CooldownAfterClose:
    """Blocks new signals on a symbol for ``minutes`` after any trade on it closed (stop,
    target or timeout), counted from when the exit became known. Once exactly
    ``minutes`` have elapsed it passes."""

    kind: ClassVar[str] = "cooldown_after_close"
    unit: ClassVar[str] = "minutes"
    blocks_when: ClassVar[str] = "<"
    release: ClassVar[str] = "by itself: once minutes have passed since the close"
    live_only: ClassVar[bool] = False
    tunable: ClassVar[str | None] = "minutes"
    tolerance: ClassVar[float] = 0.0
    pauses_trading: ClassVar[bool] = False
    minutes: int = 60

    def __post_init__(self) -> None:
        if self.minutes < 0:
            raise ValueError("cooldown_after_close needs minutes >= 0")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        closes = [trade.known_at for trade in snapshot.symbol_closed()]
        threshold = float(self.minutes)
        if not closes:
            return Verdict(self.kind, True, "no closed trade on this symbol", None, threshold)
        elapsed = (snapshot.now - max(closes)).total_seconds() / 60
        return Verdict(
            guard=self.kind,
            passed=elapsed >= threshold,
            reason=f"last close {elapsed:.0f} min ago, cooldown {self.minutes} min",
            observed=elapsed,
            threshold=threshold,
        )
