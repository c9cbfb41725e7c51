"""Reads of stored candles, as pure ``Bar`` values for the strategy and fill model."""

from datetime import datetime

from django.db.models import QuerySet

from markets.bars import Bar
from markets.models import Candle


def _market(exchange: str, symbol: str, timeframe: str) -> QuerySet[Candle]:
    return Candle.objects.filter(exchange=exchange, symbol=symbol, timeframe=timeframe)


_BAR_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")


def bars_until(
    *, exchange: str, symbol: str, timeframe: str, until: datetime, limit: int
) -> list[Bar]:
    """The last ``limit`` candles opening at or before ``until``, oldest first."""
    rows = _market(exchange, symbol, timeframe).filter(open_time__lte=until)
    newest_first = list(rows.order_by("-open_time").values_list(*_BAR_COLUMNS)[:limit])
    return [Bar(*row) for row in reversed(newest_first)]


def bars_between(
    *, exchange: str, symbol: str, timeframe: str, after: datetime, until: datetime, limit: int
) -> list[Bar]:
    """Up to ``limit`` candles opening after ``after`` and at or before ``until``, oldest first."""
    rows = _market(exchange, symbol, timeframe).filter(open_time__gt=after, open_time__lte=until)
    return [Bar(*row) for row in rows.order_by("open_time").values_list(*_BAR_COLUMNS)[:limit]]


def candle_times(
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[datetime]:
    """Open times of the stored candles of one market in order, optionally within [since, until]."""
    rows = _market(exchange, symbol, timeframe)
    if since is not None:
        rows = rows.filter(open_time__gte=since)
    if until is not None:
        rows = rows.filter(open_time__lte=until)
    return list(rows.order_by("open_time").values_list("open_time", flat=True))


def candle_sources(*, exchange: str, symbol: str, timeframe: str) -> list[str]:
    """The distinct sources (exchange, file, synthetic) of one market's candles."""
    rows = _market(exchange, symbol, timeframe).values_list("source", flat=True).distinct()
    return sorted(rows.order_by())
