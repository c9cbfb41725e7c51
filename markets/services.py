"""Writes of candles: upsert, load from a file, sync from an exchange, generate synthetic.

Every path ends in ``candles_upsert``, so a candle is stored the same way whatever its
source, and loading the same data twice changes nothing.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Context, Decimal
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

from django.db import IntegrityError, connection, transaction
from django.db.models import DecimalField, Max, QuerySet

from markets.bars import Bar
from markets.cleaning import (
    CandleSorter,
    CleanedCandles,
    Conflict,
    Gap,
    Rejection,
    RowsChangedError,
    SpooledBars,
    clean_candles,
)
from markets.errors import CandleFileError, MarketDataError
from markets.gateway import ExchangeGateway, OnPage
from markets.identifiers import check_exchange_name, check_symbol, check_timeframe
from markets.models import Candle
from markets.readers import candle_file_digest, iter_candle_rows, new_digest
from markets.synthetic import DEFAULT_DAILY_VOLATILITY, DEFAULT_START_PRICE, synthetic_bars
from markets.timestamps import floor_to_grid, utc_from_ms

logger = logging.getLogger("markets")

UNIQUE_FIELDS = ["exchange", "symbol", "timeframe", "open_time"]
UPDATE_FIELDS = ["open", "high", "low", "close", "volume", "source"]
# Without an explicit lookback, a first sync reaches back this many candles
# (Kraken serves the latest 720 at most).
DEFAULT_LOOKBACK_CANDLES = 720
_BATCH_SIZE = 1000
# A file load stores its kept candles this many at a time (all in one transaction).
CHUNK_ROWS = 10_000
_WIDE = Context(prec=60)


@dataclass(frozen=True)
class CandleLoadSummary:
    """What one load, sync or generation stored and what cleaning reported."""

    exchange: str
    symbol: str
    timeframe: str
    source: str
    rows: int
    created: int
    unchanged: int
    restated: int
    cleaned: CleanedCandles

    @property
    def loaded(self) -> int:
        """Candles now stored as given (new plus already stored with the same values)."""
        return self.created + self.unchanged

    @property
    def rejections(self) -> list[Rejection]:
        """Rows that were not loaded, each with its location and reason (the first
        ``LISTED``; ``rejected`` is the total)."""
        return self.cleaned.rejections

    @property
    def rejected(self) -> int:
        """How many rows were rejected, all reasons together."""
        return self.cleaned.rejected

    @property
    def merged(self) -> int:
        """Identical duplicate rows merged into one candle."""
        return self.cleaned.merged

    @property
    def conflicts(self) -> list[Conflict]:
        """Timestamps given different values by different rows (none of those rows loaded)."""
        return self.cleaned.conflicts

    @property
    def gaps(self) -> list[Gap]:
        """Runs of missing candles between the loaded ones."""
        return self.cleaned.gaps

    @property
    def dropped_open(self) -> bool:
        """Whether a candle still open at the time of loading was left out."""
        return self.cleaned.dropped_open

    @property
    def first(self) -> datetime | None:
        """Open time of the oldest loaded candle."""
        return self.cleaned.first

    @property
    def last(self) -> datetime | None:
        """Open time of the newest loaded candle."""
        return self.cleaned.last

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (for task results and logs)."""
        return {
            "exchange": self.exchange,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "source": self.source,
            "rows": self.rows,
            "loaded": self.loaded,
            "created": self.created,
            "unchanged": self.unchanged,
            "restated": self.restated,
            "rejected": self.rejected,
            "spliced": self.cleaned.spliced,
            "fillers": self.cleaned.fillers,
            "out_of_range": self.cleaned.out_of_range,
            "out_of_order": self.cleaned.out_of_order,
            "merged": self.merged,
            "conflicts": self.cleaned.conflicted,
            "gaps": self.cleaned.gap_total,
            "missing": self.cleaned.missing,
            "dropped_open": self.dropped_open,
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
        }


