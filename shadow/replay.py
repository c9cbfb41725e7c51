"""Replay stored candles through every stage of the pipeline, in time order, into one book.

It sits at the top of the write side (the shadow app) because it drives both the
signal side and the shadow engine, with the very services the Celery tasks call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Q, Sum

from markets.bars import timeframe_delta
from markets.selectors import candle_times
from shadow.models import ShadowTrade
from shadow.services import shadow_trades_evaluate, shadow_trades_sweep
from signals.models import Book, PaperTrade, Signal, SignalState, SimulatedTrade, StrategyConfig
from signals.services import signals_process_candle


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay produced in its book."""

    candles: int
    signals: int
    approved: int
    blocked: int
    rejected: int
    paper_trades: int
    paper_closed: int
    paper_pnl: Decimal
    shadow_trades: int
    shadow_closed: int
    blocked_shadow_closed: int
    opportunity_cost: Decimal


def replay_market(
    *,
    book: Book,
    configs: Sequence[StrategyConfig],
    exchange: str,
    symbol: str,
    timeframe: str,
    since: datetime | None = None,
    until: datetime | None = None,
    on_candle: Callable[[datetime], object] | None = None,
) -> ReplaySummary:
    """Run the stored candles of one market, oldest first, through ``configs`` into ``book``.

    At each candle t the work sees only candles up to t: paper trades and shadow trades
    advance through t, the strategies look back from t, the guards judge as of t's close.
    Candles before ``since`` still serve as the strategies' history.
    """
    times = candle_times(
        exchange=exchange, symbol=symbol, timeframe=timeframe, since=since, until=until
    )
    step = timeframe_delta(timeframe)
    for candle_time in times:
        for config in configs:
            signals_process_candle(
                book=book, config=config, candle_time=candle_time, now=candle_time + step
            )
        shadow_trades_sweep(book=book)
        shadow_trades_evaluate(book=book, until=candle_time)
        if on_candle:
            on_candle(candle_time)
    return replay_summary(book=book, candles=len(times))


def replay_summary(*, book: Book, candles: int) -> ReplaySummary:
    """Counts and money of one book, for the replay's closing report."""
    states = Signal.objects.filter(book=book).aggregate(
        signals=Count("id"),
        approved=Count(
            "id",
            filter=~Q(state__in=[SignalState.BLOCKED, SignalState.REJECTED, SignalState.GENERATED]),
        ),
        blocked=Count("id", filter=Q(state=SignalState.BLOCKED)),
        rejected=Count("id", filter=Q(state=SignalState.REJECTED)),
    )
    closed = Q(status=SimulatedTrade.Status.CLOSED)
    paper = PaperTrade.objects.filter(book=book).aggregate(
        trades=Count("id"), closed=Count("id", filter=closed), pnl=Sum("pnl", filter=closed)
    )
    blocked_closed = closed & Q(group=ShadowTrade.Group.BLOCKED)
    shadow = ShadowTrade.objects.filter(book=book).aggregate(
        trades=Count("id"),
        closed=Count("id", filter=closed),
        blocked_closed=Count("id", filter=blocked_closed),
        cost=Sum("pnl", filter=blocked_closed),
    )
    return ReplaySummary(
        candles=candles,
        signals=states["signals"],
        approved=states["approved"],
        blocked=states["blocked"],
        rejected=states["rejected"],
        paper_trades=paper["trades"],
        paper_closed=paper["closed"],
        paper_pnl=paper["pnl"] or Decimal(0),
        shadow_trades=shadow["trades"],
        shadow_closed=shadow["closed"],
        blocked_shadow_closed=shadow["blocked_closed"],
        opportunity_cost=shadow["cost"] or Decimal(0),
    )
