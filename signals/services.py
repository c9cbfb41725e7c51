"""Writes of the signal side: generate signals, decide them with the guards, paper-trade
the approved ones, and move each through its state machine with a logged transition.

Every function takes what it needs as keyword arguments, including ``now``, so the
live tasks and the replay drive the very same code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django_fsm import ConcurrentTransition

from markets.bars import timeframe_delta
from markets.selectors import bars_between, bars_until, candle_times
from signals.domain.fills import FillCosts, Outcome, TradePlan, simulate
from signals.domain.guards import (
    ClosedTrade,
    Guard,
    Snapshot,
    build_guard,
    evaluate_guards,
)
from signals.domain.strategies import Proposal, build_strategy
from signals.models import (
    Book,
    GenerationCursor,
    GuardConfig,
    GuardDecision,
    PaperTrade,
    Side,
    Signal,
    SignalState,
    SignalTransition,
    SimulatedTrade,
    StrategyConfig,
)

logger = logging.getLogger("signals")

LIVE_BOOK = "live"
SYSTEM = "system"
# How many recent closed trades the guards see; the cooldown only needs the latest stop-out.
_RECENT_CLOSED = 20


def fill_costs() -> FillCosts:
    """The configured slippage, fee rate and notional of the fill model."""
    return FillCosts(
        slippage_bps=settings.FILL_SLIPPAGE_BPS,
        fee_rate=settings.FILL_FEE_RATE,
        notional=settings.FILL_NOTIONAL,
    )


def book_live() -> Book:
    """The book the running system trades in (created on first use)."""
    book, _ = Book.objects.get_or_create(name=LIVE_BOOK, defaults={"kind": Book.Kind.LIVE})
    return book


def signal_transition(
    *, signal: Signal, name: str, actor: str = SYSTEM, payload: dict[str, Any] | None = None
) -> Signal:
    """Apply transition ``name`` to ``signal`` and log it, both in one transaction.

    Raises ``TransitionNotAllowed`` from a state the transition does not leave, and
    ``ConcurrentTransition`` when another worker moved the signal first; either way
    nothing is written.
    """
    from_state = signal.state
    with transaction.atomic():
        getattr(signal, name)()
        signal.save()
        SignalTransition.objects.create(
            signal=signal,
            name=name,
            from_state=from_state,
            to_state=signal.state,
            actor=actor,
            payload=payload or {},
        )
    logger.info("[STATE-MACHINE] signal=%s %s: %s -> %s", signal.pk, name, from_state, signal.state)
    return signal


def signal_create(
    *,
    book: Book,
    config: StrategyConfig,
    candle_time: datetime,
    proposal: Proposal,
    actor: str = SYSTEM,
) -> Signal | None:
    """Persist a strategy's proposal as a ``generated`` signal and log its birth.

    Idempotent: returns ``None`` when the same signal (book, strategy, market, candle,
    side) already exists, e.g. because another worker generated it first.
    """
    try:
        with transaction.atomic():
            signal = Signal.objects.create(
                book=book,
                strategy_config=config,
                exchange=config.exchange,
                symbol=config.symbol,
                timeframe=config.timeframe,
                candle_time=candle_time,
                side=proposal.side,
                entry_price=proposal.entry_price,
                stop_loss=proposal.stop_loss,
                take_profit=proposal.take_profit,
                max_hold_candles=proposal.max_hold,
                reason=proposal.reason,
            )
            SignalTransition.objects.create(
                signal=signal,
                name="generate",
                from_state="",
                to_state=signal.state,
                actor=actor,
                payload={"strategy": config.name, "reason": proposal.reason},
            )
    except IntegrityError:
        return None
    logger.info(
        "[SIGNAL-BUS] signal=%s %s %s %s on candle %s: %s",
        signal.pk,
        config.name,
        signal.symbol,
        signal.side,
        candle_time.isoformat(),
        proposal.reason,
    )
    return signal


def _enabled_guards() -> list[Guard]:
    return [build_guard(g.kind, g.params) for g in GuardConfig.objects.filter(enabled=True)]


def _invalid_reason(signal: Signal, now: datetime) -> str | None:
    prices = (signal.entry_price, signal.stop_loss, signal.take_profit)
    if any(price is None or price <= 0 for price in prices):
        return "non-positive price"
    if signal.side == Side.LONG and not signal.stop_loss < signal.entry_price < signal.take_profit:
        return "long signal needs stop < entry < target"
    if signal.side == Side.SHORT and not signal.take_profit < signal.entry_price < signal.stop_loss:
        return "short signal needs target < entry < stop"
    closed_at = signal.candle_time + timeframe_delta(signal.timeframe)
    age = now - closed_at
    if age > settings.SIGNAL_MAX_AGE:
        return f"stale candle: closed {age} ago, limit {settings.SIGNAL_MAX_AGE}"
    return None


def guard_snapshot(*, book: Book, symbol: str, now: datetime) -> Snapshot:
    """What the guards see for a new signal on ``symbol`` at ``now``: the book's positions
    (open paper trades and approved signals awaiting entry) and its recent closed trades."""
    open_trades = PaperTrade.objects.filter(book=book, status=SimulatedTrade.Status.OPEN).count()
    awaiting_entry = Signal.objects.filter(book=book, state=SignalState.APPROVED).count()
    closed = (
        PaperTrade.objects.filter(
            book=book,
            status=SimulatedTrade.Status.CLOSED,
            signal__symbol=symbol,
            exit_time__lte=now,
        )
        .order_by("-exit_time")
        .values_list("exit_time", "exit_reason")[:_RECENT_CLOSED]
    )
    return Snapshot(
        now=now,
        symbol=symbol,
        open_positions=open_trades + awaiting_entry,
        recent_closed=[ClosedTrade(symbol, t, reason) for t, reason in closed if t is not None],
    )


def signal_evaluate(*, signal_id: int, now: datetime, actor: str = SYSTEM) -> Signal:
    """Decide a ``generated`` signal: reject invalid input or a candle that closed too long
    before ``now``, else run every enabled guard as of the candle's close, record each
    verdict as a ``GuardDecision`` and approve or block.

    A signal already decided (by another worker) is returned as it is.
    """
    signal = Signal.objects.select_related("book").get(pk=signal_id)
    if signal.state != SignalState.GENERATED:
        return signal
    invalid = _invalid_reason(signal, now)
    try:
        if invalid:
            signal.decided_at = now
            return signal_transition(
                signal=signal, name="reject", actor=actor, payload={"reason": invalid}
            )
        proposal = Proposal(
            side=signal.side,
            entry_price=signal.entry_price,
            stop_loss=signal.stop_loss,
            take_profit=signal.take_profit,
            max_hold=signal.max_hold_candles,
            reason=signal.reason,
        )
        # The guards judge as of the signal candle's close, so a live catch-up of several
        # candles decides each one as a replay of the same candles would.
        as_of = signal.candle_time + timeframe_delta(signal.timeframe)
        snapshot = guard_snapshot(book=signal.book, symbol=signal.symbol, now=as_of)
        verdicts = evaluate_guards(_enabled_guards(), proposal, snapshot)
        blocked_by = [v.guard for v in verdicts if not v.passed]
        with transaction.atomic():
            GuardDecision.objects.bulk_create(
                GuardDecision(
                    signal=signal,
                    guard=v.guard,
                    verdict=GuardDecision.Verdict.PASS if v.passed else GuardDecision.Verdict.BLOCK,
                    reason=v.reason,
                    observed_value=v.observed,
                    threshold=v.threshold,
                )
                for v in verdicts
            )
            signal.decided_at = now
            signal_transition(
                signal=signal,
                name="block" if blocked_by else "approve",
                actor=actor,
                payload={"blocked_by": blocked_by, "guards": [v.guard for v in verdicts]},
            )
    except (ConcurrentTransition, IntegrityError):
        # Another worker decided it first; its decisions stand.
        return Signal.objects.get(pk=signal_id)
    return signal


def _plan(signal: Signal) -> TradePlan:
    return TradePlan(
        side=signal.side,
        stop=signal.stop_loss,
        target=signal.take_profit,
        max_hold=signal.max_hold_candles,
    )


def signal_outcome(*, signal: Signal, until: datetime) -> Outcome:
    """The fill model run on the candles after the signal's, up to ``until`` (an open time)."""
    bars = bars_between(
        exchange=signal.exchange,
        symbol=signal.symbol,
        timeframe=signal.timeframe,
        after=signal.candle_time,
        until=until,
        limit=signal.max_hold_candles,
    )
    return simulate(_plan(signal), bars, fill_costs())