class Upserted(NamedTuple):
    """What ``candles_upsert`` did: candles stored new; candles already stored with the
    same values; and restated candles (already stored with other values), which are
    kept as first stored, not overwritten, and logged."""

    created: int
    unchanged: int
    restated: int


def candles_upsert(
    *, exchange: str, symbol: str, timeframe: str, bars: Sequence[Bar], source: str
) -> Upserted:
    """Store ``bars`` on (exchange, symbol, timeframe, open time) in one transaction.

    A candle already stored is never overwritten: history that signals were computed on
    does not change under them. One that comes again with other values (an exchange
    restating a closed candle, a file disagreeing with the exchange) is counted as
    restated and logged with both versions. Of two bars with one open time in ``bars``
    the last wins (``SpooledBars``, a file load's chunk, never has two)."""
    if source not in Candle.Source.values:
        raise ValueError(f"source must be one of {', '.join(Candle.Source.values)}")
    if isinstance(bars, SpooledBars) and connection.vendor == "postgresql":
        # A file load's chunk goes to COPY as the text it was spooled as: no Bar is made.
        if not bars:
            return Upserted(0, 0, 0)
        with transaction.atomic():
            created, unchanged, restated, shown = _upsert_copy(
                exchange, symbol, timeframe, _CopiedText(bars), source
            )
        _log_restated(exchange, symbol, timeframe, restated, shown)
        return Upserted(created, unchanged, restated)
    by_time = {bar.open_time: bar for bar in bars}
    if not by_time:
        return Upserted(0, 0, 0)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            created, unchanged, restated, shown = _upsert_copy(
                exchange, symbol, timeframe, by_time, source
            )
        else:
            created, unchanged, restated, shown = _upsert_orm(
                exchange, symbol, timeframe, by_time, source
            )
    _log_restated(exchange, symbol, timeframe, restated, shown)
    return Upserted(created, unchanged, restated)


def _log_restated(
    exchange: str, symbol: str, timeframe: str, restated: int, shown: "list[_Restated]"
) -> None:
    if restated:
        logger.warning(
            "[CANDLES] %d restated candle(s) of %s %s %s kept as first stored, not "
            "overwritten: %s%s",
            restated,
            exchange,
            symbol,
            timeframe,
            "; ".join(
                f"{open_time:%Y-%m-%d %H:%M} stored o/h/l/c/v {'/'.join(map(str, old))}, "
                f"now {'/'.join(map(str, new))}"
                for open_time, old, new in shown
            ),
            " ..." if restated > _RESTATED_SHOWN else "",
        )


_Restated = tuple[datetime, tuple[Decimal, ...], tuple[Decimal, ...]]
_VALUES = ("open", "high", "low", "close", "volume")
_RESTATED_SHOWN = 5


def _upsert_orm(
    exchange: str, symbol: str, timeframe: str, by_time: dict[datetime, Bar], source: str
) -> tuple[int, int, int, list[_Restated]]:
    """``candles_upsert`` through the ORM (SQLite): created, unchanged, restated and the
    first restated candles with both versions."""
    restated: list[_Restated] = []
    unchanged = 0
    stored_rows = (
        _market(exchange, symbol, timeframe)
        .filter(open_time__gte=min(by_time), open_time__lte=max(by_time))
        .values_list("open_time", *_VALUES)
        .iterator(chunk_size=_BATCH_SIZE)
    )
    existing = {row[0]: tuple(row[1:]) for row in stored_rows}
    for open_time, old in sorted(existing.items()):
        bar = by_time.get(open_time)
        if bar is None:
            continue
        new = tuple(_stored(getattr(bar, name), name) for name in _VALUES)
        if new == old:
            unchanged += 1
        else:
            restated.append((open_time, old, new))
    # Model instances are built one batch at a time: a list of them all is what made
    # large loads take gigabytes.
    pending = (bar for open_time, bar in by_time.items() if open_time not in existing)
    created = 0
    while batch := list(islice(pending, _BATCH_SIZE)):
        Candle.objects.bulk_create(
            [_candle(exchange, symbol, timeframe, bar, source) for bar in batch],
            ignore_conflicts=True,
        )
        created += len(batch)
    return created, unchanged, len(restated), restated[:_RESTATED_SHOWN]


