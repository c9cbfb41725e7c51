"""Read candle files into raw rows for cleaning.

Two layouts:

- JSON: ccxt's OHLCV array ``[[ms, open, high, low, close, volume], ...]``;
- CSV with a header naming a time column and ``open,high,low,close,volume`` (any case,
  any order, other columns ignored). The time is epoch milliseconds (seconds are
  accepted when the number is clearly seconds, i.e. before the year 5138 as seconds)
  or an ISO date/date-time read as UTC when it carries no zone. A ``timestamp_ms``
  column is never converted: seconds there are rejected by cleaning ("looks like
  seconds, not milliseconds"), as are times before 2009 or from 2100 on.

``iter_candle_file`` reads a CSV line by line (memory does not grow with the file).
``iter_candle_rows`` does the same for ``load_candles`` with a fast path: a CSV row whose
time is epoch digits or a plain ISO date-time without a zone and whose five values are
plain decimals (digits, at most one point, at most 12 digits after it) comes as a
``FastRow`` tuple of its texts, without a ``RawCandle`` or any ``Decimal``; every other
row (JSON, signs, exponents, spaces, quotes, empty or bad cells) comes as the same
``RawCandle`` or ``CandleFileError`` as from ``iter_candle_file``. It also feeds every byte
it reads to a digest, so a later ``candle_file_digest`` tells whether the file changed.

An empty file, a binary file (a NUL byte, or bytes that are not UTF-8) and structural
problems (bad JSON, missing columns, a value that is not a number or a date,
a row of the wrong length) raise ``CandleFileError`` naming the line or JSON index.
Values that parse but are wrong (NaN, high below low, a missing price) are not file
errors: they travel on to cleaning, which rejects those rows and keeps the rest.
"""

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol

from markets.cleaning import FastRow, RawCandle
from markets.errors import CandleFileError
from markets.timestamps import ms_from_utc, parse_utc

# First match wins: an explicit epoch column beats a human-readable date.
TIME_COLUMNS = (
    "timestamp_ms",
    "timestamp",
    "open_time",
    "time",
    "datetime",
    "datetime_utc",
    "date",
)
VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
# Epoch seconds stay below this until the year 5138; epoch ms pass it in early 1973.
_SECONDS_BELOW = 100_000_000_000
_SNIFF_CHARS = 4096
_EPOCH_NUMBER = re.compile(r"^[+-]?\d+(\.\d*)?$")
# Five plain decimals joined by commas: ASCII digits, at most one point and at most 12
# digits after it (what the candle table stores exactly, so the text can go to it as is).
_PLAIN = r"[0-9]+(?:\.[0-9]{1,12})?"
_PLAIN_VALUES = re.compile(rf"{_PLAIN}(?:,{_PLAIN}){{4}}")
_NAIVE_EPOCH = datetime(1970, 1, 1)
_MILLISECOND = timedelta(milliseconds=1)


class Digest(Protocol):
    """What ``iter_candle_rows`` needs of a ``hashlib`` object."""

    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


def read_candle_file(path: Path) -> list[RawCandle]:
    """All rows of a JSON or CSV candle file, in file order, each located by line or index.

    Raises ``CandleFileError`` for a missing/unreadable file or malformed content.
    """
    return list(iter_candle_file(path))


def iter_candle_file(path: Path) -> Iterator[RawCandle]:
    """The rows of a JSON or CSV candle file one by one, in file order.

    A CSV file is read line by line, so memory does not grow with the file; a JSON file
    is parsed whole. Raises ``CandleFileError`` (possibly after yielding some rows) for a
    missing/unreadable file or malformed content.
    """
    for row in iter_candle_rows(path):
        yield row if isinstance(row, RawCandle) else raw_candle(row)


def raw_candle(row: FastRow) -> RawCandle:
    """The ``RawCandle`` of a fast-path row (what the slow path reads from its line)."""
    line, time_ms, open_, high, low, close, volume = row
    return RawCandle(
        time_ms,
        Decimal(open_),
        Decimal(high),
        Decimal(low),
        Decimal(close),
        Decimal(volume),
        where=f"line {line}",
    )