def outcome_fields(outcome: Outcome, *, timeframe: str) -> dict[str, Any]:
    """The ``SimulatedTrade`` columns an outcome fills in. ``closed_at`` is when the outcome
    became known: the close of the exit candle."""
    closed_at = outcome.exit_time + timeframe_delta(timeframe) if outcome.exit_time else None
    return {
        "closed_at": closed_at,
        "status": outcome.status,
        "quantity": outcome.quantity,
        "entry_time": outcome.entry_time,
        "entry_price": outcome.entry_price,
        "exit_time": outcome.exit_time,
        "exit_price": outcome.exit_price,
        "exit_reason": outcome.exit_reason,
        "fees": outcome.fees,
        "pnl": outcome.pnl,
        "return_pct": outcome.return_pct,
        "r_multiple": outcome.r_multiple,
        "mae": outcome.mae,
        "mfe": outcome.mfe,
    }


@dataclass
class PaperProgress:
    executed: int = 0
    closed: int = 0
    expired: int = 0


def paper_trades_advance(
    *, book: Book, exchange: str, symbol: str, timeframe: str, until: datetime
) -> PaperProgress:
    """Move the book's paper trades on one market forward with the candles up to ``until``.

    Approved signals whose entry candle has arrived are executed; open trades that hit
    their stop, target or max hold are closed; approved signals whose entry candle never
    came within the max hold are expired. Safe to run twice: transitions are
    optimistic-locked and each trade is one row per signal.
    """
    progress = PaperProgress()
    market = {"book": book, "exchange": exchange, "symbol": symbol, "timeframe": timeframe}
    # Open trades first: a trade executed below already ran over every candle there is.
    open_trades = PaperTrade.objects.filter(
        status=SimulatedTrade.Status.OPEN,
        signal__state=SignalState.EXECUTED,
        **{f"signal__{k}": v for k, v in market.items()},
    ).select_related("signal")
    for trade in open_trades:
        outcome = signal_outcome(signal=trade.signal, until=until)
        if outcome.status == "closed":
            if _close(trade, trade.signal, outcome):
                progress.closed += 1
        else:
            PaperTrade.objects.filter(pk=trade.pk, status=SimulatedTrade.Status.OPEN).update(
                mae=outcome.mae, mfe=outcome.mfe
            )

    for signal in Signal.objects.filter(state=SignalState.APPROVED, **market):
        outcome = signal_outcome(signal=signal, until=until)
        if outcome.status == "pending":
            deadline = signal.candle_time + timeframe_delta(timeframe) * signal.max_hold_candles
            if until >= deadline and _expire(signal):
                progress.expired += 1
            continue
        try:
            with transaction.atomic():
                trade = PaperTrade.objects.create(
                    book=book,
                    signal=signal,
                    side=signal.side,
                    **outcome_fields(outcome, timeframe=timeframe),
                )
                signal_transition(
                    signal=signal,
                    name="execute",
                    payload={
                        "entry_time": _iso(trade.entry_time),
                        "entry_price": str(trade.entry_price),
                    },
                )
                if outcome.status == "closed":
                    # Entry and exit in the same data (a gap at the open, or a catch-up).
                    signal_transition(signal=signal, name="close", payload=_exit_payload(outcome))
        except (ConcurrentTransition, IntegrityError):
            continue  # another worker executed it first
        progress.executed += 1
        progress.closed += outcome.status == "closed"
    return progress