class _CopiedText(NamedTuple):
    """A file load's chunk for ``_upsert_copy``: its rows as COPY text (see
    ``SpooledBars.copy_text``) and the first and last open time among them."""

    bars: SpooledBars


def _upsert_copy(
    exchange: str,
    symbol: str,
    timeframe: str,
    incoming: dict[datetime, Bar] | _CopiedText,
    source: str,
) -> tuple[int, int, int, list[_Restated]]:
    """``candles_upsert`` on PostgreSQL, in at most six statements whatever the number of bars:
    the bars go through ``COPY`` into a temporary table (the replay's bulk path), which
    is then compared with and added to the candle table in SQL. Stored candles are never
    updated; ``ON CONFLICT DO NOTHING`` leaves a candle another writer stored meanwhile
    as it stored it (not counted as created).

    ``incoming`` is bars by open time, or a file load's chunk as text: that goes into a
    table of its own whose value columns have the candle table's types (so a value is
    rounded to 12 places there, never again), the open time as epoch milliseconds."""
    table = Candle._meta.db_table
    market = [exchange, symbol, timeframe]
    with connection.cursor() as cursor:
        # ON COMMIT DROP: the table lives as long as the caller's transaction, so the
        # chunks of one file load share it and nothing is left on a pooled connection.
        if isinstance(incoming, _CopiedText):
            text = incoming.bars.copy_text()
            columns = ", ".join(f"{name} {_column_type(name)}" for name in _VALUES)
            # No key: a chunk's open times are distinct (the sorter keeps one row of a
            # time), and an index to build costs the COPY about half its time.
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {_INCOMING_TEXT} (open_ms bigint, {columns}) "
                "ON COMMIT DROP"
            )
            cursor.execute(f"TRUNCATE {_INCOMING_TEXT}")
            with cursor.cursor.copy(f"COPY {_INCOMING_TEXT} FROM STDIN") as copy:
                copy.write(text)
            # Exact: a float8 holds every epoch microsecond up to the year 2100.
            rows = (
                "(SELECT timestamptz 'epoch' + open_ms * interval '1 millisecond' AS open_time, "
                f"{', '.join(_VALUES)} FROM {_INCOMING_TEXT})"
            )
            first, last = (
                utc_from_ms(incoming.bars.first_ms),
                utc_from_ms(incoming.bars.last_ms),
            )
        else:
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {_INCOMING} (open_time timestamptz PRIMARY KEY, "
                "open numeric, high numeric, low numeric, close numeric, volume numeric) "
                "ON COMMIT DROP"
            )
            cursor.execute(f"TRUNCATE {_INCOMING}")
            with cursor.cursor.copy(f"COPY {_INCOMING} FROM STDIN") as copy:
                for open_time, bar in incoming.items():
                    copy.write_row(
                        (open_time, *(str(_stored(getattr(bar, name), name)) for name in _VALUES))
                    )
            rows = _INCOMING
            first, last = min(incoming), max(incoming)
        same = " AND ".join(f"c.{name} = i.{name}" for name in _VALUES)
        # The chunk's time range lets PostgreSQL read only the stored candles it covers
        # through the unique index; without it (a temporary table has no statistics) it
        # scanned the whole candle table for every chunk.
        stored = (
            f"FROM {rows} i JOIN {table} c ON c.exchange = %s AND c.symbol = %s "
            "AND c.timeframe = %s AND c.open_time = i.open_time "
            "AND c.open_time >= %s AND c.open_time <= %s"
        )
        market_range: list[str | datetime] = [*market, first, last]
        cursor.execute(
            f"SELECT count(*) FILTER (WHERE {same}), count(*) FILTER (WHERE NOT ({same})) "
            + stored,
            market_range,
        )
        unchanged, restated_count = cursor.fetchone()
        restated: list[_Restated] = []
        if restated_count:
            old = ", ".join(f"c.{name}" for name in _VALUES)
            new = ", ".join(f"i.{name}" for name in _VALUES)
            cursor.execute(
                f"SELECT i.open_time, {old}, {new} {stored} WHERE NOT ({same}) "
                f"ORDER BY i.open_time LIMIT {_RESTATED_SHOWN}",
                market_range,
            )
            restated = [(row[0], tuple(row[1:6]), tuple(row[6:11])) for row in cursor.fetchall()]
        insert = (
            f"INSERT INTO {table} (exchange, symbol, timeframe, open_time, open, high, low, "
            "close, volume, source, created_at) "
            "SELECT %s, %s, %s, i.open_time, i.open, i.high, i.low, i.close, i.volume, %s, "
            f"now() FROM {rows} i"
        )
        created = None
        if not unchanged and not restated_count:
            # None of the chunk's candles is stored (a first load of the range): a plain
            # INSERT, about twice as fast as ON CONFLICT's speculative insertion (90,070
            # rows: 0.5-0.85 s against 1.1-1.4 s). A candle another writer stored since
            # the count makes it fail: then the chunk goes in as below, the savepoint
            # rolled back.
            try:
                with transaction.atomic():
                    cursor.execute(insert, [*market, source])
                    created = cursor.rowcount
            except IntegrityError:
                created = None
        if created is None:
            cursor.execute(f"{insert} ON CONFLICT DO NOTHING", [*market, source])
            created = cursor.rowcount
    return created, unchanged, restated_count, restated