def iter_candle_rows(path: Path, digest: Digest | None = None) -> Iterator[FastRow | RawCandle]:
    """The rows of a JSON or CSV candle file in file order: plain CSV rows as ``FastRow``
    tuples, every other row as a ``RawCandle`` (see the module docstring).

    ``digest``, when given, is updated with every byte of the file as it is read (all of
    them once the rows are exhausted). Raises ``CandleFileError`` like ``iter_candle_file``.
    """
    try:
        with path.open("rb") as raw:
            start = raw.read(_SNIFF_CHARS)
        if b"\x00" in start:
            raise CandleFileError(
                f"{path}: a binary file (a NUL byte at offset {start.index(0)}), not a JSON "
                "or CSV candle file"
            )
        with path.open(encoding="utf-8-sig", newline="") as handle:
            head = handle.read(_SNIFF_CHARS)
            if not head.strip():
                raise CandleFileError(f"{path}: line 1: the file is empty")
            is_json = path.suffix.lower() == ".json" or head.lstrip()[:1] in ("[", "{")
        with path.open("rb") as raw:
            source = io.BufferedReader(_Digesting(raw, digest)) if digest is not None else raw
            with io.TextIOWrapper(source, encoding="utf-8-sig", newline="") as handle:
                if is_json:
                    yield from read_ohlcv_json(handle.read(), name=str(path))
                    return
                yield from _csv_rows(handle, str(path))
    except FileNotFoundError:
        raise CandleFileError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise CandleFileError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} cannot be decoded): "
            "a binary file, not a JSON or CSV candle file"
        ) from None
    except OSError as exc:
        raise CandleFileError(f"{path}: cannot read the file ({exc})") from exc


def new_digest() -> Digest:
    """A digest for ``iter_candle_rows`` and ``candle_file_digest`` (BLAKE2b)."""
    return hashlib.blake2b()


def candle_file_digest(path: Path) -> str:
    """The hex digest of the file's bytes now (as ``new_digest`` makes it); raises
    ``CandleFileError`` when the file cannot be read."""
    digest = new_digest()
    try:
        with path.open("rb") as raw:
            while block := raw.read(1 << 20):
                digest.update(block)
    except FileNotFoundError:
        raise CandleFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise CandleFileError(f"{path}: cannot read the file ({exc})") from exc
    return digest.hexdigest()


class _Digesting(io.RawIOBase):
    """A binary file that feeds every byte read from it to a digest."""

    def __init__(self, raw: io.BufferedReader, digest: Digest) -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer)
        if count:
            self._digest.update(memoryview(buffer)[:count])
        return count


def read_ohlcv_json(text: str, *, name: str = "<json>") -> list[RawCandle]:
    """Rows of a ccxt OHLCV JSON array; ``where`` is ``index N`` (0-based array index)."""
    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=Decimal)
    except json.JSONDecodeError as exc:
        raise CandleFileError(
            f"{name}: line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg})"
        ) from None
    if not isinstance(data, list):
        raise CandleFileError(
            f"{name}: line 1: expected a JSON array of [ms, open, high, low, close, volume] rows"
        )
    rows = []
    for index, item in enumerate(data):
        where = f"index {index}"
        if not isinstance(item, list) or len(item) != 6:
            size = f"{len(item)} values" if isinstance(item, list) else type(item).__name__
            raise CandleFileError(
                f"{name}: {where}: expected [ms, open, high, low, close, volume], got {size}"
            )
        time_ms = _json_time(item[0], name, where)
        open_, high, low, close, volume = (
            _json_value(value, field, name, where)
            for value, field in zip(item[1:], VALUE_COLUMNS, strict=True)
        )
        rows.append(RawCandle(time_ms, open_, high, low, close, volume, where=where))
    return rows


