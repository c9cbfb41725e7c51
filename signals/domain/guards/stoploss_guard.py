"""Pause after a run of stop-outs (Freqtrade's StoplossGuard, from a snapshot)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from signals.domain.guards.base import (
    BOOK_CLOSED_KEPT,
    RECENT_CLOSED_KEPT,
    STOP_MINUTES,
    STOP_OUT_REASONS,
    Look,
    Snapshot,
    Verdict,
    look_back,
    released_note,
)
from signals.domain.strategies import Proposal

SCOPES = ("symbol", "book")


@dataclass(frozen=True, slots=True)
class StoplossGuard:
    """Blocks once ``stop_outs`` trades were stopped out (stop or gap exits) within the
    last ``lookback_minutes``: on the signal's symbol (``scope`` "symbol") or anywhere
    in the book ("book"). A stop-out counts while it became known within
    (now - lookback, now]. At ``stop_outs`` it blocks.

    Release: the stop-outs leave the look-back as it moves on; sooner, a block lasts
    ``stop_minutes`` from the latest counted stop-out, then the guard releases and counts
    only stop-outs after the release. The default equals the default look-back, so it
    changes nothing there; a shorter one is Freqtrade's ``stop_duration``."""

    kind: ClassVar[str] = "stoploss_guard"
    unit: ClassVar[str] = "stop-outs"
    blocks_when: ClassVar[str] = ">="
    release: ClassVar[str] = (
        "as stop-outs leave lookback_minutes, or after stop_minutes from the latest counted "
        "stop-out if sooner; only stop-outs after the release count"
    )
    live_only: ClassVar[bool] = False
    tunable: ClassVar[str | None] = "stop_outs"
    tolerance: ClassVar[float] = 0.0
    pauses_trading: ClassVar[bool] = True
    stop_outs: int = 4
    lookback_minutes: int = 1440
    scope: str = "book"
    stop_minutes: int = STOP_MINUTES

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
        if self.stop_minutes <= 0:
            raise ValueError("stoploss_guard needs stop_minutes > 0")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        window_start = snapshot.now - timedelta(minutes=self.lookback_minutes)
        trades = (
            snapshot.symbol_closed() if self.scope == "symbol" else snapshot.book_closed_known()
        )
        stop_outs = [
            trade.known_at
            for trade in trades
            if trade.exit_reason in STOP_OUT_REASONS and trade.known_at > window_start
        ]

        def observe(since: datetime | None) -> Look:
            counted = stop_outs if since is None else [t for t in stop_outs if t > since]
            return Look(float(len(counted)), max(counted, default=None))

        look, since = look_back(
            observe,
            lambda observed: observed >= self.stop_outs,
            stop_minutes=self.stop_minutes,
            now=snapshot.now,
            since=snapshot.released_at,
        )
        observed = look.value
        assert observed is not None
        where = f"on {snapshot.symbol}" if self.scope == "symbol" else "in the book"
        return Verdict(
            guard=self.kind,
            passed=observed < self.stop_outs,
            reason=(
                f"{observed:.0f} stop-out(s) {where} in the last {self.lookback_minutes} min"
                f"{released_note(since)}, limit {self.stop_outs}"
            ),
            observed=observed,
            threshold=float(self.stop_outs),
            released_at=since if since != snapshot.released_at else None,
        )
