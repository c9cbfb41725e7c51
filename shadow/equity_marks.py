"""Per-day equity marks: a book's paper equity at the last candle close of every UTC day,
kept with the rollups, so that the summary's sparkline and the performance page's
equity chart read a row per day instead of every trade and candle.

The equity at a candle close is ``analytics.equity``'s, restated here (shadow may not
import analytics; ``shadow/tests/test_equity_marks.py`` proves every mark equal to
``analytics.selectors.book_equity_curve`` at that close, to the cent): the book's
timeline is the union of the candle closes of every market it has a paper trade in
(a trade with an entry time, quantity and entry price), from its first entry to the
last candle the book processed in that market (``BookState``); each market's value is
carried to every close of the timeline from its own last close. At the close of a
market's candle opening at ``T`` its value is the P&L of its closed trades with an exit
time at or before ``T`` (a closed trade without a P&L counts 0) plus
``direction * quantity * (close - entry price)`` of its trades entered at or before
``T`` and not so realised. The mark of a day is that sum over the markets at the
day's last close (``time``, epoch ms; its UTC day is the mark's ``day``).

Each mark also carries what the next day's computation needs (``carry``): per market the
open time of its last candle at the mark and its realised P&L then, and the ids of the
trades not realised by then whose signal's candle opened more than one candle of the
book's longest timeframe before the mark. A refresh from day ``first`` therefore reads
only those trades and the trades of signals whose candle opened after that, counted from
the last mark before ``first`` (index ``signal_book_clock``), the candles from each
market's carried candle on, and never the book's other trades. A write changes only
trades of signals from its refreshed day on (``shadow.rollups.refresh``), and a live run
that only processed candles writes nothing: so a refresh starts at the newest mark's day
if that is earlier, and a page computes the marks from the newest stored one on at every
read (``book_marks``), from the same carry. A trade in a market the marks have not seen
(the timeline gains its candles from the book's first entry) or entered before the
book's first entry makes a refresh rebuild the book's marks.

It is an ``Extension`` of the rollups (registered in ``ShadowConfig.ready``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from django.db.models import F, FloatField, Min, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from markets.bars import CandleCloses, timeframe_delta
from markets.selectors import candle_closes, candle_closes_of_markets
from markets.timestamps import ms_from_utc, utc_from_ms
from shadow.models import EquityMark, EquityMarkState
from shadow.rollups import Extension, midnight
from signals.models import BookState, PaperTrade, Signal

# Bump when the mark's definition changes: every book is rebuilt on its next read.
VERSION = 1
DAY_MS = 86_400_000
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Mark:
    """A book's equity (quote currency, float) at the close ``time`` (epoch ms), the last
    close of its UTC ``day`` (of those before the reader's ``until``)."""

    day: date
    time: int
    equity: float
    carry: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Trades:
    """Paper trades as columns; ``exit`` NaN unless closed with an exit time."""

    id: np.ndarray
    market: list[str]
    candle: np.ndarray
    signed: np.ndarray
    price: np.ndarray
    entry: np.ndarray
    exit: np.ndarray
    pnl: np.ndarray


def _key(exchange: str, symbol: str, timeframe: str) -> str:
    return f"{exchange} {symbol} {timeframe}"


def _step(key: str) -> int:
    return int(timeframe_delta(key.rsplit(" ", 1)[1]).total_seconds() * 1000)


def _day(ms: int) -> date:
    return _EPOCH + timedelta(days=ms // DAY_MS)


def _midnight_ms(day: date) -> int:
    return ms_from_utc(midnight(day))


def _qualifying(book_id: int) -> QuerySet[Any]:
    return PaperTrade.objects.filter(
        book_id=book_id,
        entry_time__isnull=False,
        quantity__isnull=False,
        entry_price__isnull=False,
    ).order_by()


def _trades(trades: QuerySet[Any]) -> _Trades:
    """The trades' columns (numbers as float8 from the database)."""
    rows = list(
        trades.values_list(
            "id",
            "signal__candle_time",
            "signal__exchange",
            "signal__symbol",
            "signal__timeframe",
            "side",
            Cast(F("quantity"), FloatField()),
            Cast(F("entry_price"), FloatField()),
            "entry_time",
            "exit_time",
            Cast(F("pnl"), FloatField()),
            "status",
        )
    )
    closed = [r[11] == PaperTrade.Status.CLOSED and r[9] is not None for r in rows]
    return _Trades(
        id=np.array([r[0] for r in rows], dtype=np.int64),
        market=[_key(r[2], r[3], r[4]) for r in rows],
        candle=np.array([ms_from_utc(r[1]) for r in rows], dtype=np.int64),
        signed=np.array([(1.0 if r[5] == "long" else -1.0) * r[6] for r in rows], dtype=float),
        price=np.array([r[7] for r in rows], dtype=float),
        entry=np.array([ms_from_utc(r[8]) for r in rows], dtype=np.int64),
        exit=np.array(
            [ms_from_utc(r[9]) if c else np.nan for r, c in zip(rows, closed, strict=True)],
            dtype=float,
        ),
        pnl=np.array(
            [r[10] if c and r[10] is not None else 0.0 for r, c in zip(rows, closed, strict=True)],
            dtype=float,
        ),
    )


def _take(trades: _Trades, keep: np.ndarray) -> _Trades:
    return _Trades(
        id=trades.id[keep],
        market=[m for m, k in zip(trades.market, keep, strict=True) if k],
        candle=trades.candle[keep],
        signed=trades.signed[keep],
        price=trades.price[keep],
        entry=trades.entry[keep],
        exit=trades.exit[keep],
        pnl=trades.pnl[keep],
    )


def _market_values(
    market: CandleCloses, trades: _Trades, own: np.ndarray, base: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """At each of ``market``'s candle closes: its value (``base`` + realised + open
    positions marked at the close), its realised P&L, and per own trade the index of
    the first candle it is open at and of the candle its P&L is realised at (``n``: not
    in these candles). The same cumulative sums as ``analytics.equity._market_equity``."""
    n = len(market)
    size, cost, realised = np.zeros(n + 1), np.zeros(n + 1), np.zeros(n + 1)
    signed, price, exits = trades.signed[own], trades.price[own], trades.exit[own]
    closed = ~np.isnan(exits)
    start = np.searchsorted(market.time, trades.entry[own])
    stop = np.full(start.shape, n, dtype=np.int64)
    stop[closed] = np.searchsorted(market.time, exits[closed].astype(np.int64))
    edges = np.stack((start, stop), axis=1).ravel()
    np.add.at(size, edges, np.stack((signed, -signed), axis=1).ravel())
    weighted = signed * price
    np.add.at(cost, edges, np.stack((weighted, -weighted), axis=1).ravel())
    np.add.at(realised, stop[closed], trades.pnl[own][closed])
    gained = base + np.cumsum(realised)[:n]
    return gained + np.cumsum(size)[:n] * market.close - np.cumsum(cost)[:n], gained, stop, closed


def _marks(
    candles: dict[str, CandleCloses],
    trades: _Trades,
    base: dict[str, float],
    *,
    since_ms: int | None,
    until_ms: int | None,
) -> list[Mark]:
    """The marks of the days with a close at or after ``since_ms`` (and before
    ``until_ms``): ``candles`` per market hold every candle from the one whose close a
    mark at ``since_ms`` carries on; ``base`` is each market's P&L realised before its
    first candle here (its trades realised by then are not in ``trades``)."""
    live = {key: c for key, c in candles.items() if len(c)}
    if not live:
        return []
    closes = {key: c.time + _step(key) for key, c in live.items()}
    timeline = np.unique(np.concatenate(list(closes.values())))
    if since_ms is not None:
        timeline = timeline[timeline >= since_ms]
    if until_ms is not None:
        timeline = timeline[timeline < until_ms]
    if not len(timeline):
        return []
    days = timeline // DAY_MS
    last = timeline[np.flatnonzero(np.append(days[1:] != days[:-1], True))]
    keys = sorted(set(base) | set(live))
    widest = max(_step(key) for key in keys)
    markets = np.array(trades.market, dtype=object)
    equity = np.zeros(len(last))
    carried: list[dict[str, Any]] = [{"markets": {}, "open": []} for _ in last]
    for key in keys:
        own = markets == key if len(markets) else np.zeros(0, dtype=bool)
        ids, candle = trades.id[own], trades.candle[own]
        market = live.get(key)
        at = (
            np.searchsorted(closes[key], last, side="right") - 1
            if market is not None
            else np.full(len(last), -1)
        )
        value, gained, stop, closed = (
            _market_values(market, trades, own, base.get(key, 0.0))
            if market is not None
            else (np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))
        )
        equity += np.where(at >= 0, value[np.clip(at, 0, None)] if len(value) else 0.0, 0.0)
        for number, index in enumerate(at):
            # The trades the next refresh must read by id: not realised by then, of a
            # signal older than the signals it reads by candle time (``_from``).
            older = candle < int(last[number]) - widest
            if index < 0:
                carried[number]["markets"][key] = [None, base.get(key, 0.0)]
                carried[number]["open"].extend(int(i) for i in ids[older])
                continue
            assert market is not None
            carried[number]["markets"][key] = [int(market.time[index]), float(gained[index])]
            unrealised = ~(closed & (stop <= index))
            carried[number]["open"].extend(int(i) for i in ids[unrealised & older])
    return [
        Mark(day=_day(int(t)), time=int(t), equity=float(e), carry=c)
        for t, e, c in zip(last, equity, carried, strict=True)
    ]


def _last_times(book_id: int) -> dict[str, int]:
    # Only the state's ``last_time`` key: the whole engine state of a 200-market live book
    # (indicators, guards' look-back, trades in flight) took 3 ms to decode per refresh.
    found = (
        BookState.objects.filter(book_id=book_id)
        .values_list(KT("state__last_time"), flat=True)
        .first()
    )
    if isinstance(found, str):  # SQLite's JSON_EXTRACT of an object gives its text
        found = json.loads(found)
    return dict(found or {})


def _cap(last: int | None, until_ms: int | None) -> int | None:
    """The last candle to read: a mark before ``until_ms`` needs no candle opening at
    or after it."""
    if until_ms is None:
        return last
    return until_ms if last is None else min(last, until_ms)


def _candles(key: str, after_ms: int, last: int | None) -> CandleCloses:
    exchange, symbol, timeframe = key.split(" ")
    return candle_closes(
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        after=utc_from_ms(after_ms),
        until=utc_from_ms(last) if last is not None else None,
    )


def _first_entries(book_id: int) -> dict[str, int]:
    """Each market with a paper trade and its first entry (one grouped query over every
    trade of the book: a rebuild's)."""
    market = ("signal__exchange", "signal__symbol", "signal__timeframe")
    found = _qualifying(book_id).values_list(*market).annotate(first=Min("entry_time"))
    return {_key(e, s, t): ms_from_utc(first) for e, s, t, first in found}


def _everything(book_id: int, markets: dict[str, int], until_ms: int | None) -> list[Mark]:
    """Every mark from the book's first entry, from all its trades."""
    if not markets:
        return []
    first = min(markets.values())
    last_times = _last_times(book_id)
    candles = {
        key: _candles(key, first - 1, _cap(last_times.get(key), until_ms))
        for key in sorted(markets)
    }
    if all(len(c) == 0 for c in candles.values()):
        return []
    trades = _qualifying(book_id)
    if until_ms is not None:
        trades = trades.filter(signal__candle_time__lt=utc_from_ms(until_ms))
    return _marks(
        candles, _trades(trades), dict.fromkeys(markets, 0.0), since_ms=None, until_ms=until_ms
    )


_EARLIEST_MS = ms_from_utc(datetime.min.replace(tzinfo=UTC))


class _RebuildError(Exception):
    """The marks from the refreshed day on cannot be computed from the carry."""


def _from(
    book_id: int, state: EquityMarkState, first: date, until_ms: int | None
) -> tuple[list[Mark], date]:
    """The marks of ``first`` and later days computed from the last mark before
    ``first`` (or from every trade if there is none, which is a young book or one
    without candles): and the day they start from."""
    previous = (
        EquityMark.objects.filter(book_id=state.book_id, day__lt=first)
        .order_by("-day")
        .values_list("time", "carry")
        .first()
    )
    markets: dict[str, int] = state.markets
    steps = {key: _step(key) for key in markets}
    widest = max(steps.values(), default=0)
    since = _midnight_ms(first)
    # Never before the calendar's first day (a window ending on 0001-01-01 has no marks).
    lower = max((previous[0] if previous else since) - widest, _EARLIEST_MS)
    signals = Signal.objects.filter(book_id=book_id, candle_time__gte=utc_from_ms(lower))
    if until_ms is not None:
        signals = signals.filter(candle_time__lt=utc_from_ms(until_ms))
    # Two index reads, then the trades by id (an OR of the two made PostgreSQL scan
    # every trade of the book: 200 ms at 400,000 trades, against 25-55 ms).
    wanted = set(previous[1]["open"]) if previous is not None else set()
    wanted.update(
        _qualifying(book_id)
        .filter(signal_id__in=signals.order_by().values("pk"))
        .values_list("pk", flat=True)
    )
    trades = _trades(_qualifying(book_id).filter(pk__in=sorted(wanted)))
    book_first = min(markets.values(), default=None)
    if any(m not in markets for m in trades.market) or (
        len(trades.entry) and (book_first is None or int(trades.entry.min()) < book_first)
    ):
        raise _RebuildError
    if previous is None:
        last_times = _last_times(book_id)
        if book_first is None or all(
            not len(_candles(key, book_first - 1, last_times.get(key))) for key in markets
        ):
            return [], first
        raise _RebuildError
    carry = previous[1]["markets"]
    if book_first is None or set(carry) != set(markets):
        raise _RebuildError
    last_times = _last_times(book_id)
    ranges = []
    for key, (opened, _gained) in carry.items():
        after = opened - 1 if opened is not None else max(book_first - 1, previous[0] - steps[key])
        last = _cap(last_times.get(key), until_ms)
        exchange, symbol, timeframe = key.split(" ")
        ranges.append(
            (
                exchange,
                symbol,
                timeframe,
                utc_from_ms(after),
                utc_from_ms(last) if last is not None else None,
            )
        )
    candles = dict(zip(carry, candle_closes_of_markets(ranges), strict=True))
    # Trades realised by a market's carried candle are in its carried P&L.
    keep = np.ones(len(trades.id), dtype=bool)
    for number, key in enumerate(trades.market):
        opened = carry[key][0]
        if opened is not None and not np.isnan(trades.exit[number]):
            keep[number] = trades.exit[number] > opened
    base = {key: float(gained) for key, (_opened, gained) in carry.items()}
    return _marks(candles, _take(trades, keep), base, since_ms=since, until_ms=until_ms), first


def _write(book_id: int, marks: Iterable[Mark]) -> None:
    EquityMark.objects.bulk_create(
        EquityMark(book_id=book_id, day=m.day, time=m.time, equity=m.equity, carry=m.carry)
        for m in marks
    )


# A rebuild computes the marks a stretch of days at a time, each from the carry of the
# mark before it: its memory is a stretch's candles and trades, not the history's. A
# stretch holds about this many candles of the book's markets (at least a day).
REBUILD_CANDLES = 50_000
# Or this many days when set (tests).
REBUILD_DAYS: int | None = None


def _stretch_days(markets: Iterable[str]) -> int:
    if REBUILD_DAYS is not None:
        return REBUILD_DAYS
    per_day = sum(DAY_MS / _step(key) for key in markets)
    return max(1, int(REBUILD_CANDLES / per_day)) if per_day else 1


def rebuild(book_id: int) -> None:
    """Every mark of the book computed again from all its trades and candles, in
    stretches of about ``REBUILD_CANDLES`` candles (the first from every trade, each
    next one from the carry of the last mark written, as a refresh does)."""
    EquityMark.objects.filter(book_id=book_id).delete()
    markets = _first_entries(book_id)
    EquityMarkState.objects.filter(book_id=book_id).delete()
    state = EquityMarkState.objects.create(book_id=book_id, markets=markets)
    last = max((t for t in _last_times(book_id).values() if t is not None), default=None)
    if not markets or last is None:
        _write(book_id, _everything(book_id, markets, None))
        return
    days = _stretch_days(markets)
    cut = _midnight_ms(_day(min(markets.values())) + timedelta(days=days))
    if cut > last + DAY_MS:
        _write(book_id, _everything(book_id, markets, None))
        return
    _write(book_id, _everything(book_id, markets, cut))
    while cut <= last + DAY_MS:
        following = cut + days * DAY_MS
        until = following if following <= last + DAY_MS else None
        try:
            marks, _ = _from(book_id, state, _day(cut), until)
        except _RebuildError:  # nothing to carry on from yet: the rest in one stretch
            EquityMark.objects.filter(book_id=book_id).delete()
            _write(book_id, _everything(book_id, markets, None))
            return
        _write(book_id, marks)
        if until is None:
            return
        cut = following


def refresh(book_id: int, first: date) -> None:
    """The marks of ``first`` and later days (from the newest mark's day if that is
    earlier: a run that only processed candles wrote none) computed again from the
    carry of the last mark before them."""
    state = EquityMarkState.objects.filter(book_id=book_id).first()
    if state is None:
        rebuild(book_id)
        return
    newest = EquityMark.objects.filter(book_id=book_id).order_by("-day").values_list("day").first()
    start = min(first, newest[0]) if newest else first
    try:
        marks, start = _from(book_id, state, start, None)
    except _RebuildError:
        rebuild(book_id)
        return
    EquityMark.objects.filter(book_id=book_id, day__gte=start).delete()
    _write(book_id, marks)


EXTENSION = Extension(name="equity_marks", version=VERSION, rebuild=rebuild, refresh=refresh)


def book_marks(
    book_id: int, *, since_ms: int | None = None, until_ms: int | None = None
) -> list[tuple[int, float]]:
    """The book's equity at the last close of each UTC day, ``(time ms, equity)``, with
    closes at or after ``since_ms`` and before ``until_ms``: the stored marks up to the
    day before the newest one (or before ``until_ms``'s day), that day and later computed
    now from the carry of the mark before (the candles processed since the last write,
    a window's partial last day). The caller makes sure the rollups are built
    (``shadow.rollups.ensure_built``)."""
    state = EquityMarkState.objects.filter(book_id=book_id).first()
    if state is None:
        return []
    newest = EquityMark.objects.filter(book_id=book_id).order_by("-day").values_list("day").first()
    tail = newest[0] if newest else None
    if until_ms is not None:
        cut = _day(until_ms - 1)
        tail = cut if tail is None or cut < tail else tail
    stored = EquityMark.objects.filter(book_id=book_id)
    if since_ms is not None:
        stored = stored.filter(time__gte=since_ms)
    if tail is not None:
        stored = stored.filter(day__lt=tail)
    found = [(int(t), float(e)) for t, e in stored.order_by("day").values_list("time", "equity")]
    if tail is None:
        return found
    try:
        computed, _ = _from(book_id, state, tail, until_ms)
    except _RebuildError:
        computed = [m for m in _everything(book_id, state.markets, until_ms) if m.day >= tail]
    found += [(m.time, m.equity) for m in computed if since_ms is None or m.time >= since_ms]
    return found


def sampled(points: Sequence[tuple[int, float]], most: int) -> list[tuple[int, float]]:
    """At most ``most`` of ``points`` for a chart: the last of each bucket, so the last
    mark always shows (the summary's sparkline and the performance page's chart)."""
    if len(points) <= most:
        return list(points)
    edges = np.linspace(0, len(points), most + 1).astype(np.int64)[1:] - 1
    return [points[int(i)] for i in edges]