_INCOMING_TEXT = "markets_candle_incoming_text"
_INCOMING = "markets_candle_incoming"


def candles_load_file(
    *,
    path: Path | str,
    exchange: str,
    symbol: str,
    timeframe: str,
    now: datetime,
    chunk_rows: int = CHUNK_ROWS,
    on_progress: Callable[[str, int], None] | None = None,
) -> CandleLoadSummary:
    """Read a JSON/CSV candle file, clean it and upsert the good candles with source=file.

    ``on_progress(stage, count)``, when given, hears how far each pass got: ("checked",
    rows read so far) during the first pass, ("stored", candles stored so far) during
    the second.

    Raises ``CandleFileError`` when the file is missing, malformed (the message names the
    line) or holds no rows; bad rows inside a readable file (including implausible
    timestamps, fillers without trades and spliced repeats) are rejected and reported.
    Rows repeating a timestamp with identical values are merged; rows giving one
    timestamp different values are a conflict: none of them is stored and
    ``summary.conflicts`` names every row and its values.

    Memory stays bounded whatever the size of a CSV file: one pass streams the rows
    through the checks, keeps about 25 bytes per row in memory (``CandleSorter``) and
    writes the accepted rows, as text, to a temporary file; a second pass reads that back
    and stores the kept candles ``chunk_rows`` at a time. Duplicates, conflicts, order and
    gaps are judged over the whole file, so chunk boundaries change nothing. All chunks
    are stored in ONE transaction: a failure part-way (the database, a value too large
    for its column, the file changing while it is loaded) stores nothing and raises.
    """
    check_exchange_name(exchange)
    check_symbol(symbol)
    step = check_timeframe(timeframe)
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    file = Path(path)
    digest = new_digest()
    created = unchanged = restated = chunks = 0
    with CandleSorter(timeframe=step, now=now, reject_fillers=True) as sorter:
        checked = None if on_progress is None else partial(on_progress, "checked")
        sorter.scan_spooled(iter_candle_rows(file, digest), on_count=checked)
        if not sorter.rows:
            raise CandleFileError(f"{path}: the file holds no candle rows")
        sorter.decide()
        try:
            with transaction.atomic():
                for chunk in sorter.spooled_chunks(chunk_rows):
                    done = candles_upsert(
                        exchange=exchange,
                        symbol=symbol,
                        timeframe=timeframe,
                        bars=chunk,
                        source=Candle.Source.FILE,
                    )
                    created += done.created
                    unchanged += done.unchanged
                    restated += done.restated
                    chunks += 1
                    if on_progress is not None:
                        on_progress("stored", created + unchanged + restated)
                # What was checked and stored is the file as read; if it is not the file
                # as it is now, the report would not describe it: store nothing.
                if candle_file_digest(file) != digest.hexdigest():
                    raise RowsChangedError("its bytes are not those the check read")
        except RowsChangedError as exc:
            raise CandleFileError(
                f"{path}: the file changed while it was being loaded ({exc}); nothing was stored"
            ) from None
    summary = CandleLoadSummary(
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        source=Candle.Source.FILE,
        rows=sorter.rows,
        created=created,
        unchanged=unchanged,
        restated=restated,
        cleaned=sorter.result(),
    )
    logger.info(
        "loaded %s from %s in %d chunk(s) of up to %d rows: %s",
        _market_label(summary),
        path,
        chunks,
        chunk_rows,
        summary.as_dict(),
    )
    return summary


