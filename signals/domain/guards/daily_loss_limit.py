"""Daily loss limit on the book's realised P&L, in quote currency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import ClassVar

from signals.domain.guards.base import Snapshot, Verdict
from signals.domain.strategies import Proposal


@dataclass(frozen=True, slots=True)
class DailyLossLimit:
    """Blocks for the rest of the UTC day once the book's trades closed that day (by when
    their exit became known, up to now) have lost ``max_loss`` (quote currency) or more
    in total. The observed value is the day's loss, negative on a winning day. At the
    limit it blocks."""

    kind: ClassVar[str] = "daily_loss_limit"
    unit: ClassVar[str] = "quote"
    blocks_when: ClassVar[str] = ">="
    max_loss: float = 100.0

    def __post_init__(self) -> None:
        if not self.max_loss > 0:
            raise ValueError("daily_loss_limit needs max_loss > 0 (quote currency)")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        today = snapshot.now.astimezone(UTC).date()
        pnls = [
            trade.pnl
            for trade in snapshot.book_closed_known()
            if trade.known_at.astimezone(UTC).date() == today
        ]
        pnl = sum(pnls, 0.0)
        observed = 0.0 - pnl
        return Verdict(
            guard=self.kind,
            passed=observed < self.max_loss,
            reason=(
                f"realised P&L today (UTC) {pnl:+.2f} quote over {len(pnls)} trade(s), "
                f"loss limit {self.max_loss:.2f} quote"
            ),
            observed=observed,
            threshold=self.max_loss,
        )
