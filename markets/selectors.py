"""Reads of stored candles, as pure ``Bar`` values for the strategy and fill model."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Q, QuerySet
from psycopg.types.numeric import FloatLoader

from markets.bars import Bar, CandleArrays, CandleCloses
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


def candle_sources_of_markets(markets: Iterable[tuple[str, str, str]]) -> list[str]:
    """The distinct sources (exchange, file, synthetic) of the candles of all the
    ``(exchange, symbol, timeframe)`` ``markets``, in one statement (a book's markets were
    one query each). It reads every candle of those markets: about 80 ms a market-year of
    1-minute candles."""
    wanted = Q(pk__in=[])
    for exchange, symbol, timeframe in sorted(set(markets)):
        wanted |= Q(exchange=exchange, symbol=symbol, timeframe=timeframe)
    rows = Candle.objects.filter(wanted).values_list("source", flat=True).distinct()
    return sorted(rows.order_by())


_CHUNK = 20_000


def _float_rows(sql: str, params: list[Any], width: int) -> np.ndarray:
    """The rows of ``sql`` as a float table of ``width`` columns, converted a chunk at a
    time: a whole history as Python tuples costs about 250 bytes a candle (a replay's
    rebuild of a 150,000-candle market peaked 78 MiB higher), as float columns 8 a
    column."""
    parts: list[np.ndarray] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # numeric straight to float in the driver's C loader: no Decimal per value,
            # and no cast for the server to compute (measured: the casts cost more).
            cursor.cursor.adapters.register_loader("numeric", FloatLoader)
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(_CHUNK):
            parts.append(np.asarray(chunk, dtype=np.float64).reshape(-1, width))
    return np.concatenate(parts) if parts else np.zeros((0, width))


def _candle_sql(
    columns: str,
    exchange: str,
    symbol: str,
    timeframe: str,
    after: datetime | None,
    until: datetime | None,
    *,
    ordered: bool = True,
) -> tuple[str, list[Any]]:
    """SQL for ``columns`` of one market's candles opening after ``after`` and at or
    before ``until``, oldest first (in no order unless ``ordered``); the open time in ms
    is written ``{time}``."""
    if connection.vendor == "postgresql":
        time_ms = "extract(epoch from open_time) * 1000"
    else:
        # Django keeps SQLite datetimes as text in UTC; decimals come back as floats.
        time_ms = "CAST(strftime('%%s', open_time) AS INTEGER) * 1000"
    params: list[Any] = [exchange, symbol, timeframe]
    where = "exchange = %s AND symbol = %s AND timeframe = %s"
    if after is not None:
        where += " AND open_time > %s"
        params.append(connection.ops.adapt_datetimefield_value(after))
    if until is not None:
        where += " AND open_time <= %s"
        params.append(connection.ops.adapt_datetimefield_value(until))
    table = Candle._meta.db_table
    select = columns.format(time=time_ms)
    order = " ORDER BY open_time" if ordered else ""
    return f"SELECT {select} FROM {table} WHERE {where}{order}", params


def candle_closes(
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    after: datetime | None = None,
    until: datetime | None = None,
) -> CandleCloses:
    """The open times (ms) and closes of one market's candles opening after ``after`` and
    at or before ``until``, oldest first: what marking positions to market needs, in a
    third of ``candle_arrays``' memory."""
    sql, params = _candle_sql("{time}, close", exchange, symbol, timeframe, after, until)
    return CandleCloses.from_table(_float_rows(sql, params, 2))


# SQLite allows 500 terms in a compound SELECT; fewer keeps each statement small.
_MARKETS_PER_STATEMENT = 200


def candle_closes_of_markets(
    ranges: Sequence[tuple[str, str, str, datetime | None, datetime | None]],
) -> list[CandleCloses]:
    """``candle_closes`` of each ``(exchange, symbol, timeframe, after, until)`` of
    ``ranges``, in that order, read with one statement per 200 markets (a UNION ALL)
    instead of one per market: a live book's refresh of 200 markets spent 40 ms on the
    round trips alone."""
    if connection.vendor == "postgresql":
        return _closes_of_markets_postgresql(ranges)
    found: list[CandleCloses] = []
    for start in range(0, len(ranges), _MARKETS_PER_STATEMENT):
        chunk = ranges[start : start + _MARKETS_PER_STATEMENT]
        parts: list[str] = []
        params: list[Any] = []
        for number, (exchange, symbol, timeframe, after, until) in enumerate(chunk):
            sql, where = _candle_sql(
                f"{number}, {{time}}, close",
                exchange,
                symbol,
                timeframe,
                after,
                until,
                ordered=False,
            )
            parts.append(sql)
            params += where
        values = _float_rows(f"{' UNION ALL '.join(parts)} ORDER BY 1, 2", params, 3)
        which = np.rint(values[:, 0]).astype(np.int64)
        bounds = np.searchsorted(which, np.arange(len(chunk) + 1))
        found += [
            CandleCloses.from_table(values[bounds[number] : bounds[number + 1]])
            for number in range(len(chunk))
        ]
    return found


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
    sql, params = _candle_sql(
        "{time}, open, high, low, close, volume", exchange, symbol, timeframe, after, until
    )
    if newest is not None:
        sql = f"{sql} DESC LIMIT {int(newest)}"
    values = _float_rows(sql, params, 6)
    if newest is not None:
        values = values[::-1]
    return CandleArrays.from_table(values)


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
    # Each end read alone from the unique index's end (an ORDER BY ... LIMIT 1): a
    # MIN/MAX aggregate on a just-loaded table, before its first ANALYZE, was planned as
    # a scan of every candle of the market (90,070 candles: 41-55 ms, against 0.1 ms).
    times = rows.values_list("open_time", flat=True)
    first = times.order_by("open_time").first()
    if first is None:
        return None
    last = times.order_by("-open_time").first()
    assert last is not None
    return first, last


# Every market's range as five arrays, one index range scan a market (LATERAL): one
# statement whatever the number of markets, planned once, where a UNION ALL of 200
# SELECTs took the server longer to parse and plan than to read the candles.
_CLOSES_OF_MARKETS = f"""
SELECT m.n, extract(epoch from c.open_time) * 1000, c.close
FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[])
     WITH ORDINALITY AS m (exchange, symbol, timeframe, after, until, n)
CROSS JOIN LATERAL (
    SELECT open_time, close FROM {Candle._meta.db_table}
    WHERE exchange = m.exchange AND symbol = m.symbol AND timeframe = m.timeframe
      AND open_time > coalesce(m.after, '-infinity'::timestamptz)
      AND open_time <= coalesce(m.until, 'infinity'::timestamptz)
) AS c
ORDER BY m.n, c.open_time
"""


def _closes_of_markets_postgresql(
    ranges: Sequence[tuple[str, str, str, datetime | None, datetime | None]],
) -> list[CandleCloses]:
    if not ranges:
        return []
    columns = [list(column) for column in zip(*ranges, strict=True)]
    values = _float_rows(_CLOSES_OF_MARKETS, columns, 3)
    which = np.rint(values[:, 0]).astype(np.int64) - 1
    bounds = np.searchsorted(which, np.arange(len(ranges) + 1))
    return [
        CandleCloses.from_table(values[bounds[number] : bounds[number + 1]])
        for number in range(len(ranges))
    ]