def candles_sync(
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    since: datetime,
    now: datetime,
    until: datetime | None = None,
    gateway: ExchangeGateway | None = None,
    on_page: OnPage | None = None,
) -> CandleLoadSummary:
    """Fetch candles opening in [since, until or now) from the exchange, clean them
    (the still-open candle is dropped) and upsert them with source=exchange.

    Raises the gateway's errors (``ExchangeRequestError``, ``ExchangeUnavailableError``,
    ``ExchangeDataError``, ``UnknownExchangeError``); nothing is written then.
    """
    check_symbol(symbol)
    step = check_timeframe(timeframe)
    if gateway is None:
        gateway = ExchangeGateway.for_exchange(exchange)
    elif gateway.exchange_id != exchange:
        raise ValueError(f"the gateway talks to {gateway.exchange_id}, not {exchange}")
    end = min(until, now) if until is not None else now
    rows = gateway.fetch_ohlcv(symbol, timeframe, since, end, on_page=on_page)
    cleaned = clean_candles(rows, timeframe=step, now=now)
    summary = _store(exchange, symbol, timeframe, Candle.Source.EXCHANGE, len(rows), cleaned)
    logger.info("synced %s: %s", _market_label(summary), summary.as_dict())
    return summary


def candles_sync_latest(
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    now: datetime,
    lookback: timedelta | None = None,
    gateway: ExchangeGateway | None = None,
) -> CandleLoadSummary:
    """Sync from the candle after the newest stored one up to ``now``, but never from
    further back than ``lookback`` (default: 720 candles; rounded down to the candle
    grid) so a stale market catches up with a bounded number of pages."""
    step = check_timeframe(timeframe)
    horizon = floor_to_grid(
        now - (lookback if lookback is not None else step * DEFAULT_LOOKBACK_CANDLES), step
    )
    newest = _market(exchange, symbol, timeframe).aggregate(newest=Max("open_time"))["newest"]
    since = max(newest + step, horizon) if newest is not None else horizon
    return candles_sync(
        exchange=exchange, symbol=symbol, timeframe=timeframe, since=since, now=now, gateway=gateway
    )