def _close(trade: PaperTrade, signal: Signal, outcome: Outcome) -> bool:
    try:
        with transaction.atomic():
            claimed = PaperTrade.objects.filter(
                pk=trade.pk, status=SimulatedTrade.Status.OPEN
            ).update(**outcome_fields(outcome, timeframe=signal.timeframe))
            if claimed != 1:
                return False  # another worker closed it
            signal_transition(signal=signal, name="close", payload=_exit_payload(outcome))
    except ConcurrentTransition:
        return False
    return True


def _exit_payload(outcome: Outcome) -> dict[str, Any]:
    return {
        "exit_time": _iso(outcome.exit_time),
        "exit_reason": outcome.exit_reason,
        "exit_price": str(outcome.exit_price),
        "pnl": str(outcome.pnl),
    }


def _expire(signal: Signal) -> bool:
    try:
        signal_transition(signal=signal, name="expire", payload={"reason": "no entry candle"})
    except ConcurrentTransition:
        return False
    return True


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass
class CandleResult:
    """What processing one closed candle did."""

    signal: Signal | None = None
    paper: PaperProgress | None = None


def signals_process_candle(
    *, book: Book, config: StrategyConfig, candle_time: datetime, now: datetime | None = None
) -> CandleResult:
    """Everything the signal side does when the candle opening at ``candle_time`` closes.

    Paper trades advance through that candle, the strategy sees the candles up to and
    including it (never a later one), and a proposal becomes a signal decided by the
    guards as of ``now`` (default: the candle's close, as in a replay).
    """
    close_time = candle_time + timeframe_delta(config.timeframe)
    now = now or close_time
    paper = paper_trades_advance(
        book=book,
        exchange=config.exchange,
        symbol=config.symbol,
        timeframe=config.timeframe,
        until=candle_time,
    )
    strategy = build_strategy(config.kind, config.params)
    bars = bars_until(
        exchange=config.exchange,
        symbol=config.symbol,
        timeframe=config.timeframe,
        until=candle_time,
        limit=strategy.lookback,
    )
    if not bars or bars[-1].open_time != candle_time:
        return CandleResult(paper=paper)
    proposal = strategy.propose(bars)
    if proposal is None:
        return CandleResult(paper=paper)
    signal = signal_create(book=book, config=config, candle_time=candle_time, proposal=proposal)
    if signal is None:
        return CandleResult(paper=paper)
    return CandleResult(signal=signal_evaluate(signal_id=signal.pk, now=now), paper=paper)


