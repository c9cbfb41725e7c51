"""Turn raw OHLCV rows from a file or an exchange into closed, consistent candles.

Pure code: no Django, no clock (``now`` comes in as an argument). The rules:

- rows are sorted by open time; a timestamp seen twice keeps the row seen last
  (a later page or a later line is the fresher answer) and counts as one merge;
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
from itertools import pairwise

from markets.bars import Bar
from markets.timestamps import is_on_grid, utc_from_ms

logger = logging.getLogger("markets")

Number = Decimal | str | int | float
_PRICE_FIELDS = ("open", "high", "low", "close")
_LOGGED_REASONS = 5


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
    accepted: list[tuple[int, Bar]] = []
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
            accepted.append((index, checked))

    reordered = any(a[1].open_time > b[1].open_time for a, b in pairwise(accepted))
    # A stable sort keeps input order among equal times, so the last one seen wins below.
    accepted.sort(key=lambda item: item[1].open_time)
    bars: list[Bar] = []
    merged = 0
    for _, bar in accepted:
        if bars and bars[-1].open_time == bar.open_time:
            bars[-1] = bar
            merged += 1
        else:
            bars.append(bar)

    result = CleanedCandles(
        bars=bars,
        rejections=rejections,
        merged=merged,
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

    open_time = utc_from_ms(raw.time_ms)
    # ccxt's weekly candles open on Mondays while the epoch was a Thursday, so weeks are exempt.
    if timeframe < timedelta(weeks=1) and not is_on_grid(open_time, timeframe):
        return f"open time {open_time:%Y-%m-%d %H:%M:%S.%f} is not on the {_label(timeframe)} grid"
    return Bar(open_time=open_time, **values)


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
    if result.merged:
        logger.info("cleaning merged %d duplicate candle timestamps", result.merged)
    if result.gaps:
        logger.info("cleaning found %d gaps (%d missing candles)", len(result.gaps), result.missing)
