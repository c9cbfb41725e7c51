"""Minimum reward-to-risk of the proposal itself."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from signals.domain.guards.base import Snapshot, Verdict
from signals.domain.strategies import Proposal

_RATIO_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class MinRewardRisk:
    """Blocks a proposal whose distance to its target is less than ``min_ratio`` times
    its distance to its stop: |target - entry| / |entry - stop|. At the minimum it
    passes."""

    kind: ClassVar[str] = "min_reward_risk"
    unit: ClassVar[str] = "ratio"
    blocks_when: ClassVar[str] = "<"
    release: ClassVar[str] = "none needed: it judges each proposal on its own"
    live_only: ClassVar[bool] = False
    tunable: ClassVar[str | None] = "min_ratio"
    # It passes a ratio a few ulps under its minimum (prices at exact ATR
    # multiples); replaying the comparison must forgive the same amount.
    tolerance: ClassVar[float] = 1e-9
    pauses_trading: ClassVar[bool] = False
    min_ratio: float = 1.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min_ratio) and self.min_ratio >= 0):
            raise ValueError("min_reward_risk needs min_ratio >= 0")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        reward = abs(proposal.take_profit - proposal.entry_price)
        risk = abs(proposal.entry_price - proposal.stop_loss)
        threshold = self.min_ratio
        if not risk > 0:
            # The engine rejects such proposals before the guards; nothing to divide by.
            return Verdict(self.kind, True, "stop at the entry price: no risk", None, threshold)
        observed = reward / risk
        return Verdict(
            guard=self.kind,
            # Prices placed at exact ATR multiples come back a few ulps off their ratio.
            passed=observed >= threshold * (1 - _RATIO_TOLERANCE),
            reason=(
                f"reward-to-risk {observed:.2f} (reward {reward:.2f}, risk {risk:.2f} "
                f"per unit), minimum {threshold:.2f}"
            ),
            observed=observed,
            threshold=threshold,
        )
