"""Duplicate position: the same symbol and side already open."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from signals.domain.guards.base import Snapshot, Verdict
from signals.domain.strategies import Proposal


@dataclass(frozen=True, slots=True)
class DuplicatePosition:
    """Blocks a signal when the book already holds a position (open or awaiting entry)
    on the same symbol and side. The threshold is 1 position; at it, it blocks."""

    kind: ClassVar[str] = "duplicate_position"
    unit: ClassVar[str] = "positions"
    blocks_when: ClassVar[str] = ">="
    release: ClassVar[str] = "by itself: a position ends at its stop, target or max hold"
    live_only: ClassVar[bool] = False
    tunable: ClassVar[str | None] = None
    tolerance: ClassVar[float] = 0.0
    pauses_trading: ClassVar[bool] = False

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        observed = snapshot.open_by_symbol_side.get((snapshot.symbol, proposal.side), 0)
        return Verdict(
            guard=self.kind,
            passed=observed < 1,
            reason=f"{observed} {proposal.side} position(s) open on {snapshot.symbol}, limit 1",
            observed=float(observed),
            threshold=1.0,
        )
