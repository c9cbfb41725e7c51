"""Max open positions, whole book."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from signals.domain.guards.base import Snapshot, Verdict
from signals.domain.strategies import Proposal


@dataclass(frozen=True, slots=True)
class MaxOpenPositions:
    """Blocks when the book already holds ``max_open`` positions (open or awaiting entry),
    every market counted. At the limit it blocks."""

    kind: ClassVar[str] = "max_open_positions"
    unit: ClassVar[str] = "positions"
    blocks_when: ClassVar[str] = ">="
    release: ClassVar[str] = "by itself: a position ends at its stop, target or max hold"
    live_only: ClassVar[bool] = False
    tunable: ClassVar[str | None] = "max_open"
    tolerance: ClassVar[float] = 0.0
    pauses_trading: ClassVar[bool] = False
    max_open: int = 1

    def __post_init__(self) -> None:
        if self.max_open < 0:
            raise ValueError("max_open_positions needs max_open >= 0")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        observed = snapshot.open_positions
        return Verdict(
            guard=self.kind,
            passed=observed < self.max_open,
            reason=f"{observed} open position(s), limit {self.max_open}",
            observed=float(observed),
            threshold=float(self.max_open),
        )