def candles_generate_synthetic(
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    count: int,
    end: datetime,
    seed: int,
    start_price: Decimal = DEFAULT_START_PRICE,
    daily_volatility: float = DEFAULT_DAILY_VOLATILITY,
) -> CandleLoadSummary:
    """Store ``count`` synthetic candles (seeded random walk, see ``markets.synthetic``)
    ending with the last candle closed at ``end``, with source=synthetic.

    Refuses (``MarketDataError``) to overwrite candles from an exchange or a file.
    """
    check_exchange_name(exchange)
    check_symbol(symbol)
    step = check_timeframe(timeframe)
    if count < 1:
        raise ValueError("count must be at least 1")
    bars = synthetic_bars(
        timeframe=step,
        count=count,
        end=end,
        seed=seed,
        start_price=start_price,
        daily_volatility=daily_volatility,
    )
    real = (
        _market(exchange, symbol, timeframe)
        .filter(open_time__gte=bars[0].open_time, open_time__lte=bars[-1].open_time)
        .exclude(source=Candle.Source.SYNTHETIC)
    )
    if real.exists():
        raise MarketDataError(
            f"{exchange} {symbol} {timeframe} already has {real.count()} real candles between "
            f"{bars[0].open_time:%Y-%m-%d %H:%M} and {bars[-1].open_time:%Y-%m-%d %H:%M}; "
            "synthetic data never replaces them (use another exchange name, e.g. 'synthetic')"
        )
    cleaned = CleanedCandles(bars=bars)
    summary = _store(exchange, symbol, timeframe, Candle.Source.SYNTHETIC, count, cleaned)
    logger.warning(
        "generated %d SYNTHETIC candles for %s (seed %d): not market data",
        count,
        _market_label(summary),
        seed,
    )
    return summary


def _store(
    exchange: str, symbol: str, timeframe: str, source: str, rows: int, cleaned: CleanedCandles
) -> CandleLoadSummary:
    created, unchanged, restated = candles_upsert(
        exchange=exchange, symbol=symbol, timeframe=timeframe, bars=cleaned.bars, source=source
    )
    return CandleLoadSummary(
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        source=source,
        rows=rows,
        created=created,
        unchanged=unchanged,
        restated=restated,
        cleaned=cleaned,
    )


def _candle(exchange: str, symbol: str, timeframe: str, bar: Bar, source: str) -> Candle:
    return Candle(
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        open_time=bar.open_time,
        open=_stored(bar.open, "open"),
        high=_stored(bar.high, "high"),
        low=_stored(bar.low, "low"),
        close=_stored(bar.close, "close"),
        volume=_stored(bar.volume, "volume"),
        source=source,
    )


def _market(exchange: str, symbol: str, timeframe: str) -> QuerySet[Candle]:
    return Candle.objects.filter(exchange=exchange, symbol=symbol, timeframe=timeframe)


def _market_label(summary: CandleLoadSummary) -> str:
    return f"{summary.exchange} {summary.symbol} {summary.timeframe}"


def _stored(value: Decimal, name: str) -> Decimal:
    """The value rounded to the column's decimal places; ``ValueError`` if it cannot fit."""
    limits = _COLUMN_LIMITS.get(name)
    if limits is None:
        field = Candle._meta.get_field(name)
        if not isinstance(field, DecimalField) or field.decimal_places is None:
            return value
        limits = _COLUMN_LIMITS[name] = (Decimal(1).scaleb(-field.decimal_places), field.max_digits)
    quantum, max_digits = limits
    rounded = value.quantize(quantum, context=_WIDE)
    if max_digits is not None and len(rounded.as_tuple().digits) > max_digits:
        raise ValueError(f"{name} {value} is too large to store")
    return rounded


def _column_type(name: str) -> str:
    """The SQL type of a decimal column of the candle table, e.g. ``numeric(30, 12)``."""
    field = Candle._meta.get_field(name)
    if not isinstance(field, DecimalField):
        raise TypeError(f"{name} is not a decimal column")
    return f"numeric({field.max_digits}, {field.decimal_places})"


# Per decimal column of the candle table: its quantum and maximum digits (read once).
_COLUMN_LIMITS: dict[str, tuple[Decimal, int | None]] = {}
