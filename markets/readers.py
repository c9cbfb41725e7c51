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

An empty file, a binary file (a NUL byte, or bytes that are not UTF-8) and structural
problems (bad JSON, missing columns, a value that is not a number or a date,
a row of the wrong length) raise ``CandleFileError`` naming the line or JSON index.
Values that parse but are wrong (NaN, high below low, a missing price) are not file
errors: they travel on to cleaning, which rejects those rows and keeps the rest.
"""

import csv
import json
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from markets.cleaning import RawCandle
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
            if path.suffix.lower() == ".json" or head.lstrip()[:1] in ("[", "{"):
                yield from read_ohlcv_json(head + handle.read(), name=str(path))
                return
            handle.seek(0)
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


def _csv_rows(lines: Iterable[str], name: str) -> Iterator[RawCandle]:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise CandleFileError(f"{name}: line 1: the file is empty") from None
    except csv.Error as exc:
        raise CandleFileError(f"{name}: line 1: {exc}") from None
    time_index, time_column, value_indexes = _columns(header, name)

    try:
        for record in reader:
            where = f"line {reader.line_num}"
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                raise CandleFileError(
                    f"{name}: {where}: expected {len(header)} fields like the header, "
                    f"got {len(record)}"
                )
            time_ms = _csv_time(record[time_index], time_column, name, where)
            open_, high, low, close, volume = (
                _csv_value(record[index], field, name, where)
                for field, index in zip(VALUE_COLUMNS, value_indexes, strict=True)
            )
            yield RawCandle(time_ms, open_, high, low, close, volume, where=where)
    except csv.Error as exc:
        raise CandleFileError(f"{name}: line {reader.line_num}: {exc}") from None


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
