"""The pipeline's one pure core: strategies, guards and the fill model over closed candles.

``run`` takes a book's frozen configuration, the state it stopped in, and the candles
that closed since, and returns what happened: every new signal with each guard's
verdict, every state transition with the simulated time it happened, the final state
of every paper and shadow trade it touched, the equity points, and the state to carry
on from. No Django, no database, no clock: the replay driver hands it years of candles
at once, the live driver the few that closed since its last run, and both get the same
answer for the same candles.

How it stays fast: strategies scan whole arrays once; the outcome of a trade depends only
on candles, so every new trade is evaluated at once by the vectorised fill kernel before
any guard runs; the guards then decide the signals in time order, seeing as open
positions the approved trades whose exit is not yet known at that moment. Only trades
carried over from an earlier run advance candle by candle, from where they stopped.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from markets.bars import CandleArrays, timeframe_delta
from markets.timestamps import ms_from_utc, utc_from_ms
from signals.domain.fills import (
    LONG,
    FillCosts,
    OpenTrade,
    TradePlan,
    TradeResult,
    simulate_batch,
    trade_enter,
    trade_step,
)
from signals.domain.guards import ClosedTrade, Guard, Snapshot, Verdict
from signals.domain.guards.base import (
    BOOK_CLOSED_KEPT,
    CONTEXT_CANDLES,
    RECENT_CLOSED_KEPT,
    equity_peak_since,
)
from signals.domain.strategies import Proposal, Strategy

NEVER = math.inf

# States of a signal, as the state machine names them.
GENERATED = "generated"
APPROVED = "approved"
BLOCKED = "blocked"
REJECTED = "rejected"
EXECUTED = "executed"
EXPIRED = "expired"
FAILED = "failed"
CLOSED = "closed"

# Status of a paper or shadow trade.
PENDING = "pending"
OPEN = "open"
TRADE_CLOSED = "closed"
TRADE_EXPIRED = "expired"

# How a signal that the paper balance cannot pay is failed: the reason starts so.
INSUFFICIENT_BALANCE = "insufficient paper balance"

SignalKey = tuple[str, int, str]
"""A signal's identity within a book: strategy name, candle open time (ms), side."""


@dataclass(frozen=True, slots=True)
class Market:
    exchange: str
    symbol: str
    timeframe: str

    @property
    def key(self) -> str:
        return f"{self.exchange} {self.symbol} {self.timeframe}"

    @property
    def step_ms(self) -> int:
        return int(timeframe_delta(self.timeframe).total_seconds() * 1000)

    @classmethod
    def from_key(cls, key: str) -> Market:
        exchange, symbol, timeframe = key.split(" ")
        return cls(exchange, symbol, timeframe)


@dataclass(frozen=True, slots=True)
class StrategySpec:
    """One strategy of a book on one market; ``name`` is unique within the book."""

    name: str
    market: Market
    strategy: Strategy


@dataclass(frozen=True, slots=True)
class GuardSpec:
    """One guard of a book; ``name`` is unique within the book (a kind may appear twice)."""

    name: str
    guard: Guard