def signals_catch_up(*, book: Book, config: StrategyConfig, now: datetime) -> int:
    """Process, in order, every closed candle of ``config``'s market since the last one done.

    A first run starts ``SIGNAL_MAX_AGE`` before ``now``: older candles would only make
    stale signals. Returns how many candles were processed.
    """
    cursor = GenerationCursor.objects.filter(book=book, strategy_config=config).first()
    step = timeframe_delta(config.timeframe)
    since = (
        cursor.last_candle_time + timedelta(microseconds=1)
        if cursor
        else now - settings.SIGNAL_MAX_AGE - step
    )
    times = candle_times(
        exchange=config.exchange,
        symbol=config.symbol,
        timeframe=config.timeframe,
        since=since,
        until=now - step,
    )
    for candle_time in times:
        signals_process_candle(book=book, config=config, candle_time=candle_time, now=now)
        GenerationCursor.objects.update_or_create(
            book=book, strategy_config=config, defaults={"last_candle_time": candle_time}
        )
    return len(times)


def strategy_config_default(*, exchange: str, symbol: str, timeframe: str) -> StrategyConfig:
    """An enabled EMA-crossover configuration for one market, with default parameters."""
    config, _ = StrategyConfig.objects.get_or_create(
        name=f"ema_crossover {exchange} {symbol} {timeframe}",
        defaults={
            "kind": "ema_crossover",
            "params": {},
            "exchange": exchange,
            "symbol": symbol,
            "timeframe": timeframe,
        },
    )
    return config


def guard_configs_default() -> list[GuardConfig]:
    """Both built-in guards, enabled with their default parameters, unless already configured."""
    return [
        GuardConfig.objects.get_or_create(kind=kind)[0]
        for kind in ("max_open_positions", "cooldown_after_stop")
    ]
