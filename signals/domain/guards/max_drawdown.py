"""Max drawdown of the book's realised equity, in quote currency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from signals.domain.guards.base import (
    STOP_MINUTES,
    Look,
    Snapshot,
    Verdict,
    equity_peak_since,
    look_back,
    released_note,
)
from signals.domain.strategies import Proposal


@dataclass(frozen=True, slots=True)
class MaxDrawdown:
    """Blocks while the book's realised equity sits ``max_drawdown`` (quote currency) or
    more below its peak. Measured on the equity curve in money, not as Freqtrade's sum
    of per-trade ratios, which weighs a 1% loss on 10 the same as on 10,000. At the
    limit it blocks.

    Release: a block lasts ``stop_minutes`` from the exit of the book's latest closed
    trade; then the guard releases and the peak restarts at the equity of that moment,
    so a book that stopped trading can trade again."""

    kind: ClassVar[str] = "max_drawdown"
    unit: ClassVar[str] = "quote"
    blocks_when: ClassVar[str] = ">="
    release: ClassVar[str] = (
        "after stop_minutes from the latest closed trade; the peak restarts at the equity "
        "of the release"
    )
    live_only: ClassVar[bool] = False
    tunable: ClassVar[str | None] = "max_drawdown"
    tolerance: ClassVar[float] = 0.0
    pauses_trading: ClassVar[bool] = True
    max_drawdown: float = 200.0
    stop_minutes: int = STOP_MINUTES

    def __post_init__(self) -> None:
        if not self.max_drawdown > 0:
            raise ValueError("max_drawdown needs max_drawdown > 0 (quote currency)")
        if self.stop_minutes <= 0:
            raise ValueError("max_drawdown needs stop_minutes > 0")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        def observe(since: datetime | None) -> Look:
            if since == snapshot.released_at:
                peak = snapshot.equity_peak
            else:
                assert since is not None  # a release found here, after the snapshot's
                peak = equity_peak_since(snapshot.book_closed_known(), snapshot.equity, since)
            drawdown = peak - snapshot.equity
            if drawdown < self.max_drawdown:
                return Look(drawdown, None, (peak,))
            return Look(drawdown, _latest_exit(snapshot, since), (peak,))

        look, since = look_back(
            observe,
            lambda drawdown: drawdown >= self.max_drawdown,
            stop_minutes=self.stop_minutes,
            now=snapshot.now,
            since=snapshot.released_at,
        )
        observed = look.value
        assert observed is not None
        (peak,) = look.facts
        return Verdict(
            guard=self.kind,
            passed=observed < self.max_drawdown,
            reason=(
                f"drawdown {observed:.2f} quote from the equity peak of "
                f"{peak:.2f} quote{released_note(since)}, limit {self.max_drawdown:.2f} quote"
            ),
            observed=observed,
            threshold=self.max_drawdown,
            released_at=since if since != snapshot.released_at else None,
        )


def _latest_exit(snapshot: Snapshot, since: datetime | None) -> datetime | None:
    """When the book's realised equity last changed: the latest exit known by now (and
    after ``since``), read from the newest end."""
    for trade in reversed(snapshot.book_closed):
        if trade.known_at <= snapshot.now:
            return trade.known_at if since is None or trade.known_at > since else None
    return None
