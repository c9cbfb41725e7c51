"""Replay stored candles through every stage of the pipeline, in time order, into one book.

It sits at the top of the write side (the shadow app) because it drives both the
signal side and the shadow engine, with the very services the Celery tasks call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from markets.bars import timeframe_delta
from markets.selectors import candle_times
from shadow.services import shadow_trades_evaluate, shadow_trades_sweep
from signals.models import Book, StrategyConfig
from signals.services import signals_process_candle


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
) -> int:
    """Run the stored candles of one market, oldest first, through ``configs`` into ``book``;
    returns how many candles were replayed.

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
    return len(times)
