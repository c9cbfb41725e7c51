"""A book's paper equity, marked to market (the performance page and the summary's sparkline)."""

import numpy as np
from django.db.models import (
    Case,
    IntegerField,
    Min,
    Value,
    When,
)

from analytics.breakdowns import EpochMs, float_columns
from analytics.equity import (
    EquityCurve,
    PositionArrays,
    equity_curve,
    equity_curve_arrays,
)
from markets.bars import timeframe_delta
from markets.selectors import candle_arrays
from markets.timestamps import ms_from_utc, utc_from_ms
from signals.models import (
    Book,
    BookState,
    PaperTrade,
)


def book_equity_curve(*, book: Book) -> EquityCurve:
    """``book``'s equity at every candle close from its first paper entry to the last
    candle it processed, marked to market (``analytics.equity``).

    Its markets and first entry come first (one grouped query), then their candles; the
    trades are read only when there are candles to mark them on, as float columns."""
    trades = PaperTrade.objects.filter(
        book=book, entry_time__isnull=False, quantity__isnull=False, entry_price__isnull=False
    ).order_by()
    market = ("signal__exchange", "signal__symbol", "signal__timeframe")
    found = list(trades.values_list(*market).annotate(first=Min("entry_time")).order_by(*market))
    if not found:
        return equity_curve({}, [], step_ms={})
    state = BookState.objects.filter(book=book).values_list("state", flat=True).first() or {}
    last_times = state.get("last_time", {})
    first_entry = min(ms_from_utc(first) for *_, first in found)
    candles = {}
    for exchange, symbol, timeframe, _ in found:
        key = f"{exchange} {symbol} {timeframe}"
        last = last_times.get(key)
        candles[key] = candle_arrays(
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
            after=utc_from_ms(first_entry - 1),
            until=utc_from_ms(last) if last is not None else None,
        )
    steps = {f"{e} {s} {t}": int(timeframe_delta(t).total_seconds() * 1000) for e, s, t, _ in found}
    if all(len(c) == 0 for c in candles.values()):
        return equity_curve(candles, [], step_ms=steps)
    which = Case(
        *(
            When(signal__exchange=e, signal__symbol=s, signal__timeframe=t, then=Value(i))
            for i, (e, s, t, _) in enumerate(found)
        ),
        output_field=IntegerField(),
    )
    closed = Case(
        When(status=PaperTrade.Status.CLOSED, then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )
    side = Case(When(side="long", then=Value(1)), default=Value(-1), output_field=IntegerField())
    columns = float_columns(
        trades.values_list(
            which,
            side,
            "quantity",
            "entry_price",
            EpochMs("entry_time"),
            EpochMs("exit_time"),
            "pnl",
            closed,
        ),
        8,
    )
    index, direction, quantity, price, entry, exit_, pnl, is_closed = columns.T
    exits = np.where(is_closed == 1, exit_, np.nan)
    return equity_curve_arrays(
        candles,
        PositionArrays(
            market=index.astype(np.int64),
            signed=direction * quantity,
            entry_price=price,
            entry_time=entry.astype(np.int64),
            exit_time=exits,
            pnl=np.where(~np.isnan(exits) & ~np.isnan(pnl), pnl, 0.0),
        ),
        step_ms=steps,
    )
