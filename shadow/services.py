"""Writes of the shadow engine: give every decided signal a shadow trade and record each
shadow trade's outcome, exactly once, with the same fill model as paper trading."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from shadow.models import ShadowTrade
from signals.models import Book, Signal, SignalState, SimulatedTrade
from signals.services import outcome_fields, signal_outcome

logger = logging.getLogger("shadow")

# Signals that went through the guards. Rejected ones never reached them (bad input).
DECIDED = [
    SignalState.APPROVED,
    SignalState.BLOCKED,
    SignalState.EXECUTED,
    SignalState.CLOSED,
    SignalState.FAILED,
    SignalState.EXPIRED,
]
_UNFINISHED = [SimulatedTrade.Status.PENDING, SimulatedTrade.Status.OPEN]


def shadow_trades_sweep(*, book: Book) -> int:
    """Create the missing shadow trade of every decided signal in ``book``.

    Blocked signals form the measured group; the others are the control group. Safe to
    run concurrently: the one-to-one key lets only one row per signal exist.
    """
    missing = Signal.objects.filter(book=book, state__in=DECIDED, shadow_trade__isnull=True)
    rows = [
        ShadowTrade(
            book=book,
            signal=signal,
            side=signal.side,
            group=(
                ShadowTrade.Group.BLOCKED
                if signal.state == SignalState.BLOCKED
                else ShadowTrade.Group.CONTROL
            ),
        )
        for signal in missing.only("id", "side", "state")
    ]
    ShadowTrade.objects.bulk_create(rows, ignore_conflicts=True)
    for row in rows:
        logger.info("[SHADOW] signal=%s shadow trade opened (%s)", row.signal_id, row.group)
    return len(rows)


@dataclass
class ShadowProgress:
    evaluated: int = 0
    closed: int = 0


def shadow_trades_evaluate(*, book: Book, until: datetime) -> ShadowProgress:
    """Run every unfinished shadow trade of ``book`` over the candles up to ``until``
    (an open time) and record the outcome of each one that has closed.

    The outcome is written only by the worker whose update still finds the trade
    unfinished, so it is recorded exactly once however often this runs.
    """
    progress = ShadowProgress()
    unfinished = (
        ShadowTrade.objects.filter(book=book, status__in=_UNFINISHED)
        .filter(signal__candle_time__lt=until)
        .select_related("signal")
    )
    for trade in unfinished:
        outcome = signal_outcome(signal=trade.signal, until=until)
        progress.evaluated += 1
        if outcome.status == SimulatedTrade.Status.PENDING:
            continue
        fields = outcome_fields(outcome, timeframe=trade.signal.timeframe)
        claimed = ShadowTrade.objects.filter(pk=trade.pk, status__in=_UNFINISHED).update(**fields)
        if claimed and outcome.status == SimulatedTrade.Status.CLOSED:
            progress.closed += 1
            logger.info(
                "[SHADOW] signal=%s %s closed: %s at %s, pnl %s",
                trade.signal_id,
                trade.group,
                outcome.exit_reason,
                outcome.exit_price,
                outcome.pnl,
            )
    return progress