def _csv_rows(lines: Iterable[str], name: str) -> Iterator[FastRow | RawCandle]:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise CandleFileError(f"{name}: line 1: the file is empty") from None
    except csv.Error as exc:
        raise CandleFileError(f"{name}: line 1: {exc}") from None
    time_index, time_column, value_indexes = _columns(header, name)
    width = len(header)
    values_of = itemgetter(*value_indexes)
    in_ms = time_column == "timestamp_ms"
    plain = _PLAIN_VALUES.fullmatch

    try:
        for record in reader:
            if len(record) == width:
                # The fast path: plain values and a time read without Decimal; anything
                # else goes the slow way below, which says what is wrong with it.
                values = values_of(record)
                if plain(",".join(values)):
                    time_ms = _fast_time(record[time_index], in_ms)
                    if time_ms is not None:
                        yield (reader.line_num, time_ms, *values)
                        continue
            where = f"line {reader.line_num}"
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != width:
                raise CandleFileError(
                    f"{name}: {where}: expected {width} fields like the header, got {len(record)}"
                )
            time_ms = _csv_time(record[time_index], time_column, name, where)
            open_, high, low, close, volume = (
                _csv_value(record[index], field, name, where)
                for field, index in zip(VALUE_COLUMNS, value_indexes, strict=True)
            )
            yield RawCandle(time_ms, open_, high, low, close, volume, where=where)
    except csv.Error as exc:
        raise CandleFileError(f"{name}: line {reader.line_num}: {exc}") from None


def _fast_time(text: str, in_ms: bool) -> int | None:
    """What ``_csv_time`` makes of ``text`` when it is ASCII digits or a plain ISO
    date(-time) without a zone; ``None`` for anything else (the slow path decides)."""
    if text.isascii() and text.isdigit():
        number = int(text)
        return number * 1000 if not in_ms and number < _SECONDS_BELOW else number
    # A "-" at index 4 (YYYY-...) never matches _EPOCH_NUMBER, which the slow path tries first.
    if len(text) >= 10 and text[4] == "-":
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            return (moment - _NAIVE_EPOCH) // _MILLISECOND
    return None


def _columns(header: list[str], name: str) -> tuple[int, str, list[int]]:
    """Index and name of the time column and the indexes of open..volume."""
    positions: dict[str, int] = {}
    for index, column in enumerate(header):
        key = column.strip().lower()
        if key in positions and key in (*TIME_COLUMNS, *VALUE_COLUMNS):
            raise CandleFileError(f"{name}: line 1: column {column.strip()!r} appears twice")
        positions.setdefault(key, index)
    time_column = next((column for column in TIME_COLUMNS if column in positions), None)
    if time_column is None:
        raise CandleFileError(
            f"{name}: line 1: no time column in the header {header!r}; "
            f"expected one of {', '.join(TIME_COLUMNS)}"
        )
    missing = [column for column in VALUE_COLUMNS if column not in positions]
    if missing:
        raise CandleFileError(
            f"{name}: line 1: missing column(s) {', '.join(missing)} in the header {header!r}"
        )
    return positions[time_column], time_column, [positions[c] for c in VALUE_COLUMNS]


def _csv_time(cell: str, column: str, name: str, where: str) -> int:
    text = cell.strip()
    if not text:
        raise CandleFileError(f"{name}: {where}: the {column} is empty")
    if _EPOCH_NUMBER.match(text):
        number = Decimal(text)
        if column != "timestamp_ms" and abs(number) < _SECONDS_BELOW:
            number *= 1000
        return int(number)
    try:
        return ms_from_utc(parse_utc(text))
    except ValueError:
        raise CandleFileError(
            f"{name}: {where}: {column} {text!r} is neither epoch milliseconds nor an ISO date-time"
        ) from None


def _csv_value(cell: str, field: str, name: str, where: str) -> Decimal | None:
    text = cell.strip()
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise CandleFileError(f"{name}: {where}: {field} {text!r} is not a number") from None


def _json_time(value: Any, name: str, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    raise CandleFileError(f"{name}: {where}: timestamp {value!r} is not epoch milliseconds")


def _json_value(value: Any, field: str, name: str, where: str) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        return _csv_value(value, field, name, where)
    raise CandleFileError(f"{name}: {where}: {field} {value!r} is not a number")