@dataclass(frozen=True, slots=True)
class QuoteSizing:
    """How a book sizes the trades of markets quoted in one currency, fixed by each
    signal on its candle's close:

    - ``risk_fraction`` set: risk sizing, the quantity that loses this fraction of the
      quote's starting balance if the trade exits at its stop from the signal's price,
      ``notional = risk_fraction * balance * entry / |entry - stop|``;
    - else ``convert`` set (a market key): ``notional`` is in the reference currency and
      is converted at the close of the conversion market's last candle closed by the
      signal's close (no lookahead): divided by it for a ``QUOTE/REF`` market, multiplied
      for ``REF/QUOTE`` (``invert``); a signal before the first such candle is rejected;
    - else ``notional`` is in the quote currency itself.
    """

    notional: float
    convert: str | None = None
    invert: bool = False
    risk_fraction: float | None = None


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """A book's frozen configuration. ``max_signal_age_ms``: a signal whose candle closed
    longer than that before the run's ``now`` is rejected as stale (live only).
    ``market_costs``: fill costs of markets whose fee differs from ``costs``.
    ``starting_balance``: the paper balance in each quote currency (``balance_by_quote``
    overrides it per currency); an approved signal whose notional exceeds the free
    balance (starting balance plus realised P&L minus what open positions hold) fails;
    ``None`` means no limit. ``sizing``: per quote currency, how trades are sized (see
    ``QuoteSizing``); a quote without an entry trades the costs' fixed ``notional``."""

    strategies: tuple[StrategySpec, ...]
    guards: tuple[GuardSpec, ...]
    costs: FillCosts
    max_signal_age_ms: int | None = None
    recent_closed_kept: int = RECENT_CLOSED_KEPT
    book_closed_kept: int = BOOK_CLOSED_KEPT
    context_candles: int = CONTEXT_CANDLES
    starting_balance: float | None = None
    market_costs: Mapping[str, FillCosts] = field(default_factory=dict)
    sizing: Mapping[str, QuoteSizing] = field(default_factory=dict)
    balance_by_quote: Mapping[str, float] = field(default_factory=dict)

    def markets(self) -> dict[str, Market]:
        return {spec.market.key: spec.market for spec in self.strategies}

    def conversion_markets(self) -> dict[str, Market]:
        """Markets whose candles only convert the reference notional into a quote."""
        return {
            s.convert: Market.from_key(s.convert)
            for s in self.sizing.values()
            if s.convert is not None and s.risk_fraction is None
        }

    def balance_of(self, quote: str) -> float | None:
        """The starting paper balance in ``quote`` (``None``: no limit)."""
        return self.balance_by_quote.get(quote, self.starting_balance)

    def costs_of(self, market_key: str) -> FillCosts:
        """The fill costs on a market (its fee rate may differ from the book's default)."""
        return self.market_costs.get(market_key, self.costs)


@dataclass(frozen=True, slots=True)
class Flight:
    """A decided signal whose trade has not finished: awaiting entry (``trade is None``)
    or open. ``paper``: the signal was approved and executed on paper, so this is its
    paper trade (and its shadow); otherwise only its shadow trade: ``blocked`` tells a
    blocked signal (the measured group) from an approved one that could not be paid."""

    key: SignalKey
    market: str
    symbol: str
    paper: bool
    plan: TradePlan
    trade: OpenTrade | None = None
    blocked: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "key": list(self.key),
            "market": self.market,
            "symbol": self.symbol,
            "paper": self.paper,
            "blocked": self.blocked,
            "plan": [
                self.plan.side,
                self.plan.stop,
                self.plan.target,
                self.plan.max_hold,
                *([] if self.plan.notional is None else [self.plan.notional]),
            ],
            "trade": self.trade.to_json() if self.trade else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Flight:
        side, stop, target, max_hold, *notional = data["plan"]
        strategy, candle_time, key_side = data["key"]
        return cls(
            key=(strategy, int(candle_time), key_side),
            market=data["market"],
            symbol=data["symbol"],
            paper=data["paper"],
            plan=TradePlan(
                side=side,
                stop=stop,
                target=target,
                max_hold=max_hold,
                notional=notional[0] if notional else None,
            ),
            trade=OpenTrade.from_json(data["trade"]) if data["trade"] else None,
            blocked=data.get("blocked", not data["paper"]),
        )


