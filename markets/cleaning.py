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
- a row is rejected when a value is outside what the candle table stores
  (``markets.models``: 12 places after the point, prices below 10^18, volumes below
  10^26): a positive price or volume below 1E-12 would be stored as 0, a larger one
  cannot be stored at all ("out of the stored range", counted apart);
- spliced data: a run of two or more consecutive candles (volume > 0, not flat) whose
  whole (open, high, low, close, volume) repeats a run of candles at an earlier time
  with the same shift is rejected ("repeats the candle of <time>: spliced data"); the
  real candles of those times are then reported as a gap. A single repeated candle is
  left alone: on a thin market one trade of the same size at the same price makes two
  identical candles;
- with ``reject_fillers`` (file loads), a flat candle without trades (open = high = low
  = close, volume 0) is rejected as "filler: no trades": data vendors write them for
  hours they have no data for;
- missing steps between consecutive candles are reported as gaps, never filled.

Nothing is repaired: every row is either kept as read, merged with an identical row, or
rejected; so no signal can be computed on a changed row.

``CandleSorter`` does this in two passes over the same rows with memory bounded by a few
dozen bytes per row (``scan`` keeps only each row's time, a hash of its values and its
position; ``sort_out`` yields the kept bars in file order), so a file of millions of rows
can be streamed; ``clean_candles`` runs both passes over a list. A file load reads the
file once instead (``scan_spooled``): the rows it accepts go, as text, to a temporary
file on disk, which ``spooled_chunks`` reads back in place of a second pass over the file.
"""

import logging
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from types import TracebackType
from typing import IO, Self, overload

import numpy as np

from markets.bars import Bar
from markets.timestamps import EPOCH, is_on_grid, utc_from_ms

logger = logging.getLogger("markets")

Number = Decimal | str | int | float
_PRICE_FIELDS = ("open", "high", "low", "close")
_LOGGED_REASONS = 5
# Plausible candle open times in epoch milliseconds: [2009-01-01, 2100-01-01).
_EARLIEST_MS = 1_230_768_000_000
_LATEST_MS = 4_102_444_800_000
# Epoch seconds stay below this until the year 5138; epoch ms pass it in early 1973.
_SECONDS_BELOW = 100_000_000_000
# Rejections, conflicts and gaps listed one by one (the rest are counted): a file of
# millions of bad rows must not need gigabytes to say so.
LISTED = 1000
FILLER_REASON = "filler: no trades (open = high = low = close, volume 0)"
# What the candle table stores (``markets.models``: prices 30 digits, volumes 38, both
# with 12 after the point); a test checks these against the model's fields.
SMALLEST_STORED = Decimal("1E-12")
PRICE_CEILING = Decimal("1E+18")
VOLUME_CEILING = Decimal("1E+26")
_WIDE = Context(prec=60)
_MICROSECOND = timedelta(microseconds=1)
# A spooled row (``CandleSorter.scan_spooled``) is one line: where it was read, the
# values as read when they differ from the stored ones, then its COPY text (epoch ms and
# the five values as the candle table stores them, tab-separated), fields split by US.
_UNIT = "\x1f"
# Begins the COPY text of a value the candle table cannot hold once rounded.
_TOO_LARGE = "!"


# A CSV row on ``markets.readers``' fast path: (line number, open time in epoch ms, open,
# high, low, close, volume), the values as plain decimal texts (ASCII digits, at most one
# point and at most 12 digits after it).
FastRow = tuple[int, int, str, str, str, str, str]


class OutOfRange(str):
    """A rejection reason for a value the candle table cannot store as read."""

    __slots__ = ()


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
    """What cleaning kept and what it did: closed candles oldest first, plus the report.

    ``bars`` is empty when the kept candles were streamed to storage instead
    (``CandleSorter.sort_out``); the counts then say how many there were. The lists of
    rejections, conflicts and gaps hold at most ``LISTED`` items; the counts are totals.
    """

    bars: list[Bar]
    rejections: list[Rejection] = field(default_factory=list)
    merged: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    dropped_open: bool = False
    reordered: bool = False
    gaps: list[Gap] = field(default_factory=list)
    out_of_order: int = 0
    spliced: int = 0
    fillers: int = 0
    out_of_range: int = 0
    kept_count: int | None = None
    rejected_count: int | None = None
    conflict_count: int | None = None
    gap_count: int | None = None
    missing_count: int | None = None
    span: tuple[datetime, datetime] | None = None

    @property
    def kept(self) -> int:
        """Candles kept (stored or to be stored)."""
        return len(self.bars) if self.kept_count is None else self.kept_count

    @property
    def rejected(self) -> int:
        """Rows rejected, all reasons together (spliced repeats and fillers included)."""
        return len(self.rejections) if self.rejected_count is None else self.rejected_count

    @property
    def conflicted(self) -> int:
        """Timestamps given different values by different rows (none of them kept)."""
        return len(self.conflicts) if self.conflict_count is None else self.conflict_count

    @property
    def gap_total(self) -> int:
        """Number of runs of missing candles between the kept ones."""
        return len(self.gaps) if self.gap_count is None else self.gap_count

    @property
    def missing(self) -> int:
        """Total number of candles missing inside the gaps."""
        if self.missing_count is not None:
            return self.missing_count
        return sum(gap.missing for gap in self.gaps)

    @property
    def first(self) -> datetime | None:
        """Open time of the oldest kept candle."""
        if self.span:
            return self.span[0]
        return self.bars[0].open_time if self.bars else None

    @property
    def last(self) -> datetime | None:
        """Open time of the newest kept candle."""
        if self.span:
            return self.span[1]
        return self.bars[-1].open_time if self.bars else None


def clean_candles(
    rows: Iterable[RawCandle],
    *,
    timeframe: timedelta,
    now: datetime,
    reject_fillers: bool = False,
) -> CleanedCandles:
    """Closed, valid, de-duplicated candles in time order, with every rejection, merge,
    the dropped open candle and the gaps reported (see the module docstring)."""
    listed = list(rows)
    sorter = CandleSorter(timeframe=timeframe, now=now, reject_fillers=reject_fillers)
    sorter.scan(listed)
    sorter.decide()
    bars = sorted(sorter.sort_out(listed), key=lambda bar: bar.open_time)
    return sorter.result(bars=bars)


class RowsChangedError(ValueError):
    """The rows of the second pass are not those of the first (the file changed)."""


_SKIP, _KEEP, _CONFLICT, _CONFLICT_LISTED, _SPLICED = 0, 1, 2, 3, 4


class CandleSorter:
    """Cleaning in two passes over the same rows, with bounded memory.

    1. ``scan(rows)`` checks each row (rejections, the open candle, fillers) and keeps,
       per accepted row, only its open time, a 64-bit hash of its values and its position
       (about 25 bytes);
    2. ``decide()`` sorts that out with numpy: identical duplicates (merged), conflicting
       ones (none kept), spliced repeats, out-of-order rows and gaps, across the whole
       input (so chunk boundaries of the storing pass do not matter);
    3. ``sort_out(rows)`` goes over the same rows again and yields the kept bars in input
       order (the caller stores them chunk by chunk), collecting the listed conflicts and
       the spliced rows' rejections; it raises ``RowsChangedError`` if the rows differ;
    4. ``result()`` is the report.

    Two rows count as identical when their values hash alike (Python's hash of the five
    values' ``_identity``: equal values, e.g. 2 and 2.0, always do; two different candles
    do so with a chance of about 1 in 10^19).

    A file load uses ``scan_spooled`` and ``spooled_chunks`` in place of ``scan`` and
    ``sort_out``: one pass over the file, the accepted rows kept on disk for the second.
    """

    def __init__(
        self,
        *,
        timeframe: timedelta,
        now: datetime,
        reject_fillers: bool = False,
        listed: int = LISTED,
    ) -> None:
        self.timeframe = timeframe
        self.now = now
        self.reject_fillers = reject_fillers
        self.listed = listed
        self.rows = 0
        self._times = array("q")
        self._hashes = array("q")
        self._ordinals = array("q")
        self._eligible = bytearray()
        self._rejections: list[tuple[int, Rejection]] = []
        self._rejected = 0
        self._fillers = 0
        self._out_of_range = 0
        self._dropped_open = False
        self._out_of_order = 0
        self._latest: int | None = None
        self._status: np.ndarray | None = None
        self._spliced_index = np.zeros(0, dtype=np.int64)
        self._spliced_origin = np.zeros(0, dtype=np.int64)
        self._conflict_rows: dict[int, list[tuple[str, Bar]]] = {}
        self._numbers: dict[str, int] = {}
        self._gaps: list[Gap] = []
        self._span: tuple[datetime, datetime] | None = None
        self._spool: IO[str] | None = None

    def scan(self, rows: Iterable[RawCandle]) -> None:
        """First pass: check every row and remember the accepted ones compactly."""
        for raw in rows:
            self._take(self.rows, raw)
            self.rows += 1

    def _take(self, ordinal: int, raw: RawCandle) -> Bar | None:
        """Check row number ``ordinal`` (from 0) and remember it; its ``Bar`` if accepted."""
        verdict = self._verdict(raw)
        if verdict is None:
            self._dropped_open = True
        elif isinstance(verdict, str):
            if verdict is FILLER_REASON:
                self._fillers += 1
            elif isinstance(verdict, OutOfRange):
                self._out_of_range += 1
            self._reject(ordinal, raw, verdict)
        else:
            if self._latest is not None and raw.time_ms < self._latest:
                self._out_of_order += 1
            else:
                self._latest = raw.time_ms
            self._times.append(raw.time_ms)
            self._hashes.append(
                hash(
                    (
                        _identity(verdict.open),
                        _identity(verdict.high),
                        _identity(verdict.low),
                        _identity(verdict.close),
                        _identity(verdict.volume),
                    )
                )
            )
            self._ordinals.append(ordinal)
            self._eligible.append(verdict.volume > 0 and verdict.high > verdict.low)
            return verdict
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Delete the spool of ``scan_spooled`` (if any)."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def scan_spooled(
        self,
        rows: Iterable[FastRow | RawCandle],
        on_count: Callable[[int], None] | None = None,
    ) -> None:
        """``scan`` for a file load: the same checks, verdicts and counts, but every
        accepted row is also written to a temporary file (``spooled_chunks`` reads it back
        instead of a second pass over the file), and a ``FastRow`` (a plain CSV row, see
        ``markets.readers``) that passes every check is accepted without a ``RawCandle``
        or a ``Bar``; one that does not goes through ``scan``'s own checks, so every
        rejection says what it said before. ``on_count`` hears the rows read so far every
        10,000 rows and at the end."""
        if self._spool is None:
            # Closed (and so deleted) by close(), which the caller's ``with`` calls.
            self._spool = tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n")  # noqa: SIM115
        spool = self._spool
        times, hashes, ordinals = self._times, self._hashes, self._ordinals
        eligible = self._eligible
        step_us = self.timeframe // _MICROSECOND
        on_grid_only = self.timeframe < timedelta(weeks=1)
        # A candle is closed when open + timeframe <= now (in microseconds since the epoch).
        closed_until = (self.now - EPOCH) // _MICROSECOND - step_us
        no_fillers = self.reject_fillers
        smallest, price_ceiling, volume_ceiling = SMALLEST_STORED, PRICE_CEILING, VOLUME_CEILING
        earliest, latest_ms = _EARLIEST_MS, _LATEST_MS
        latest = self._latest
        out = []
        ordinal = self.rows
        for row in rows:
            ordinal += 1
            if on_count is not None and ordinal % 10_000 == 0:
                on_count(ordinal)
            if isinstance(row, tuple):
                line, time_ms, a, b, c, d, e = row
                # Accepted here: exactly the rows ``_verdict`` turns into a Bar. Time in
                # range, on the grid and closed; values positive (volume >= 0: there is
                # no sign on the fast path) and storable, OHLC consistent, not a filler.
                identity: tuple[float | tuple[int, tuple[int, ...], int], ...] = ()
                if not (
                    earliest <= time_ms < latest_ms
                    and (not on_grid_only or time_ms * 1000 % step_us == 0)
                    and time_ms * 1000 <= closed_until
                ):
                    pass
                elif len(a) < 16 and len(b) < 16 and len(c) < 16 and len(d) < 16 and len(e) < 16:
                    # At most 15 digits, at most 12 after the point: each value is below
                    # 1E+15, at least 1E-12 unless 0, and its float is exact enough to
                    # compare and to tell it from any other such value (see _identity).
                    floats = (float(a), float(b), float(c), float(d), float(e))
                    open_f, high_f, low_f, close_f, volume_f = floats
                    if (
                        0 < low_f <= open_f <= high_f
                        and low_f <= close_f <= high_f
                        and not (
                            no_fillers and not volume_f and open_f == high_f == low_f == close_f
                        )
                    ):
                        identity = floats
                        eligible.append(volume_f > 0 and high_f > low_f)
                else:
                    decimals = (Decimal(a), Decimal(b), Decimal(c), Decimal(d), Decimal(e))
                    open_, high, low, close, volume = decimals
                    if (
                        smallest <= low <= open_ <= high < price_ceiling
                        and low <= close <= high
                        and (volume >= smallest or not volume)
                        and volume < volume_ceiling
                        and not (no_fillers and not volume and open_ == high == low == close)
                    ):
                        identity = tuple(map(_identity, decimals))
                        eligible.append(volume > 0 and high > low)
                if identity:
                    if latest is not None and time_ms < latest:
                        self._out_of_order += 1
                    else:
                        latest = time_ms
                    times.append(time_ms)
                    hashes.append(hash(identity))
                    ordinals.append(ordinal - 1)
                    out.append(f"line {line}{_UNIT}{_UNIT}{time_ms}\t{a}\t{b}\t{c}\t{d}\t{e}\n")
                    if len(out) >= 10_000:
                        spool.write("".join(out))
                        out.clear()
                    continue
                row = RawCandle(
                    time_ms,
                    Decimal(a),
                    Decimal(b),
                    Decimal(c),
                    Decimal(d),
                    Decimal(e),
                    where=f"line {line}",
                )
            self._latest = latest
            bar = self._take(ordinal - 1, row)
            latest = self._latest
            if bar is not None:
                out.append(_spool_line(row.where, bar))
                if len(out) >= 10_000:
                    spool.write("".join(out))
                    out.clear()
        spool.write("".join(out))
        self._latest = latest
        self.rows = ordinal
        if on_count is not None:
            on_count(ordinal)

    def decide(self) -> None:
        """Sort out duplicates, conflicts, spliced repeats and gaps (no row is read)."""
        times = np.frombuffer(self._times, dtype=np.int64) if self._times else np.zeros(0, np.int64)
        hashes = (
            np.frombuffer(self._hashes, dtype=np.int64) if self._hashes else np.zeros(0, np.int64)
        )
        count = len(times)
        status = np.full(count, _SKIP, dtype=np.int8)
        merged = conflicted = 0
        if count:
            order = np.argsort(times, kind="stable")
            sorted_times = times[order]
            sorted_hashes = hashes[order]
            starts = np.flatnonzero(np.r_[True, sorted_times[1:] != sorted_times[:-1]])
            sizes = np.diff(np.r_[starts, count])
            differs = sorted_hashes != np.repeat(sorted_hashes[starts], sizes)
            conflict_group = np.add.reduceat(differs.astype(np.int64), starts) > 0
            merged = int((sizes[~conflict_group] - 1).sum())
            conflicted = int(conflict_group.sum())
            status[order[starts[~conflict_group]]] = _KEEP
            in_conflict = np.repeat(conflict_group, sizes)
            status[order[in_conflict]] = _CONFLICT
            if conflicted:
                listed_times = sorted_times[starts[conflict_group]][: self.listed]
                shown = np.isin(times, listed_times) & (status == _CONFLICT)
                status[shown] = _CONFLICT_LISTED
            del order, sorted_times, sorted_hashes, differs, in_conflict
            self._find_spliced(times, hashes, status)
        self._status = status
        kept_times = np.sort(times[status == _KEEP])
        self._numbers = {"merged": merged, "conflicted": conflicted, "kept": len(kept_times)}
        self._find_gaps(kept_times)

    def sort_out(self, rows: Iterable[RawCandle]) -> Iterator[Bar]:
        """Second pass over the same rows: the kept bars, in input order."""
        status = self._status
        if status is None:
            raise RuntimeError("call decide() before sort_out()")
        accepted = len(self._ordinals)
        position = 0
        ordinal = -1
        spliced: list[tuple[int, Rejection]] = []
        for ordinal, raw in enumerate(rows):
            if position >= accepted or self._ordinals[position] != ordinal:
                continue
            index = position
            position += 1
            if raw.time_ms != self._times[index]:
                raise RowsChangedError(
                    f"{raw.where or f'row {ordinal}'}: the rows changed between the two passes"
                )
            state = status[index]
            if state in (_SKIP, _CONFLICT):
                continue
            bar = _checked(raw, self.timeframe)
            if isinstance(bar, str):
                raise RowsChangedError(
                    f"{raw.where or f'row {ordinal}'}: the rows changed between the two passes"
                )
            if state == _KEEP:
                yield bar
            elif state == _CONFLICT_LISTED:
                where = raw.where or f"row {ordinal}"
                self._conflict_rows.setdefault(raw.time_ms, []).append((where, bar))
            elif state == _SPLICED and len(spliced) < self.listed:
                at = int(np.searchsorted(self._spliced_index, index))
                origin = utc_from_ms(int(self._spliced_origin[at]))
                reason = f"repeats the candle of {origin:%Y-%m-%d %H:%M}: spliced data"
                spliced.append((ordinal, Rejection(raw.where or f"row {ordinal}", reason)))
        if ordinal + 1 != self.rows or position != accepted:
            raise RowsChangedError(
                f"the second pass read {ordinal + 1} rows, the first {self.rows}: "
                "the rows changed between the two passes"
            )
        self._rejections = sorted(self._rejections + spliced, key=lambda item: item[0])[
            : self.listed
        ]

    def spooled_chunks(self, chunk_rows: int) -> "Iterator[SpooledBars]":
        """``sort_out`` after ``scan_spooled``: the kept rows, in input order, read back
        from the spool ``chunk_rows`` at a time (the listed conflicts and the spliced rows'
        rejections are collected on the way, as ``sort_out`` does)."""
        status, spool = self._status, self._spool
        if status is None or spool is None:
            raise RuntimeError("call scan_spooled() and decide() before spooled_chunks()")
        marks = status.tobytes()
        times = self._times
        spool.flush()
        spool.seek(0)
        lines: list[str] = []
        kept: list[int] = []
        spliced: list[tuple[int, Rejection]] = []
        index = -1
        for index, line in enumerate(spool):
            state = marks[index]
            if state == _KEEP:
                lines.append(line)
                kept.append(times[index])
                if len(lines) == chunk_rows:
                    yield SpooledBars(lines, min(kept), max(kept))
                    lines, kept = [], []
            elif state == _CONFLICT_LISTED:
                where, bar = _spooled_bar(line, self._ordinals[index])
                self._conflict_rows.setdefault(times[index], []).append((where, bar))
            elif state == _SPLICED and len(spliced) < self.listed:
                ordinal = self._ordinals[index]
                where, _ = _spooled_bar(line, ordinal)
                at = int(np.searchsorted(self._spliced_index, index))
                origin = utc_from_ms(int(self._spliced_origin[at]))
                reason = f"repeats the candle of {origin:%Y-%m-%d %H:%M}: spliced data"
                spliced.append((ordinal, Rejection(where, reason)))
        if lines:
            yield SpooledBars(lines, min(kept), max(kept))
        if index + 1 != len(self._ordinals):
            raise RowsChangedError(
                f"the spool holds {index + 1} rows, the first pass accepted {len(self._ordinals)}"
            )
        self._rejections = sorted(self._rejections + spliced, key=lambda item: item[0])[
            : self.listed
        ]

    def result(self, *, bars: list[Bar] | None = None) -> CleanedCandles:
        """The report (after ``sort_out``); ``bars`` are the kept bars if the caller kept them."""
        spliced = len(self._spliced_index)
        conflicts = [
            Conflict(utc_from_ms(time_ms), tuple(rows))
            for time_ms, rows in sorted(self._conflict_rows.items())
        ]
        result = CleanedCandles(
            bars=bars or [],
            rejections=[rejection for _, rejection in self._rejections],
            merged=self._numbers["merged"],
            conflicts=conflicts,
            dropped_open=self._dropped_open,
            reordered=self._out_of_order > 0,
            gaps=self._gaps,
            out_of_order=self._out_of_order,
            spliced=spliced,
            fillers=self._fillers,
            out_of_range=self._out_of_range,
            kept_count=self._numbers["kept"],
            rejected_count=self._rejected + spliced,
            conflict_count=self._numbers["conflicted"],
            gap_count=self._numbers["gaps"],
            missing_count=self._numbers["missing"],
            span=self._span,
        )
        _log(result, self.rows)
        return result

    def _verdict(self, raw: RawCandle) -> Bar | str | None:
        """The row as a ``Bar``, the reason it is rejected, or ``None`` if still open."""
        checked = _checked(raw, self.timeframe)
        if isinstance(checked, str):
            return checked
        if checked.open_time > self.now + self.timeframe:
            return f"open time {checked.open_time:%Y-%m-%d %H:%M} is in the future"
        if checked.open_time + self.timeframe > self.now:
            # Up to one candle ahead of ``now`` is clock skew, not bad data: treat it as open.
            return None
        if (
            self.reject_fillers
            and checked.volume == 0
            and checked.open == checked.high == checked.low == checked.close
        ):
            return FILLER_REASON
        return checked

    def _reject(self, ordinal: int, raw: RawCandle, reason: str) -> None:
        self._rejected += 1
        if len(self._rejections) < self.listed:
            self._rejections.append((ordinal, Rejection(raw.where or f"row {ordinal}", reason)))

    def _find_spliced(self, times: np.ndarray, hashes: np.ndarray, status: np.ndarray) -> None:
        """Mark kept rows that repeat, in runs of two or more consecutive candles, the
        values of candles at an earlier time shifted by the same amount."""
        eligible = np.frombuffer(bytes(self._eligible), dtype=np.uint8).astype(bool)
        candidates = np.flatnonzero((status == _KEEP) & eligible)
        if len(candidates) < 4:
            return
        order = np.lexsort((times[candidates], hashes[candidates]))
        rows = candidates[order]
        row_hashes = hashes[rows]
        row_times = times[rows]
        first = np.r_[True, row_hashes[1:] != row_hashes[:-1]]
        if first.all():
            return
        # The earliest candle with these values is the original of the others.
        group_start = np.maximum.accumulate(np.where(first, np.arange(len(rows)), 0))
        repeats = ~first
        repeat_rows = rows[repeats]
        repeat_times = row_times[repeats]
        shifts = repeat_times - row_times[group_start[repeats]]
        by_time = np.argsort(repeat_times, kind="stable")
        repeat_rows, repeat_times, shifts = (
            repeat_rows[by_time],
            repeat_times[by_time],
            shifts[by_time],
        )
        step = self.timeframe // timedelta(milliseconds=1)
        linked = (np.diff(repeat_times) == step) & (shifts[1:] == shifts[:-1])
        in_run = np.r_[linked, False] | np.r_[False, linked]
        if not in_run.any():
            return
        spliced_rows = repeat_rows[in_run]
        origins = (repeat_times - shifts)[in_run]
        status[spliced_rows] = _SPLICED
        index_order = np.argsort(spliced_rows)
        self._spliced_index = spliced_rows[index_order]
        self._spliced_origin = origins[index_order]

    def _find_gaps(self, kept_times: np.ndarray) -> None:
        step = self.timeframe // timedelta(milliseconds=1)
        self._numbers["gaps"] = self._numbers["missing"] = 0
        if not len(kept_times):
            return
        self._span = (utc_from_ms(int(kept_times[0])), utc_from_ms(int(kept_times[-1])))
        missing = np.diff(kept_times) // step - 1
        at = np.flatnonzero(missing > 0)
        self._numbers["gaps"] = len(at)
        self._numbers["missing"] = int(missing[at].sum())
        for index in at[: self.listed]:
            start = utc_from_ms(int(kept_times[index]))
            count = int(missing[index])
            self._gaps.append(
                Gap(
                    start=start + self.timeframe,
                    end=start + self.timeframe * count,
                    missing=count,
                )
            )


class SpooledBars(Sequence[Bar]):
    """A chunk of kept rows as ``CandleSorter.spooled_chunks`` reads them from its spool:
    a sequence of ``Bar`` (made on demand) that can also give the candle table's COPY
    text of all its rows at once (``copy_text``) without making any."""

    __slots__ = ("_lines", "first_ms", "last_ms")

    def __init__(self, lines: list[str], first_ms: int, last_ms: int) -> None:
        self._lines = lines
        self.first_ms = first_ms
        self.last_ms = last_ms

    def __len__(self) -> int:
        return len(self._lines)

    @overload
    def __getitem__(self, index: int) -> Bar: ...

    @overload
    def __getitem__(self, index: slice) -> list[Bar]: ...

    def __getitem__(self, index: int | slice) -> Bar | list[Bar]:
        if isinstance(index, slice):
            return [_spooled_bar(line, 0)[1] for line in self._lines[index]]
        return _spooled_bar(self._lines[index], 0)[1]

    def __iter__(self) -> Iterator[Bar]:
        for line in self._lines:
            yield _spooled_bar(line, 0)[1]

    def copy_text(self) -> str:
        """One line per bar: ``epoch_ms<TAB>open<TAB>high<TAB>low<TAB>close<TAB>volume``,
        the values as the candle table stores them (rounded to its 12 places), for
        ``COPY ... FROM STDIN`` into columns of the candle table's types.

        Raises ``ValueError`` ("... is too large to store") for a value that rounding
        takes out of the column, as storing a ``Bar`` does."""
        text = "".join(line[line.rindex(_UNIT) + 1 :] for line in self._lines)
        if _TOO_LARGE in text:
            value = next(v for v in text.replace("\n", "\t").split("\t") if v[:1] == _TOO_LARGE)
            raise ValueError(f"{value[1:]} is too large to store")
        return text


def _spool_line(where: str, bar: Bar) -> str:
    """The spool line of an accepted row (see ``_UNIT``)."""
    read = []
    stored = []
    for name in ("open", "high", "low", "close", "volume"):
        value: Decimal = getattr(bar, name)
        text = str(value)
        read.append(text)
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent >= -12:
            stored.append(text)  # the column holds it exactly as read
            continue
        # Rounded as ``markets.services`` stores a Bar (half to even, 12 places).
        rounded = value.quantize(SMALLEST_STORED, context=_WIDE)
        ceiling = VOLUME_CEILING if name == "volume" else PRICE_CEILING
        stored.append(str(rounded) if rounded < ceiling else f"{_TOO_LARGE}{name} {value}")
    values_read = "\t".join(read) if read != stored else ""
    time_ms = (bar.open_time - EPOCH) // timedelta(milliseconds=1)
    values_stored = "\t".join(stored)
    return f"{where}{_UNIT}{values_read}{_UNIT}{time_ms}\t{values_stored}\n"


def _spooled_bar(line: str, ordinal: int) -> tuple[str, Bar]:
    """Where a spooled row was read (``row N`` from ``ordinal`` if nowhere) and its Bar,
    with the values as read."""
    where, values_read, stored = line.rstrip("\n").split(_UNIT)
    time_text, *texts = stored.split("\t")
    if values_read:
        texts = values_read.split("\t")
    open_, high, low, close, volume = map(Decimal, texts)
    bar = Bar(utc_from_ms(int(time_text)), open_, high, low, close, volume)
    return where or f"row {ordinal}", bar


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
    for name, value in values.items():
        what = "volume" if name == "volume" else "price"
        ceiling = VOLUME_CEILING if name == "volume" else PRICE_CEILING
        if 0 < value < SMALLEST_STORED:
            return OutOfRange(
                f"{name} {value} is below the smallest {what} stored ({SMALLEST_STORED})"
            )
        if value >= ceiling:
            return OutOfRange(f"{name} {value} is not below the largest {what} stored ({ceiling})")
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


def _identity(value: Decimal) -> float | tuple[int, tuple[int, ...], int]:
    """What a row's hash is made of for one of its values (finite, 0 or from 1E-12 to
    below 1E+26, as every accepted value is): equal values give equal identities, others
    different ones. A value of at most 15 significant digits is its float (exact enough
    to tell it from any other such value, and what ``scan_spooled`` computes from the
    text); a longer one is its sign, digits and exponent, trailing zeros taken off."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    end = len(digits)
    while end and digits[end - 1] == 0:
        end -= 1
    if end <= 15:
        return float(value)
    return (sign, digits[:end], exponent + len(digits) - end)


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
    if type(value) is Decimal and value.is_finite():
        return value  # what the file readers give: the common case, kept cheap
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
    if result.rejected:
        shown = "; ".join(str(r) for r in result.rejections[:_LOGGED_REASONS])
        more = result.rejected - min(len(result.rejections), _LOGGED_REASONS)
        logger.warning(
            "cleaning rejected %d of %d candle rows: %s%s",
            result.rejected,
            total,
            shown,
            f"; and {more} more" if more > 0 else "",
        )
    if result.conflicted:
        shown = "; ".join(str(c) for c in result.conflicts[:_LOGGED_REASONS])
        more = result.conflicted - min(len(result.conflicts), _LOGGED_REASONS)
        logger.warning(
            "cleaning found %d conflicting duplicate candle timestamps (none of their rows "
            "kept): %s%s",
            result.conflicted,
            shown,
            f"; and {more} more" if more > 0 else "",
        )
    if result.merged:
        logger.info("cleaning merged %d identical duplicate candle rows", result.merged)
    if result.gap_total:
        logger.info("cleaning found %d gaps (%d missing candles)", result.gap_total, result.missing)
