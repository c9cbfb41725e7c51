"""What every guard shares: the snapshot it reads, the verdict it returns, its protocol.

Boundaries follow one rule, so a trader can predict them: a *limit* on something the
book has accumulated (positions, stop-outs, drawdown, the day's loss) is reached at its
threshold and blocks there; a *floor or ceiling* on a measure of the market or of the
proposal (volatility, liquidity, data age, profit, reward-to-risk) is met at its
threshold and passes there; a *cooldown* has ended once its length has elapsed. Each
guard says which in ``blocks_when``, so thresholds can be replayed from the observed
values alone.

A guard whose observation is a look-back over the book's closed trades (max_drawdown,
low_profit_markets, daily_loss_limit, stoploss_guard) can lock a one-market book: once it
blocks, no trade closes and its observation never changes. Such a guard has a release
rule (``look_back``): a lock lasts ``stop_minutes`` from the moment its observation last
changed; at its end the guard releases and its look-back restarts there. Every guard says
how it lets go in ``release``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from markets.bars import CandleArrays
from signals.domain.strategies import Proposal

STOP_OUT_REASONS = frozenset({"stop", "gap"})

# What the engine keeps for a snapshot by default (``EngineConfig``): a parameter that
# would need more can never be observed, so it is refused when the guard is built.
RECENT_CLOSED_KEPT = 200
BOOK_CLOSED_KEPT = 200
CONTEXT_CANDLES = 200

# A day: the default lock of a look-back guard, after which it lets signals through again.
STOP_MINUTES = 1440

BLOCKS: Mapping[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<": operator.lt,
}


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
    moment: the wall clock in a live run, ``None`` in a replay (a replayed candle is known
    at its close: there is no delivery delay to observe).

    ``released_at`` is per guard: for a guard with a release rule, its latest release
    (its look-back counts only what became known after it; ``None``: never released),
    and ``equity_peak`` is then the peak of the realised equity since that release.
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
    released_at: datetime | None = None

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
    """A guard's decision on one signal. ``released_at`` is set when this check found the
    guard's lock run out: the moment it released, where its look-back now starts."""

    guard: str
    passed: bool
    reason: str
    observed: float | None
    threshold: float | None
    released_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Look:
    """A look-back guard's observation over what became known after some start: the
    ``value`` it compares with its threshold (``None``: nothing to judge), when that
    value last changed (``changed_at``, the latest trade it counts; ``None`` when it
    counts none) and the ``facts`` its reason quotes."""

    value: float | None
    changed_at: datetime | None
    facts: tuple[Any, ...] = ()


def look_back(
    observe: Callable[[datetime | None], Look],
    blocks: Callable[[float], bool],
    *,
    stop_minutes: int,
    now: datetime,
    since: datetime | None,
) -> tuple[Look, datetime | None]:
    """The observation at ``now`` of a guard with a release rule, and where its look-back
    starts (``since``, its latest release, or a later one found here).

    ``observe(start)`` looks at what became known after ``start`` (everything for
    ``None``). A blocking observation holds a lock for ``stop_minutes`` from when it last
    changed; once ``now`` reaches the lock's end, the guard releases there and looks
    again from the release, until it passes or a lock still runs. Each release leaves
    out at least the trade that set the lock, so this ends.
    """
    stop = timedelta(minutes=stop_minutes)
    while True:
        look = observe(since)
        if look.value is None or not blocks(look.value) or look.changed_at is None:
            return look, since
        end = look.changed_at + stop
        if now < end:
            return look, since
        since = end


def equity_peak_since(trades: Iterable[ClosedTrade], equity: float, since: datetime) -> float:
    """The peak of the realised equity from ``since`` on, given the book's latest closed
    trades (oldest first, all known by now) and its realised equity now: the equity at
    ``since`` is today's minus what the trades known after it made."""
    after = [trade.pnl for trade in trades if trade.known_at > since]
    level = equity - sum(after, 0.0)
    peak = level
    for pnl in after:
        level += pnl
        peak = max(peak, level)
    return peak


def released_note(since: datetime | None) -> str:
    """How a look-back guard's reason says where its look-back starts after a release."""
    if since is None:
        return ""
    return f" since its release at {since:%Y-%m-%d %H:%M} UTC"


class Guard(Protocol):
    """A pure check of a proposal against a snapshot.

    ``kind`` is its registry name, ``unit`` how its observed value and threshold read to
    a trader ("positions", "minutes", "stop-outs", "quote", "%", "ratio", "timeframes"),
    ``blocks_when`` the comparison of observed with threshold that blocks (">=", ">" or
    "<"); with nothing to observe it passes and observes ``None``. ``release`` says in a
    trader's words what lets a block go (so no guard locks a one-market book for good),
    ``live_only`` that it can only block in a live run. ``tunable`` names the parameter
    its observed value is compared with (what the learning engine sweeps; ``None``: a
    fixed threshold), ``tolerance`` the relative slack that comparison forgives when
    replayed, and ``pauses_trading`` that a block means the book stopped trading (the
    pause alert watches it). Everything about a kind is on its class: learning, alerts,
    the admin and the docs read it from ``GUARDS``.
    """

    kind: ClassVar[str]
    unit: ClassVar[str]
    blocks_when: ClassVar[str]
    release: ClassVar[str]
    live_only: ClassVar[bool]
    tunable: ClassVar[str | None]
    tolerance: ClassVar[float]
    pauses_trading: ClassVar[bool]

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict: ...