@dataclass(frozen=True, slots=True)
class EngineState:
    """Where a book stopped: the last candle processed per market, each strategy's
    indicator state, the trades in flight, the latest closed trades per symbol (what the
    guards look back at), the realised equity (paper P&L, quote currency) and, per guard
    that has released a lock, when it did and the equity peak since (``guard_releases``,
    by guard name: what its look-back restarts from)."""

    last_time: Mapping[str, int] = field(default_factory=dict)
    indicators: Mapping[str, Any] = field(default_factory=dict)
    flights: tuple[Flight, ...] = ()
    recent_closed: Mapping[str, tuple[ClosedTrade, ...]] = field(default_factory=dict)
    book_closed: tuple[ClosedTrade, ...] = ()
    equity: float = 0.0
    equity_peak: float = 0.0
    realised_by_quote: Mapping[str, float] = field(default_factory=dict)
    guard_releases: Mapping[str, tuple[int, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "last_time": dict(self.last_time),
            "indicators": dict(self.indicators),
            "flights": [flight.to_json() for flight in self.flights],
            "recent_closed": {
                symbol: [
                    [ms_from_utc(t.known_at), t.exit_reason, t.pnl, t.notional] for t in trades
                ]
                for symbol, trades in self.recent_closed.items()
            },
            "book_closed": [
                [t.symbol, ms_from_utc(t.known_at), t.exit_reason, t.pnl, t.notional]
                for t in self.book_closed
            ],
            "equity": self.equity,
            "equity_peak": self.equity_peak,
            "realised_by_quote": dict(self.realised_by_quote),
            "guard_releases": {
                name: [since, peak] for name, (since, peak) in self.guard_releases.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> EngineState:
        if not data:
            return cls()
        return cls(
            last_time={market: int(t) for market, t in data["last_time"].items()},
            indicators=data["indicators"],
            flights=tuple(Flight.from_json(f) for f in data["flights"]),
            recent_closed={
                symbol: tuple(
                    ClosedTrade(symbol, utc_from_ms(int(t)), reason, pnl, notional)
                    for t, reason, pnl, notional in trades
                )
                for symbol, trades in data["recent_closed"].items()
            },
            book_closed=tuple(
                ClosedTrade(symbol, utc_from_ms(int(t)), reason, pnl, notional)
                for symbol, t, reason, pnl, notional in data.get("book_closed", ())
            ),
            equity=data["equity"],
            equity_peak=data.get("equity_peak", max(0.0, data["equity"])),
            realised_by_quote=data.get("realised_by_quote", {}),
            guard_releases={
                name: (int(since), float(peak))
                for name, (since, peak) in data.get("guard_releases", {}).items()
            },
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change of a signal at simulated time ``at`` (ms); ``source`` is "" at birth."""

    key: SignalKey
    name: str
    source: str
    target: str
    at: int
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """A new signal: its proposal, its state at the end of the run and every verdict."""

    key: SignalKey
    strategy: str
    market: Market
    candle_time: int
    proposal: Proposal
    state: str
    decided_at: int
    verdicts: tuple[tuple[str, Verdict], ...]


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """The state, at the end of the run, of a paper or shadow trade the run touched.

    ``kind`` is "paper" or "shadow"; ``blocked`` tells a shadow trade's group. ``result``
    is set once closed, ``trade`` while open; ``closed_at`` is when the exit became known.
    """

    key: SignalKey
    kind: str
    side: str
    blocked: bool
    status: str
    trade: OpenTrade | None = None
    result: TradeResult | None = None
    closed_at: int | None = None


@dataclass(frozen=True, slots=True)
class EngineResult:
    signals: list[SignalRecord]
    transitions: list[Transition]
    trades: list[TradeRecord]
    equity: list[tuple[int, float]]
    state: EngineState
    candles: int


@dataclass(slots=True)
class _Course:
    """How a trade went over this run's candles: entered at ``entered_at`` (or before,
    or not at all), finished with ``result`` or by expiry, known at ``known_at``."""

    trade: OpenTrade | None
    result: TradeResult | None
    expired: bool
    entered_at: int | None
    known_at: float

    @property
    def status(self) -> str:
        if self.expired:
            return TRADE_EXPIRED
        if self.result is not None:
            return TRADE_CLOSED
        return OPEN if self.trade is not None else PENDING


@dataclass(slots=True)
class _Candidate:
    spec: StrategySpec
    order: int
    index: int
    candle_time: int
    close_time: int
    proposal: Proposal
    invalid: str | None = None
    course: _Course | None = None
    notional: float | None = None


def run(
    config: EngineConfig,
    state: EngineState,
    candles: Mapping[str, CandleArrays],
    *,
    now: int | None = None,
    signals_from: int | None = None,
) -> EngineResult:
    """Run the candles of each market (by market key) through the book and return what
    happened. Candles at or before the state's last processed candle are not run again:
    they are the context guards look back at (the live driver passes the latest few).

    ``now`` (ms) is the driver's moment: it rejects stale signals and is the guards'
    clock; a replay passes ``None`` (each candle's close is then the moment, and the
    guards see no clock: a replayed candle has no delivery delay). Proposals
    on candles opening before ``signals_from`` (ms) are dropped: those candles only warm
    the indicators up.
    """
    markets = markets_of(config, state)
    given = {key: candles.get(key) or CandleArrays.from_rows([]) for key in markets}
    # Candles at or before where the state stopped are context only (guards look back).
    start = {key: _start(given[key], state.last_time.get(key)) for key in markets}
    fresh = {key: given[key].tail(start[key]) for key in markets}
    indicators = dict(state.indicators)
    # Each conversion market's closes by close time, computed once for every signal.
    rates = {key: _Rates(given[key], market) for key, market in config.conversion_markets().items()}
    candidates: list[_Candidate] = []
    for order, spec in enumerate(config.strategies):
        data = fresh[spec.market.key]
        scan = spec.strategy.scan(data, indicators.get(spec.name))
        indicators[spec.name] = scan.state
        step = spec.market.step_ms
        for index, proposal in zip(scan.index, scan.proposals, strict=True):
            candle_time = int(data.time[index])
            if signals_from is not None and candle_time < signals_from:
                continue
            candidate = _Candidate(spec, order, index, candle_time, candle_time + step, proposal)
            candidate.invalid = _invalid_reason(proposal, candidate.close_time, now, config)
            if candidate.invalid is None:
                candidate.notional, candidate.invalid = _size(
                    config, spec.market, proposal, candidate.close_time, rates
                )
            candidates.append(candidate)
    candidates.sort(key=lambda c: (c.close_time, c.order))
    _evaluate_courses(candidates, fresh, config)

    carried = [
        (
            flight,
            _advance(
                flight, fresh[flight.market], markets[flight.market], config.costs_of(flight.market)
            ),
        )
        for flight in state.flights
    ]
    book = _Book(config, state)
    for flight, course in carried:
        if flight.paper:
            notional = flight.plan.notional_in(config.costs_of(flight.market))
            book.hold(flight.key, flight.symbol, course, notional)

    signals: list[SignalRecord] = []
    transitions: list[Transition] = []
    trades: list[TradeRecord] = []
    flights: list[Flight] = []
    for candidate in candidates:
        book.release(candidate.close_time)
        market = candidate.spec.market.key
        through = start[market] + candidate.index + 1
        context = given[market].head(through).tail(max(0, through - config.context_candles))
        record, decided = _decide(candidate, book, config, context, now)
        signals.append(record)
        transitions.extend(decided)
        if candidate.course is None:
            continue  # rejected: never reached the guards, no trade
        course = candidate.course
        blocked = record.state == BLOCKED
        symbol = candidate.spec.market.symbol
        paper = not blocked
        plan = _plan(candidate.proposal, candidate.notional)
        notional = plan.notional_in(config.costs_of(market))
        if paper and not book.affords(symbol, notional):
            # Approved, but the quote currency's free paper balance cannot pay the entry.
            paper = False
            record = replace(record, state=FAILED)
            signals[-1] = record
            transitions.append(
                Transition(
                    record.key,
                    "fail",
                    APPROVED,
                    FAILED,
                    record.decided_at,
                    {"reason": book.shortfall(symbol, notional)},
                )
            )
        if paper:
            book.hold(record.key, symbol, course, notional)
        flight = Flight(
            key=record.key,
            market=candidate.spec.market.key,
            symbol=symbol,
            paper=paper,
            plan=plan,
            trade=None,
            blocked=blocked,
        )
        transitions.extend(_course_transitions(flight, course, pending_before=True))
        trades.extend(_trade_records(flight, course))
        if course.status in (PENDING, OPEN):
            flights.append(_carry(flight, course))
    for flight, course in carried:
        transitions.extend(_course_transitions(flight, course, pending_before=flight.trade is None))
        trades.extend(_trade_records(flight, course))
        if course.status in (PENDING, OPEN):
            flights.append(_carry(flight, course))
    book.release(NEVER - 1)
    transitions.sort(key=lambda t: t.at)

    last_time = dict(state.last_time)
    for key, data in fresh.items():
        if len(data):
            last_time[key] = int(data.time[-1])
    return EngineResult(
        signals=signals,
        transitions=transitions,
        trades=trades,
        equity=book.equity_points,
        state=EngineState(
            last_time=last_time,
            indicators=indicators,
            flights=tuple(flights),
            recent_closed={s: tuple(t) for s, t in book.recent.items()},
            book_closed=tuple(book.book_closed),
            equity=book.equity,
            equity_peak=book.equity_peak,
            realised_by_quote=dict(book.realised),
            guard_releases=dict(book.guard_releases),
        ),
        candles=sum(len(data) for data in fresh.values()),
    )


class _Book:
    """The book as the guards see it while the run walks forward in time."""

    def __init__(self, config: EngineConfig, state: EngineState) -> None:
        self.kept = config.recent_closed_kept
        self.book_kept = config.book_closed_kept
        # Ordered by when the exit became known, then by the signal: the same order
        # however the candles were split into runs.
        self.heap: list[tuple[float, int, str, str, str, TradeResult | None, float]] = []
        self.by_symbol: Counter[str] = Counter()
        self.by_symbol_side: Counter[tuple[str, str]] = Counter()
        self.recent: dict[str, list[ClosedTrade]] = {
            symbol: list(trades) for symbol, trades in state.recent_closed.items()
        }
        self.book_closed: list[ClosedTrade] = list(state.book_closed)
        self.equity = state.equity
        self.equity_peak = state.equity_peak
        self.equity_points: list[tuple[int, float]] = []
        self.guard_releases: dict[str, tuple[int, float]] = dict(state.guard_releases)
        self.config = config
        self.realised: defaultdict[str, float] = defaultdict(float, state.realised_by_quote)
        self.reserved: defaultdict[str, float] = defaultdict(float)

    def affords(self, symbol: str, notional: float) -> bool:
        """Whether the free paper balance of ``symbol``'s quote currency pays an entry."""
        return self._free(quote_of(symbol)) >= notional

    def shortfall(self, symbol: str, notional: float) -> str:
        quote = quote_of(symbol)
        return (
            f"{INSUFFICIENT_BALANCE}: {_amount(self._free(quote))} {quote} free, "
            f"{_amount(notional)} {quote} needed"
        )

    def _free(self, quote: str) -> float:
        balance = self.config.balance_of(quote)
        if balance is None:
            return float("inf")
        return balance + self.realised[quote] - self.reserved[quote]

    def hold(self, key: SignalKey, symbol: str, course: _Course, notional: float) -> None:
        """Count an approved trade as an open position until its exit is known."""
        strategy, candle_time, side = key
        heapq.heappush(
            self.heap,
            (course.known_at, candle_time, strategy, side, symbol, course.result, notional),
        )
        self.by_symbol[symbol] += 1
        self.by_symbol_side[(symbol, side)] += 1
        self.reserved[quote_of(symbol)] += notional

    def release(self, until: float) -> None:
        """Let go of every position whose exit became known at or before ``until``."""
        while self.heap and self.heap[0][0] <= until:
            known_at, _, _, side, symbol, result, notional = heapq.heappop(self.heap)
            self.by_symbol[symbol] -= 1
            self.by_symbol_side[(symbol, side)] -= 1
            self.reserved[quote_of(symbol)] -= notional
            if result is None:
                continue  # expired: it never held anything
            closed = ClosedTrade(
                symbol,
                utc_from_ms(int(known_at)),
                result.exit_reason,
                result.pnl,
                result.quantity * result.entry_price,
            )
            trades = self.recent.setdefault(symbol, [])
            trades.append(closed)
            del trades[: -self.kept]
            self.book_closed.append(closed)
            del self.book_closed[: -self.book_kept]
            self.equity += result.pnl
            self.realised[quote_of(symbol)] += result.pnl
            self.equity_peak = max(self.equity_peak, self.equity)
            for name, (since, peak) in self.guard_releases.items():
                if self.equity > peak:
                    self.guard_releases[name] = (since, self.equity)
            self.equity_points.append((int(known_at), self.equity))

    def snapshot(
        self, market: Market, now: int, candles: CandleArrays, clock: int | None
    ) -> Snapshot:
        return Snapshot(
            now=utc_from_ms(now),
            symbol=market.symbol,
            open_positions=len(self.heap),
            open_by_symbol={s: n for s, n in self.by_symbol.items() if n},
            open_by_symbol_side={k: n for k, n in self.by_symbol_side.items() if n},
            # Read-only views of the book's lists: a guard runs before the book moves on.
            recent_closed=self.recent.get(market.symbol, ()),
            book_closed=self.book_closed,
            equity=self.equity,
            equity_peak=self.equity_peak,
            candles=candles,
            timeframe_ms=market.step_ms,
            clock=utc_from_ms(clock) if clock is not None else None,
        )

    def guard_view(self, name: str, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` as guard ``name`` sees it: from its latest release on, if any."""
        released = self.guard_releases.get(name)
        if released is None:
            return snapshot
        since, peak = released
        return replace(snapshot, released_at=utc_from_ms(since), equity_peak=peak)

    def guard_released(self, name: str, at: datetime) -> None:
        """Guard ``name`` let go of a lock at ``at``: its look-back and equity peak restart
        there (the trades known since are in the book's latest closed trades)."""
        peak = equity_peak_since(self.book_closed, self.equity, at)
        self.guard_releases[name] = (ms_from_utc(at), peak)


def _amount(value: float) -> str:
    """Cents where a unit is worth cents' care; eight significant digits below (0.142 BTC)."""
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.8g}"


def _start(data: CandleArrays, last_time: int | None) -> int:
    """Index of the first candle after ``last_time`` in ``data``."""
    if last_time is None:
        return 0
    return int(np.searchsorted(data.time, last_time, side="right"))


def _invalid_reason(
    proposal: Proposal, close_time: int, now: int | None, config: EngineConfig
) -> str | None:
    prices = (proposal.entry_price, proposal.stop_loss, proposal.take_profit)
    if not all(math.isfinite(p) and p > 0 for p in prices):
        return "non-positive price"
    entry, stop, target = prices
    if proposal.side == LONG and not stop < entry < target:
        return "long signal needs stop < entry < target"
    if proposal.side != LONG and not target < entry < stop:
        return "short signal needs target < entry < stop"
    if now is not None and config.max_signal_age_ms is not None:
        age = now - close_time
        if age > config.max_signal_age_ms:
            return (
                f"stale candle: closed {age // 60000} min ago, "
                f"limit {config.max_signal_age_ms // 60000} min"
            )
    return None


def _plan(proposal: Proposal, notional: float | None = None) -> TradePlan:
    return TradePlan(
        side=proposal.side,
        stop=proposal.stop_loss,
        target=proposal.take_profit,
        max_hold=proposal.max_hold,
        notional=notional,
    )


def _size(
    config: EngineConfig,
    market: Market,
    proposal: Proposal,
    close_time: int,
    rates: Mapping[str, _Rates],
) -> tuple[float | None, str | None]:
    """The quote notional a signal fixes on its candle's close (``None``: the costs' fixed
    notional), or why it cannot be sized."""
    quote = quote_of(market.symbol)
    sizing = config.sizing.get(quote)
    if sizing is None:
        return None, None
    if sizing.risk_fraction is not None:
        balance = config.balance_of(quote)
        if balance is None:
            return None, f"risk sizing needs a paper balance in {quote}"
        entry = proposal.entry_price
        return sizing.risk_fraction * balance * entry / abs(entry - proposal.stop_loss), None
    if sizing.convert is None:
        return sizing.notional, None
    rate = rates[sizing.convert].at(close_time)
    if rate is None:
        return None, f"no {sizing.convert} candle closed by the signal's close to size it"
    return (sizing.notional * rate if sizing.invert else sizing.notional / rate), None


class _Rates:
    """A conversion market's closes, looked up by time without lookahead."""

    def __init__(self, data: CandleArrays, market: Market) -> None:
        self.closed_at = data.time + market.step_ms
        self.close = data.close

    def at(self, moment: int) -> float | None:
        """The close of the last candle closed at or before ``moment`` (ms), if any."""
        index = int(np.searchsorted(self.closed_at, moment, side="right")) - 1
        return float(self.close[index]) if index >= 0 else None


def _evaluate_courses(
    candidates: Sequence[_Candidate], fresh: Mapping[str, CandleArrays], config: EngineConfig
) -> None:
    """Every valid candidate's trade over this run's candles, by the kernel, per market."""
    by_market: dict[str, list[_Candidate]] = {}
    for candidate in candidates:
        if candidate.invalid is None:
            by_market.setdefault(candidate.spec.market.key, []).append(candidate)
    for market_key, group in by_market.items():
        data = fresh[market_key]
        step = group[0].spec.market.step_ms
        costs = config.costs_of(market_key)
        plans = [_plan(c.proposal, c.notional) for c in group]
        batch = simulate_batch(
            data,
            np.array([c.index + 1 for c in group], dtype=np.int64),
            np.array([1 if p.side == LONG else -1 for p in plans], dtype=np.int8),
            np.array([p.stop for p in plans], dtype=np.float64),
            np.array([p.target for p in plans], dtype=np.float64),
            np.array([p.max_hold for p in plans], dtype=np.int64),
            costs,
            np.array([p.notional_in(costs) for p in plans], dtype=np.float64),
        )
        for position, (candidate, plan) in enumerate(zip(group, plans, strict=True)):
            entry = candidate.index + 1
            if entry < len(data) and data.time[entry] > _deadline(
                candidate.candle_time, plan, step
            ):
                candidate.course = _expired(int(data.time[entry]) + step)
                continue
            value = batch.trade(position, plan, data)
            entered_at = int(data.time[entry]) if value is not None else None
            candidate.course = _course(value, entered_at, step)


def _deadline(candle_time: int, plan: TradePlan, step: int) -> int:
    """The latest open time of an entry candle: within the max hold of the signal."""
    return candle_time + plan.max_hold * step


def _expired(known_at: int) -> _Course:
    return _Course(trade=None, result=None, expired=True, entered_at=None, known_at=known_at)


def _course(value: OpenTrade | TradeResult | None, entered_at: int | None, step: int) -> _Course:
    if isinstance(value, TradeResult):
        return _Course(None, value, False, entered_at, value.exit_time + step)
    return _Course(value, None, False, entered_at, NEVER)


def _advance(flight: Flight, data: CandleArrays, market: Market, costs: FillCosts) -> _Course:
    """A carried trade, advanced candle by candle over this run's candles only."""
    step = market.step_ms
    trade, entered_at = flight.trade, None
    times, opens = data.time.tolist(), data.open.tolist()
    highs, lows, closes = data.high.tolist(), data.low.tolist(), data.close.tolist()
    for k, time in enumerate(times):
        if trade is None:
            if time > _deadline(flight.key[1], flight.plan, step):
                return _expired(time + step)
            trade = trade_enter(flight.plan, time=time, open_=opens[k], costs=costs)
            entered_at = time
        value = trade_step(
            trade,
            time=time,
            open_=opens[k],
            high=highs[k],
            low=lows[k],
            close=closes[k],
            costs=costs,
        )
        if isinstance(value, TradeResult):
            return _Course(None, value, False, entered_at, value.exit_time + step)
        trade = value
    return _Course(trade, None, False, entered_at, NEVER)


def _decide(
    candidate: _Candidate,
    book: _Book,
    config: EngineConfig,
    context: CandleArrays,
    clock: int | None,
) -> tuple[SignalRecord, list[Transition]]:
    spec, proposal, at = candidate.spec, candidate.proposal, candidate.close_time
    key: SignalKey = (spec.name, candidate.candle_time, proposal.side)
    transitions = [
        Transition(
            key, "generate", "", GENERATED, at, {"strategy": spec.name, "reason": proposal.reason}
        )
    ]
    if candidate.invalid is not None:
        transitions.append(
            Transition(key, "reject", GENERATED, REJECTED, at, {"reason": candidate.invalid})
        )
        verdicts: tuple[tuple[str, Verdict], ...] = ()
        state = REJECTED
    else:
        snapshot = book.snapshot(spec.market, at, context, clock)
        verdicts = tuple(
            (g.name, g.guard.check(proposal, book.guard_view(g.name, snapshot)))
            for g in config.guards
        )
        for name, verdict in verdicts:
            if verdict.released_at is not None:
                book.guard_released(name, verdict.released_at)
        blocked_by = [name for name, verdict in verdicts if not verdict.passed]
        state = BLOCKED if blocked_by else APPROVED
        transitions.append(
            Transition(
                key,
                "block" if blocked_by else "approve",
                GENERATED,
                state,
                at,
                {"blocked_by": blocked_by, "guards": [name for name, _ in verdicts]},
            )
        )
        if state == APPROVED and candidate.course is not None:
            state = _final_state(candidate.course)
    record = SignalRecord(
        key=key,
        strategy=spec.name,
        market=spec.market,
        candle_time=candidate.candle_time,
        proposal=proposal,
        state=state,
        decided_at=at,
        verdicts=verdicts,
    )
    return record, transitions


def _final_state(course: _Course) -> str:
    return {
        TRADE_EXPIRED: EXPIRED,
        TRADE_CLOSED: CLOSED,
        OPEN: EXECUTED,
        PENDING: APPROVED,
    }[course.status]


def _course_transitions(
    flight: Flight, course: _Course, *, pending_before: bool
) -> list[Transition]:
    """The paper trade's transitions in this run: execute, then close; or expire."""
    if not flight.paper:
        return []
    out = []
    if course.expired:
        out.append(
            Transition(
                flight.key,
                "expire",
                APPROVED,
                EXPIRED,
                int(course.known_at),
                {"reason": "no entry candle within the max hold"},
            )
        )
        return out
    if pending_before and course.entered_at is not None:
        entry = course.result or course.trade
        assert entry is not None
        out.append(
            Transition(
                flight.key,
                "execute",
                APPROVED,
                EXECUTED,
                course.entered_at,
                {"entry_time": _iso(course.entered_at), "entry_price": entry.entry_price},
            )
        )
    if course.result is not None:
        result = course.result
        out.append(
            Transition(
                flight.key,
                "close",
                EXECUTED,
                CLOSED,
                int(course.known_at),
                {
                    "exit_time": _iso(result.exit_time),
                    "exit_reason": result.exit_reason,
                    "exit_price": result.exit_price,
                    "pnl": result.pnl,
                },
            )
        )
    return out


def _trade_records(flight: Flight, course: _Course) -> list[TradeRecord]:
    closed_at = int(course.known_at) if course.result is not None else None
    kinds = ("paper", "shadow") if flight.paper else ("shadow",)
    return [
        TradeRecord(
            key=flight.key,
            kind=kind,
            side=flight.plan.side,
            blocked=flight.blocked,
            status=course.status,
            trade=course.trade,
            result=course.result,
            closed_at=closed_at,
        )
        for kind in kinds
        # A paper trade exists from its entry on; an expired signal never had one.
        if kind == "shadow" or course.entered_at is not None or flight.trade is not None
    ]


def _carry(flight: Flight, course: _Course) -> Flight:
    return Flight(
        key=flight.key,
        market=flight.market,
        symbol=flight.symbol,
        paper=flight.paper,
        plan=flight.plan,
        trade=course.trade,
        blocked=flight.blocked,
    )


def _iso(ms: int) -> str:
    return utc_from_ms(ms).isoformat()


def quote_of(symbol: str) -> str:
    """The quote currency of a ccxt symbol: ``BTC/USD`` and ``BTC/USD:USD`` → ``USD``."""
    return symbol.split("/", 1)[-1].split(":", 1)[0]


def markets_of(config: EngineConfig, state: EngineState) -> dict[str, Market]:
    """Every market a run needs candles of: those the strategies trade, and those where
    trades are still in flight (a strategy retired from a live book leaves its open
    trades to finish)."""
    markets = config.markets()
    for key, market in config.conversion_markets().items():
        markets.setdefault(key, market)
    for flight in state.flights:
        markets.setdefault(flight.market, Market.from_key(flight.market))
    return markets


def warm_up(
    config: EngineConfig, state: EngineState, history: Mapping[str, CandleArrays]
) -> EngineState:
    """Bring strategies and markets the state has never seen up to date without making
    signals: each strategy with no indicator state scans its market's ``history`` (the
    candles at or before where the state stopped on that market, or all of them for a
    market it has not processed yet, which then counts as processed through them).

    This is how a live book starts, or takes on a new strategy, with the indicator values
    a replay of the whole history would have at that point.
    """
    last_time = dict(state.last_time)
    indicators = dict(state.indicators)
    for spec in config.strategies:
        if spec.name in indicators:
            continue
        data = history.get(spec.market.key, CandleArrays.from_rows([]))
        stop = last_time.get(spec.market.key)
        if stop is not None:
            data = data.head(int(np.searchsorted(data.time, stop, side="right")))
        indicators[spec.name] = spec.strategy.scan(data, None).state
    for key, data in history.items():
        if key not in last_time and len(data):
            last_time[key] = int(data.time[-1])
    return EngineState(
        last_time=last_time,
        indicators=indicators,
        flights=state.flights,
        recent_closed=state.recent_closed,
        book_closed=state.book_closed,
        equity=state.equity,
        equity_peak=state.equity_peak,
        realised_by_quote=state.realised_by_quote,
        guard_releases=state.guard_releases,
    )
