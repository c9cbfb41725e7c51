"""Pause after a run of stop-outs (Freqtrade's StoplossGuard, from a snapshot)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from signals.domain.guards.base import (
    BOOK_CLOSED_KEPT,
    RECENT_CLOSED_KEPT,
    STOP_OUT_REASONS,
    Snapshot,
    Verdict,
)
from signals.domain.strategies import Proposal

SCOPES = ("symbol", "book")


@dataclass(frozen=True, slots=True)
class StoplossGuard:
    """Blocks once ``stop_outs`` trades were stopped out (stop or gap exits) within the
    last ``lookback_minutes``: on the signal's symbol (``scope`` "symbol") or anywhere
    in the book ("book"). A stop-out counts while it became known within
    (now - lookback, now]. At ``stop_outs`` it blocks."""

    kind: ClassVar[str] = "stoploss_guard"
    unit: ClassVar[str] = "stop-outs"
    blocks_when: ClassVar[str] = ">="
    stop_outs: int = 4
    lookback_minutes: int = 1440
    scope: str = "book"

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"stoploss_guard needs scope 'symbol' or 'book', not {self.scope!r}")
        # The snapshot keeps the latest 200 trades of a symbol and 200 of the book: a
        # larger count could never be seen.
        kept = RECENT_CLOSED_KEPT if self.scope == "symbol" else BOOK_CLOSED_KEPT
        if not 1 <= self.stop_outs <= kept:
            raise ValueError(
                f"stoploss_guard needs stop_outs between 1 and {kept} for scope {self.scope!r}"
            )
        if self.lookback_minutes <= 0:
            raise ValueError("stoploss_guard needs lookback_minutes > 0")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        since = snapshot.now - timedelta(minutes=self.lookback_minutes)
        trades = (
            snapshot.symbol_closed() if self.scope == "symbol" else snapshot.book_closed_known()
        )
        observed = sum(
            1
            for trade in trades
            if trade.exit_reason in STOP_OUT_REASONS and trade.known_at > since
        )
        where = f"on {snapshot.symbol}" if self.scope == "symbol" else "in the book"
        return Verdict(
            guard=self.kind,
            passed=observed < self.stop_outs,
            reason=(
                f"{observed} stop-out(s) {where} in the last {self.lookback_minutes} min, "
                f"limit {self.stop_outs}"
            ),
            observed=float(observed),
            threshold=float(self.stop_outs),
        )
