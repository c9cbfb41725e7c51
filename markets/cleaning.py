"""Turn raw OHLCV rows from a file or an exchange into closed, consistent candles.

Pure code: no Django, no clock (``now`` comes in as an argument). The rules:

- rows are sorted by open time; a timestamp seen twice with the very same values is
  stored once and counts as one merge; a timestamp seen in two or more rows with
  DIFFERENT values is a conflict: we cannot know which row is right, so none of them is
  kept, and the conflict is reported with the location and values of every row involved
  (the other timestamps still load);
- an open time that is not plausible epoch milliseconds is rejected: below 10^11 it
  "looks like seconds, not milliseconds", and anything before 2009 or from 2100 on
  (e.g. a 16-digit microsecond value) is "out of range";
- candles that have not closed yet at ``now`` are dropped: the last one is normally
  still open, so its prices are not final (one opening up to a candle after ``now`` is
  taken for clock skew and dropped the same way);
- a row is rejected, with its location and the reason, when a price is missing, not a
  number, NaN or not positive, the volume is negative, the OHLC values contradict
  each other, or the open time is off the timeframe grid or further in the future;
- missing steps between consecutive candles are reported as gaps, never filled.
"""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import groupby, pairwise

from markets.bars import Bar
from markets.timestamps import is_on_grid, utc_from_ms

logger = logging.getLogger("markets")

Number = Decimal | str | int | float
_PRICE_FIELDS = ("open", "high", "low", "close")
_LOGGED_REASONS = 5
# Plausible candle open times in epoch milliseconds: [2009-01-01, 2100-01-01).
_EARLIEST_MS = 1_230_768_000_000
_LATEST_MS = 4_102_444_800_000
# Epoch seconds stay below this until the year 5138; epoch ms pass it in early 1973.
_SECONDS_BELOW = 100_000_000_000


@dataclass(frozen=True, slots=True)
class RawCandle:
    """One unchecked OHLCV row: open time in epoch ms, values as read (``None`` = missing).

    ``where`` locates the row for error messages, e.g. ``line 12`` or ``index 3``.
    """

    time_ms: int
    open: Number | None
    high: Number | None
    low: Number | None
    close: Number | None
    volume: Number | None
    where: str = ""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A row that was not loaded, where it was and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Conflict:
    """Rows with one open time but different values; none of them was loaded."""

    open_time: datetime
    rows: tuple[tuple[str, Bar], ...]

    def __str__(self) -> str:
        shown = " vs ".join(f"{where} ({_values(bar)})" for where, bar in self.rows)
        return f"{self.open_time:%Y-%m-%d %H:%M}: {shown}"


@dataclass(frozen=True, slots=True)
class Gap:
    """Consecutive missing candles: open times ``start`` through ``end``, ``missing`` of them."""

    start: datetime
    end: datetime
    missing: int

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} ({self.missing} missing)"


@dataclass(frozen=True)
class CleanedCandles:
    """What cleaning kept and what it did: closed candles oldest first, plus the report."""

    bars: list[Bar]
    rejections: list[Rejection] = field(default_factory=list)
    merged: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    dropped_open: bool = False
    reordered: bool = False
    gaps: list[Gap] = field(default_factory=list)

    @property
    def missing(self) -> int:
        """Total number of candles missing inside the gaps."""
        return sum(gap.missing for gap in self.gaps)


def clean_candles(
    rows: Iterable[RawCandle], *, timeframe: timedelta, now: datetime
) -> CleanedCandles:
    """Closed, valid, de-duplicated candles in time order, with every rejection, merge,
    the dropped open candle and the gaps reported (see the module docstring)."""
    rejections: list[Rejection] = []
    accepted: list[tuple[str, Bar]] = []
    dropped_open = False
    total = 0
    for index, raw in enumerate(rows):
        total += 1
        where = raw.where or f"row {index}"
        checked = _checked(raw, timeframe)
        if isinstance(checked, str):
            rejections.append(Rejection(where, checked))
        elif checked.open_time > now + timeframe:
            rejections.append(
                Rejection(where, f"open time {checked.open_time:%Y-%m-%d %H:%M} is in the future")
            )
        elif checked.open_time + timeframe > now:
            # Up to one candle ahead of ``now`` is clock skew, not bad data: treat it as open.
            dropped_open = True
        else:
            accepted.append((where, checked))

    reordered = any(a[1].open_time > b[1].open_time for a, b in pairwise(accepted))
    # A stable sort keeps input order among equal times, so conflicts list rows in file order.
    accepted.sort(key=lambda item: item[1].open_time)
    bars: list[Bar] = []
    conflicts: list[Conflict] = []
    merged = 0
    for open_time, group in groupby(accepted, key=lambda item: item[1].open_time):
        same_time = list(group)
        distinct = {bar for _, bar in same_time}
        if len(distinct) == 1:
            bars.append(same_time[0][1])
            merged += len(same_time) - 1
        else:
            conflicts.append(Conflict(open_time, tuple(same_time)))

    result = CleanedCandles(
        bars=bars,
        rejections=rejections,
        merged=merged,
        conflicts=conflicts,
        dropped_open=dropped_open,
        reordered=reordered,
        gaps=find_gaps(bars, timeframe=timeframe),
    )
    _log(result, total)
    return result


