"""Daily loss limit on the book's realised P&L, in quote currency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from signals.domain.guards.base import (
    STOP_MINUTES,
    Look,
    Snapshot,
    Verdict,
    look_back,
    released_note,
)
from signals.domain.strategies import Proposal


@dataclass(frozen=True, slots=True)
class DailyLossLimit:
    """Blocks for the rest of the UTC day once the book's trades closed that day (by when
    their exit became known, up to now) have lost ``max_loss`` (quote currency) or more
    in total. The observed value is the day's loss, negative on a winning day. At the
    limit it blocks.

    Release: a new UTC day starts from zero; sooner, a block lasts ``stop_minutes`` from
    the exit of the day's latest closed trade, then the guard releases and counts only
    the day's trades that close after the release. The default (a day) never comes
    before midnight."""

    kind: ClassVar[str] = "daily_loss_limit"
    unit: ClassVar[str] = "quote"
    blocks_when: ClassVar[str] = ">="
    release: ClassVar[str] = (
        "at the next UTC midnight, or after stop_minutes from the day's latest closed trade "
        "if sooner; only trades closed after the release count"
    )
    live_only: ClassVar[bool] = False
    tunable: ClassVar[str | None] = "max_loss"
    tolerance: ClassVar[float] = 0.0
    pauses_trading: ClassVar[bool] = True
    max_loss: float = 100.0
    stop_minutes: int = STOP_MINUTES

    def __post_init__(self) -> None:
        if not self.max_loss > 0:
            raise ValueError("daily_loss_limit needs max_loss > 0 (quote currency)")
        if self.stop_minutes <= 0:
            raise ValueError("daily_loss_limit needs stop_minutes > 0")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        today = snapshot.now.astimezone(UTC).date()
        day = [
            trade
            for trade in snapshot.book_closed_known()
            if trade.known_at.astimezone(UTC).date() == today
        ]

        def observe(since: datetime | None) -> Look:
            counted = day if since is None else [t for t in day if t.known_at > since]
            pnl = sum((trade.pnl for trade in counted), 0.0)
            changed_at = max((t.known_at for t in counted), default=None)
            return Look(0.0 - pnl, changed_at, (pnl, len(counted)))

        look, since = look_back(
            observe,
            lambda loss: loss >= self.max_loss,
            stop_minutes=self.stop_minutes,
            now=snapshot.now,
            since=snapshot.released_at,
        )
        observed = look.value
        assert observed is not None
        pnl, count = look.facts
        return Verdict(
            guard=self.kind,
            passed=observed < self.max_loss,
            reason=(
                f"realised P&L today (UTC){released_note(since)} {pnl:+.2f} quote over "
                f"{count} trade(s), loss limit {self.max_loss:.2f} quote"
            ),
            observed=observed,
            threshold=self.max_loss,
            released_at=since if since != snapshot.released_at else None,
        )
