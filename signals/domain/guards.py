"""Risk guards: pure checks of a proposed signal against a snapshot of the book.

Every guard of a book is evaluated on every signal (no short-circuit). Each returns a
``Verdict`` with the value it observed and the threshold it compared it with, so other
thresholds can be replayed later from the stored decisions alone. A guard never reads
the database: the engine hands it a ``Snapshot`` it computed from its own state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from markets.bars import CandleArrays
from signals.domain.params import checked_params
from signals.domain.strategies import Proposal

STOP_OUT_REASONS = frozenset({"stop", "gap"})


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A paper trade of the book that has closed; ``known_at`` is when its exit became
    known (the close of its exit candle), the earliest moment a guard may react to it.
    ``pnl`` and ``notional`` (the entry's quote value) are in quote currency."""

    symbol: str
    known_at: datetime
    exit_reason: str
    pnl: float = 0.0
    notional: float = 0.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the guards may look at, as of ``now`` (the signal candle's close).

    ``open_positions`` counts the whole book (open paper trades and approved signals
    awaiting entry, every market), ``open_by_symbol`` and ``open_by_symbol_side`` the
    same per symbol and per (symbol, side). ``recent_closed`` holds the latest closed
    trades on this signal's symbol, ``book_closed`` the latest of the whole book, newest
    last. ``equity`` is the book's realised P&L in quote currency and ``equity_peak`` its
    highest value so far. ``candles`` are this market's latest candles up to and
    including the signal candle (``timeframe_ms`` apart); ``clock`` is the driver's
    moment: the wall clock in a live run, the signal candle's close in a replay.
    """

    now: datetime
    symbol: str
    open_positions: int
    open_by_symbol: Mapping[str, int] = field(default_factory=dict)
    open_by_symbol_side: Mapping[tuple[str, str], int] = field(default_factory=dict)
    recent_closed: Sequence[ClosedTrade] = ()
    book_closed: Sequence[ClosedTrade] = ()
    equity: float = 0.0
    equity_peak: float = 0.0
    candles: CandleArrays = field(default_factory=lambda: CandleArrays.from_rows([]))
    timeframe_ms: int = 0
    clock: datetime | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    guard: str
    passed: bool
    reason: str
    observed: float | None
    threshold: float | None


class Guard(Protocol):
    kind: ClassVar[str]

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict: ...


@dataclass(frozen=True, slots=True)
class MaxOpenPositions:
    """Blocks when the book already holds ``max_open`` positions (open or awaiting entry)."""

    kind: ClassVar[str] = "max_open_positions"
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


@dataclass(frozen=True, slots=True)
class CooldownAfterStop:
    """Blocks new signals on a symbol for ``minutes`` after a trade on it was stopped out,
    counted from when the stop-out became known (its exit candle's close)."""

    kind: ClassVar[str] = "cooldown_after_stop"
    minutes: int = 240

    def __post_init__(self) -> None:
        if self.minutes < 0:
            raise ValueError("cooldown_after_stop needs minutes >= 0")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        stop_outs = [
            trade.known_at
            for trade in snapshot.recent_closed
            if trade.symbol == snapshot.symbol
            and trade.exit_reason in STOP_OUT_REASONS
            and trade.known_at <= snapshot.now
        ]
        threshold = float(self.minutes)
        if not stop_outs:
            return Verdict(self.kind, True, "no stop-out on this symbol", None, threshold)
        elapsed = (snapshot.now - max(stop_outs)).total_seconds() / 60
        return Verdict(
            guard=self.kind,
            passed=elapsed >= threshold,
            reason=f"last stop-out {elapsed:.0f} min ago, cooldown {self.minutes} min",
            observed=elapsed,
            threshold=threshold,
        )


GUARDS: Mapping[str, type[MaxOpenPositions] | type[CooldownAfterStop]] = {
    MaxOpenPositions.kind: MaxOpenPositions,
    CooldownAfterStop.kind: CooldownAfterStop,
}


def build_guard(kind: str, params: Mapping[str, Any]) -> Guard:
    """The guard ``kind`` with ``params``; ``ValueError`` naming what is wrong otherwise."""
    try:
        cls = GUARDS[kind]
    except KeyError:
        raise ValueError(
            f"unknown guard kind {kind!r}; known: {', '.join(sorted(GUARDS))}"
        ) from None
    return cls(**checked_params(cls, params))


def validate_guard_config(kind: str, params: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` if ``kind`` and ``params`` do not make a guard."""
    build_guard(kind, params)


def evaluate_guards(
    guards: Sequence[Guard], proposal: Proposal, snapshot: Snapshot
) -> list[Verdict]:
    """Every guard's verdict, in order; none is skipped because another blocked."""
    return [guard.check(proposal, snapshot) for guard in guards]
