"""The live driver: the candles that closed since a book's last run, through the same
engine a replay uses, written in one transaction.

Each run loads the book's engine state (where it stopped, indicator values, trades in
flight), reads only the candles that closed since, runs the engine, and writes the
whole outcome at once: new signals with their decisions and logs, the transitions of
signals already in the book (through the state machine and its optimistic lock), paper
and shadow trades, equity points and the new engine state. The state row's revision is
claimed like a lock (filter on the old revision, update, go on only if one row changed),
so two workers running the same book leave exactly one outcome, and a crash at any point
leaves all of a run or none of it: the next run simply does it again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from markets.bars import CandleArrays, timeframe_delta
from markets.timestamps import ms_from_utc, utc_from_ms
from shadow import rollups
from shadow.models import ShadowTrade
from shadow.persistence import BookWriter, outcome_fields
from shadow.selectors import market_candles
from signals.domain import engine
from signals.models import (
    Book,
    BookGuard,
    BookState,
    BookStrategy,
    PaperTrade,
    Signal,
    SignalState,
    SignalTransition,
)
from signals.services import SYSTEM, book_follow_enabled, engine_config

logger = logging.getLogger("shadow")


class BookBusyError(RuntimeError):
    """Another worker advanced the book while this one was computing."""


@dataclass(frozen=True, slots=True)
class LiveProgress:
    """What one live run did."""

    book_id: int
    candles: int
    signals: int
    transitions: int
    closed: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def book_advance(*, book_id: int, now: datetime) -> LiveProgress:
    """Run every candle of the book's markets that closed by ``now`` and was not run yet.

    A live book first takes on the enabled configurations (new versions replace old ones
    from this run on). Raises ``BookBusyError`` when another worker wrote the book first;
    nothing of this run is kept then.
    """
    book = Book.objects.get(pk=book_id)
    if book.kind == Book.Kind.LIVE:
        changes, problems = book_follow_enabled(book=book)
        for change in changes:
            logger.info("[SIGNAL-BUS] book=%s configuration: %s", book.name, change)
        for problem in problems:
            # An invalid configuration must not stop the others: it is left out and said.
            logger.error("[SIGNAL-BUS] book=%s left out: %s", book.name, problem)
    # On the book's frozen economics: today's settings never change a running book.
    config = engine_config(book=book, max_signal_age=settings.SIGNAL_MAX_AGE, now=now)
    row, _ = BookState.objects.get_or_create(book=book)
    state = engine.EngineState.from_json(row.state)

    # Candles of a market the book has not run yet are history only up to the oldest
    # moment a signal could still be fresh; they warm the indicators up.
    history: dict[str, CandleArrays] = {}
    missing_indicators = {s.market.key for s in config.strategies if s.name not in state.indicators}
    for key, market in engine.markets_of(config, state).items():
        stopped = state.last_time.get(key)
        if stopped is None:
            step = timeframe_delta(market.timeframe)
            history[key] = market_candles(market, until=now - settings.SIGNAL_MAX_AGE - 2 * step)
        elif key in missing_indicators:
            history[key] = market_candles(market, until=utc_from_ms(stopped))
    state = engine.warm_up(config, state, history)
    # The candles closed since the last run, behind the ones the guards look back at.
    candles: dict[str, CandleArrays] = {}
    for key, market in engine.markets_of(config, state).items():
        closed = now - timeframe_delta(market.timeframe)
        stopped = state.last_time.get(key)
        if stopped is None:
            candles[key] = market_candles(market, until=closed)
            continue
        context = market_candles(market, until=utc_from_ms(stopped), newest=config.context_candles)
        candles[key] = context.then(
            market_candles(market, after=utc_from_ms(stopped), until=closed)
        )
    result = engine.run(config, state, candles, now=ms_from_utc(now))
    if not _changed(result, row.state):
        # No candle closed and nothing moved: the book, its revision and so every page
        # read from it stay as they are.
        return LiveProgress(book_id=book.pk, candles=0, signals=0, transitions=0, closed=0)

    with transaction.atomic():
        claimed = BookState.objects.filter(pk=row.pk, revision=row.revision).update(
            state=result.state.to_json(), revision=row.revision + 1
        )
        if claimed != 1:
            raise BookBusyError(f"book {book.name!r} was advanced by another worker")
        strategies = list(BookStrategy.objects.filter(book=book))
        writer = BookWriter(
            book=book,
            strategies={s.name: s for s in strategies if s.active},
            guards={g.name: g for g in BookGuard.objects.filter(book=book, active=True)},
        )
        _, ids = writer.insert_new(
            signals=result.signals,
            transitions=result.transitions,
            trades=result.trades,
            equity=result.equity,
        )
        carried = _apply_carried(
            book,
            result,
            set(ids),
            {s.pk: s.name for s in strategies},
            {s.config_id: s.name for s in strategies if s.active},
        )
        touched = _first_touched(result)
        if touched is not None:
            # The days this run changed, summed again for the pages in its transaction.
            rollups.refresh(book.pk, since=touched)
    _log(book, result)
    return LiveProgress(
        book_id=book.pk,
        candles=result.candles,
        signals=len(result.signals),
        transitions=len(result.transitions),
        closed=carried + sum(1 for t in result.trades if t.kind == "paper" and t.result),
    )


def _apply_carried(
    book: Book,
    result: engine.EngineResult,
    new_keys: set[engine.SignalKey],
    names: dict[int, str],
    legacy: dict[int | None, str],
) -> int:
    """Transitions and trade updates of signals written by earlier runs; returns how
    many of their paper trades closed. ``names`` maps each of the book's strategy
    versions (``BookStrategy`` ids) to its name: a signal is found by the version that
    made it, whatever the configuration is called now (a rename makes a new version
    under the new name while the old version's trades are still carried)."""
    transitions = [t for t in result.transitions if t.key not in new_keys]
    trades = [t for t in result.trades if t.key not in new_keys]
    if not transitions and not trades:
        return 0
    wanted = {t.key for t in transitions} | {t.key for t in trades}
    candidates = Signal.objects.filter(
        book=book, candle_time__in={utc_from_ms(key[1]) for key in wanted}
    ).exclude(state=SignalState.REJECTED)
    signals = {
        key: s
        for s in candidates
        if (name := _made_by(s, names, legacy)) is not None
        and (key := (name, ms_from_utc(s.candle_time), s.side)) in wanted
    }
    by_signal: dict[engine.SignalKey, list[engine.Transition]] = defaultdict(list)
    for transition in transitions:
        by_signal[transition.key].append(transition)
    log: list[SignalTransition] = []
    for key, steps in by_signal.items():
        signal = signals[key]
        for step in steps:
            getattr(signal, step.name)()
        # One optimistic-locked update per signal: it fails if another worker moved it.
        signal.save()
        log.extend(
            SignalTransition(
                signal=signal,
                name=step.name,
                from_state=step.source,
                to_state=step.target,
                actor=SYSTEM,
                payload=step.payload,
                simulated_at=utc_from_ms(step.at),
            )
            for step in steps
        )
    SignalTransition.objects.bulk_create(log)

    ids = {key: signals[key].pk for key in {t.key for t in trades}}
    papers = {p.signal_id: p for p in PaperTrade.objects.filter(signal_id__in=ids.values())}
    closed = 0
    for record in trades:
        fields = outcome_fields(record.status, record.trade, record.result, record.closed_at)
        signal_id = ids[record.key]
        if record.kind == "shadow":
            ShadowTrade.objects.filter(signal_id=signal_id).update(**fields)
        elif signal_id in papers:
            PaperTrade.objects.filter(pk=papers[signal_id].pk).update(**fields)
            closed += record.result is not None
        else:
            PaperTrade.objects.create(book=book, signal_id=signal_id, side=record.side, **fields)
            closed += record.result is not None
    return closed


def _changed(result: engine.EngineResult, stored: Any) -> bool:
    """Whether a run has anything to write: rows, or an engine state unlike the stored one."""
    if result.signals or result.transitions or result.trades or result.equity:
        return True
    return bool(result.candles) or result.state.to_json() != stored


def _first_touched(result: engine.EngineResult) -> datetime | None:
    """The earliest candle time of a signal this run wrote or changed (its trades exit
    later still), ``None`` when it changed none."""
    keys = [s.key for s in result.signals]
    keys += [t.key for t in result.transitions] + [t.key for t in result.trades]
    return utc_from_ms(min(key[1] for key in keys)) if keys else None


def _made_by(signal: Signal, names: dict[int, str], legacy: dict[int | None, str]) -> str | None:
    """The name the engine keys ``signal`` by: its strategy version's; a signal from
    before versions were frozen in books goes by its configuration's active version."""
    if signal.book_strategy_id is not None:
        return names.get(signal.book_strategy_id)
    return legacy.get(signal.strategy_config_id)


def _log(book: Book, result: engine.EngineResult) -> None:
    for signal in result.signals:
        logger.info(
            "[SIGNAL-BUS] book=%s %s %s %s on candle %s: %s -> %s",
            book.name,
            signal.strategy,
            signal.market.symbol,
            signal.proposal.side,
            utc_from_ms(signal.candle_time).isoformat(),
            signal.proposal.reason,
            signal.state,
        )
    for transition in result.transitions:
        logger.info(
            "[STATE-MACHINE] book=%s signal=%s@%s %s: %s -> %s",
            book.name,
            transition.key[0],
            utc_from_ms(transition.key[1]).isoformat(),
            transition.name,
            transition.source or "-",
            transition.target,
        )
    for trade in result.trades:
        if trade.kind == "shadow" and trade.result is not None:
            logger.info(
                "[SHADOW] book=%s signal=%s@%s %s closed: %s at %.8g, pnl %.2f",
                book.name,
                trade.key[0],
                utc_from_ms(trade.key[1]).isoformat(),
                "blocked" if trade.blocked else "control",
                trade.result.exit_reason,
                trade.result.exit_price,
                trade.result.pnl,
            )
