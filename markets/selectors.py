"""Reads of stored candles, as pure ``Bar`` values for the strategy and fill model."""

from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Max, Min, QuerySet
from psycopg.types.numeric import FloatLoader

from markets.bars import Bar, CandleArrays
from markets.models import Candle


def _market(exchange: str, symbol: str, timeframe: str) -> QuerySet[Candle]:
    return Candle.objects.filter(exchange=exchange, symbol=symbol, timeframe=timeframe)


_BAR_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")


def bars_between(
    *, exchange: str, symbol: str, timeframe: str, after: datetime, until: datetime, limit: int
) -> list[Bar]:
    """Up to ``limit`` candles opening after ``after`` and at or before ``until``, oldest first."""
    rows = _market(exchange, symbol, timeframe).filter(open_time__gt=after, open_time__lte=until)
    return [Bar(*row) for row in rows.order_by("open_time").values_list(*_BAR_COLUMNS)[:limit]]


def candle_sources(*, exchange: str, symbol: str, timeframe: str) -> list[str]:
    """The distinct sources (exchange, file, synthetic) of one market's candles."""
    rows = _market(exchange, symbol, timeframe).values_list("source", flat=True).distinct()
    return sorted(rows.order_by())


def candle_arrays(
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    after: datetime | None = None,
    until: datetime | None = None,
    newest: int | None = None,
) -> CandleArrays:
    """The stored candles of one market opening after ``after`` and at or before ``until``
    (only the ``newest`` of them when given), oldest first, as float columns: one query,
    no model instances, no ``Decimal``."""
    table = Candle._meta.db_table
    postgres = connection.vendor == "postgresql"
    if postgres:
        columns = "extract(epoch from open_time) * 1000, open, high, low, close, volume"
    else:
        # Django keeps SQLite datetimes as text in UTC; decimals come back as floats.
        columns = (
            "CAST(strftime('%%s', open_time) AS INTEGER) * 1000, open, high, low, close, volume"
        )
    params: list[Any] = [exchange, symbol, timeframe]
    where = "exchange = %s AND symbol = %s AND timeframe = %s"
    if after is not None:
        where += " AND open_time > %s"
        params.append(connection.ops.adapt_datetimefield_value(after))
    if until is not None:
        where += " AND open_time <= %s"
        params.append(connection.ops.adapt_datetimefield_value(until))
    sql = f"SELECT {columns} FROM {table} WHERE {where} ORDER BY open_time"
    if newest is not None:
        sql = f"{sql} DESC LIMIT {int(newest)}"
    with connection.cursor() as cursor:
        if postgres:
            # numeric straight to float in the driver's C loader: no Decimal per value,
            # and no cast for the server to compute (measured: the casts cost more).
            cursor.cursor.adapters.register_loader("numeric", FloatLoader)
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if newest is not None:
        rows.reverse()
    return CandleArrays.from_rows(rows)


def markets_stored(*, exchange: str, timeframe: str) -> list[str]:
    """The symbols with stored candles on ``exchange`` at ``timeframe``, sorted."""
    rows = Candle.objects.filter(exchange=exchange, timeframe=timeframe)
    return sorted(rows.order_by().values_list("symbol", flat=True).distinct())


def candle_count(
    *, exchange: str, symbol: str, timeframe: str, until: datetime | None = None
) -> int:
    """How many candles of one market are stored (opening at or before ``until``)."""
    rows = _market(exchange, symbol, timeframe)
    return rows.filter(open_time__lte=until).count() if until is not None else rows.count()


def candles_stored(
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> bool:
    """Whether any candle of one market is stored within [since, until]."""
    rows = _market(exchange, symbol, timeframe)
    if since is not None:
        rows = rows.filter(open_time__gte=since)
    if until is not None:
        rows = rows.filter(open_time__lte=until)
    return rows.exists()


def candle_span(
    *, exchange: str, symbol: str, timeframe: str, until: datetime | None = None
) -> tuple[datetime, datetime] | None:
    """Open times of the oldest and newest stored candle of one market (opening at or
    before ``until``), or ``None`` when there is none."""
    rows = _market(exchange, symbol, timeframe)
    if until is not None:
        rows = rows.filter(open_time__lte=until)
    span = rows.order_by().aggregate(first=Min("open_time"), last=Max("open_time"))
    if span["first"] is None:
        return None
    return span["first"], span["last"]
