"""Max drawdown of the book's realised equity, in quote currency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from signals.domain.guards.base import Snapshot, Verdict
from signals.domain.strategies import Proposal


@dataclass(frozen=True, slots=True)
class MaxDrawdown:
    """Blocks while the book's realised equity sits ``max_drawdown`` (quote currency) or
    more below its peak. Measured on the equity curve in money, not as Freqtrade's sum
    of per-trade ratios, which weighs a 1% loss on 10 the same as on 10,000. At the
    limit it blocks."""

    kind: ClassVar[str] = "max_drawdown"
    unit: ClassVar[str] = "quote"
    blocks_when: ClassVar[str] = ">="
    max_drawdown: float = 200.0

    def __post_init__(self) -> None:
        if not self.max_drawdown > 0:
            raise ValueError("max_drawdown needs max_drawdown > 0 (quote currency)")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        observed = snapshot.equity_peak - snapshot.equity
        return Verdict(
            guard=self.kind,
            passed=observed < self.max_drawdown,
            reason=(
                f"drawdown {observed:.2f} quote from the equity peak of "
                f"{snapshot.equity_peak:.2f} quote, limit {self.max_drawdown:.2f} quote"
            ),
            observed=observed,
            threshold=self.max_drawdown,
        )
