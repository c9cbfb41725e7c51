"""What every guard shares: the snapshot it reads, the verdict it returns, its protocol.

Boundaries follow one rule, so a trader can predict them: a *limit* on something the
book has accumulated (positions, stop-outs, drawdown, the day's loss) is reached at its
threshold and blocks there; a *floor or ceiling* on a measure of the market or of the
proposal (volatility, liquidity, data age, profit, reward-to-risk) is met at its
threshold and passes there; a *cooldown* has ended once its length has elapsed. Each
guard says which in ``blocks_when``, so thresholds can be replayed from the observed
values alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol

from markets.bars import CandleArrays
from signals.domain.strategies import Proposal

STOP_OUT_REASONS = frozenset({"stop", "gap"})

# What the engine keeps for a snapshot by default (``EngineConfig``): a parameter that
# would need more can never be observed, so it is refused when the guard is built.
RECENT_CLOSED_KEPT = 200
BOOK_CLOSED_KEPT = 200
CONTEXT_CANDLES = 200


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

    def symbol_closed(self) -> Iterator[ClosedTrade]:
        """This symbol's closed trades already known at ``now``, oldest first."""
        for trade in self.recent_closed:
            if trade.symbol == self.symbol and trade.known_at <= self.now:
                yield trade

    def book_closed_known(self) -> Iterator[ClosedTrade]:
        """The book's closed trades already known at ``now``, oldest first."""
        for trade in self.book_closed:
            if trade.known_at <= self.now:
                yield trade


@dataclass(frozen=True, slots=True)
class Verdict:
    guard: str
    passed: bool
    reason: str
    observed: float | None
    threshold: float | None


class Guard(Protocol):
    """A pure check of a proposal against a snapshot.

    ``kind`` is its registry name, ``unit`` how its observed value and threshold read to
    a trader ("positions", "minutes", "stop-outs", "quote", "%", "ratio", "timeframes"),
    ``blocks_when`` the comparison of observed with threshold that blocks (">=", ">" or
    "<"); with nothing to observe it passes and observes ``None``.
    """

    kind: ClassVar[str]
    unit: ClassVar[str]
    blocks_when: ClassVar[str]

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict: ...