def find_gaps(bars: Sequence[Bar], *, timeframe: timedelta) -> list[Gap]:
    """The runs of missing candles between consecutive ``bars`` (sorted by open time)."""
    gaps = []
    for before, after in pairwise(bars):
        missing = (after.open_time - before.open_time) // timeframe - 1
        if missing > 0:
            gaps.append(
                Gap(
                    start=before.open_time + timeframe,
                    end=before.open_time + timeframe * missing,
                    missing=missing,
                )
            )
    return gaps


def _checked(raw: RawCandle, timeframe: timedelta) -> Bar | str:
    """The row as a ``Bar``, or the reason it is rejected."""
    values: dict[str, Decimal] = {}
    for name in (*_PRICE_FIELDS, "volume"):
        value = _decimal(getattr(raw, name))
        if isinstance(value, str):
            return f"{name} {value}"
        values[name] = value
    for name in _PRICE_FIELDS:
        if values[name] <= 0:
            return f"{name} {values[name]} is not positive"
    if values["volume"] < 0:
        return f"volume {values['volume']} is negative"
    high, low = values["high"], values["low"]
    body_top = max(values["open"], values["close"])
    body_bottom = min(values["open"], values["close"])
    if high < low:
        return f"high {high} is below low {low}"
    if high < body_top:
        return f"high {high} is below max(open, close) {body_top}"
    if low > body_bottom:
        return f"low {low} is above min(open, close) {body_bottom}"

    out_of_range = _time_problem(raw.time_ms)
    if out_of_range:
        return out_of_range
    open_time = utc_from_ms(raw.time_ms)
    # ccxt's weekly candles open on Mondays while the epoch was a Thursday, so weeks are exempt.
    if timeframe < timedelta(weeks=1) and not is_on_grid(open_time, timeframe):
        return f"open time {open_time:%Y-%m-%d %H:%M:%S.%f} is not on the {_label(timeframe)} grid"
    return Bar(open_time=open_time, **values)


def _time_problem(time_ms: int) -> str | None:
    """Why ``time_ms`` is not a plausible candle open time in epoch ms, or ``None``."""
    if _EARLIEST_MS <= time_ms < _LATEST_MS:
        return None
    digits = len(str(abs(time_ms)))
    if 0 < time_ms < _SECONDS_BELOW:
        return (
            f"timestamp {time_ms} looks like seconds, not milliseconds "
            "(epoch milliseconds of 2009-2099 have 13 digits)"
        )
    if digits == 13:
        return (
            f"timestamp {time_ms} is out of range ({utc_from_ms(time_ms):%Y-%m-%d %H:%M}; "
            "expected epoch milliseconds from 2009-01-01 up to 2100-01-01)"
        )
    return (
        f"timestamp {time_ms} is out of range ({digits} digits; epoch milliseconds "
        "from 2009-01-01 up to 2100-01-01 have 13)"
    )


def _values(bar: Bar) -> str:
    return (
        f"open {bar.open}, high {bar.high}, low {bar.low}, close {bar.close}, volume {bar.volume}"
    )


def _decimal(value: Number | None) -> Decimal | str:
    """The value as a finite ``Decimal``, or the end of a sentence saying what is wrong."""
    if value is None or value == "":
        return "is missing"
    if isinstance(value, bool):
        return f"{value!r} is not a number"
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        return f"{value!r} is not a number"
    if number.is_nan():
        return "is NaN"
    if not number.is_finite():
        return f"is {number} (not finite)"
    return number


def _label(timeframe: timedelta) -> str:
    seconds = int(timeframe.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _log(result: CleanedCandles, total: int) -> None:
    if result.rejections:
        shown = "; ".join(str(r) for r in result.rejections[:_LOGGED_REASONS])
        more = len(result.rejections) - _LOGGED_REASONS
        logger.warning(
            "cleaning rejected %d of %d candle rows: %s%s",
            len(result.rejections),
            total,
            shown,
            f"; and {more} more" if more > 0 else "",
        )
    if result.conflicts:
        shown = "; ".join(str(c) for c in result.conflicts[:_LOGGED_REASONS])
        more = len(result.conflicts) - _LOGGED_REASONS
        logger.warning(
            "cleaning found %d conflicting duplicate candle timestamps (none of their rows "
            "kept): %s%s",
            len(result.conflicts),
            shown,
            f"; and {more} more" if more > 0 else "",
        )
    if result.merged:
        logger.info("cleaning merged %d identical duplicate candle rows", result.merged)
    if result.gaps:
        logger.info("cleaning found %d gaps (%d missing candles)", len(result.gaps), result.missing)
