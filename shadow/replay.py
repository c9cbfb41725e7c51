"""The replay driver: stored candles of one or more markets through the engine into a
book of their own.

It reads the candles in windows of time (``chunk_candles`` per market), runs the pure
engine over each window in turn with its state carried over, as the live driver does
(every market in one time order, so guards that count positions see the whole book),
and writes each window's finished signals in bulk: the book, its frozen configuration,
signals with their full transition logs, decisions, paper and shadow trades, equity
points and the engine state, all in one transaction. A failure leaves no partial book;
memory holds one window, never the whole history.

It sits at the top of the write side (the shadow app) because it writes shadow trades."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from markets.selectors import candle_span
from markets.timestamps import ms_from_utc, utc_from_ms
from shadow import rollups
from shadow.models import ShadowTrade
from shadow.persistence import BookWriter, Written
from shadow.selectors import market_candles
from signals.domain import engine
from signals.economics import economics_seed, economics_with_quotes
from signals.models import (
    Book,
    BookGuard,
    BookState,
    BookStrategy,
    EquityPoint,
    ExchangeOrder,
    GuardConfig,
    GuardDecision,
    PaperTrade,
    Signal,
    SignalTransition,
    StrategyConfig,
)
from signals.services import LIVE_BOOK, book_configure, engine_config_of

Progress = Callable[[str, int], object]
"""Called, chunk after chunk, with ("candles", n) as the engine finishes the chunk's n
candles, ("rows", n) as rows are written, then ("written", n) once the chunk's rows are
(its signals still in flight are written with a later chunk)."""

CHUNK_CANDLES = 10_000
"""Candles of each market read, run and written at a time by a replay: its peak memory
follows this, not the length of the history."""


class ReplayRefusedError(ValueError):
    """The replay cannot run as asked (e.g. it would write into a live book)."""


def book_name_key(name: str) -> str:
    """``name`` as book names are compared against the live book's: case, width and
    spaces aside, so "LIVE", " live" and "l i v e" all read as "live"."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(c for c in folded if not c.isspace() and unicodedata.category(c) != "Cf")


def live_book_named(name: str) -> str | None:
    """The name of the live book that ``name`` reads as (``book_name_key``), else ``None``.
    The name "live" is the live book's even before it exists."""
    key = book_name_key(name)
    names = [LIVE_BOOK, *Book.objects.filter(kind=Book.Kind.LIVE).values_list("name", flat=True)]
    return next((live for live in names if book_name_key(live) == key), None)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    book: Book
    candles: int
    replaced: bool
    written: Written


def replay_run(
    *,
    name: str,
    description: str,
    strategies: Sequence[StrategyConfig | BookStrategy],
    guards: Sequence[GuardConfig | BookGuard],
    since: datetime | None = None,
    until: datetime | None = None,
    on_progress: Progress | None = None,
    ablation_of: Book | None = None,
    without_guard: str = "",
    economics: Mapping[str, Any] | None = None,
    chunk_candles: int = CHUNK_CANDLES,
) -> ReplayResult:
    """Replay the stored candles of every market ``strategies`` trade into the replay
    book ``name`` (replacing a replay book of that name), up to ``until``. Candles before
    ``since`` only warm the indicators up: no signal is made on them.

    Candles are read, run and written ``chunk_candles`` per market at a time, the
    engine's state carried from one chunk to the next as the live driver carries it, so
    memory does not grow with the history; every chunk is written in the one transaction
    of the book.

    The book trades on ``economics`` (a frozen copy: an ablation leg passes its book's),
    else on the economics of ``ablation_of``, else on today's settings, which it freezes."""
    report = on_progress or (lambda _phase, _n: None)
    live = live_book_named(name)
    if live is not None:
        raise ReplayRefusedError(
            f"book {name!r} is the live book {live!r}; a replay never writes into it"
        )
    if Book.objects.filter(name=name).exclude(kind=Book.Kind.REPLAY).exists():
        raise ReplayRefusedError(
            f"book {name!r} is not a replay book; a replay never writes into it"
        )
    if economics is None:
        economics = ablation_of.economics if ablation_of is not None else None
    economics = economics_with_quotes(
        economics or economics_seed(),
        markets=[engine.Market(s.exchange, s.symbol, s.timeframe) for s in strategies],
        start=since,
    )
    config = engine_config_of(strategies=strategies, guards=guards, economics=economics)
    markets = engine.markets_of(config, engine.EngineState())
    windows = _windows(markets, until=until, chunk_candles=chunk_candles)

    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A replay book can always be written again: not waiting for its commit to
            # reach the disk is safe (a crash may lose the book, never corrupt it).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        replaced = _replay_book_delete(name)
        book = Book.objects.create(
            name=name,
            kind=Book.Kind.REPLAY,
            description=description,
            since=since,
            until=until,
            ablation_of=ablation_of,
            without_guard=without_guard,
            economics=economics,
        )
        book_configure(book=book, strategies=strategies, guards=guards)
        writer = BookWriter(
            book=book,
            strategies={s.name: s for s in BookStrategy.objects.filter(book=book)},
            guards={g.name: g for g in BookGuard.objects.filter(book=book)},
        )
        state, candles, written = _replay_chunks(
            config,
            markets,
            windows,
            writer,
            signals_from=ms_from_utc(since) if since else None,
            report=report,
        )
        last_candle = max(state.last_time.values(), default=None)
        if last_candle is not None:
            book.until = utc_from_ms(last_candle)
            Book.objects.filter(pk=book.pk).update(until=book.until)
        BookState.objects.create(book=book, state=state.to_json())
        _analyze_written()
        # The pages' sums of the new book, in its transaction (O(rows written)).
        rollups.refresh(book.pk, since=None)
    return ReplayResult(book=book, candles=candles, replaced=replaced, written=written)


# The tables the rollups' rebuild joins that a replay has just filled (PostgreSQL).
_ANALYZED = (Signal, PaperTrade)


def _analyze_written() -> None:
    """Statistics of the tables the replay has just written, for the rollups' rebuild that
    follows in the same transaction (ANALYZE counts the transaction's own rows). A fresh
    database's planner believes them nearly empty and joins them by comparing every pair
    of rows: the equity marks' read of a stretch's trades took 120 ms on a 90,070-candle
    book (1,268 trades by 1,608 signals, 1.6 million comparisons; it grows with the
    square of the book), 1 ms with the statistics, for an ANALYZE of 14 ms. Its lock is
    held to the commit: another replay's ANALYZE waits for it there, rows written by the
    live pipeline do not."""
    if connection.vendor != "postgresql":
        return
    tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in _ANALYZED)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")


@dataclass(slots=True)
class _Unwritten:
    """A signal of this replay not written yet: its trades are still in flight at the end
    of the chunks run so far, so its state, transitions and trades may still change."""

    record: engine.SignalRecord
    transitions: list[engine.Transition] = field(default_factory=list)
    trades: dict[str, engine.TradeRecord] = field(default_factory=dict)


def _windows(
    markets: Mapping[str, engine.Market], *, until: datetime | None, chunk_candles: int
) -> list[tuple[datetime | None, datetime]]:
    """The replay's time windows ``(after, until]``, each holding at most ``chunk_candles``
    candles of each market: the first from the oldest stored candle, the last up to the
    newest one (or ``until``)."""
    if chunk_candles < 1:
        raise ValueError("chunk_candles must be at least 1")
    spans = [
        candle_span(exchange=m.exchange, symbol=m.symbol, timeframe=m.timeframe, until=until)
        for m in markets.values()
    ]
    stored = [span for span in spans if span is not None]
    if not stored:
        return []
    first = ms_from_utc(min(span[0] for span in stored))
    last = ms_from_utc(max(span[1] for span in stored))
    width = chunk_candles * min(m.step_ms for m in markets.values())
    windows: list[tuple[datetime | None, datetime]] = []
    after: datetime | None = None
    end = first + width - 1
    while True:
        bound = utc_from_ms(min(end, last))
        windows.append((after, bound))
        if end >= last:
            return windows
        after, end = bound, end + width


def _replay_chunks(
    config: engine.EngineConfig,
    markets: Mapping[str, engine.Market],
    windows: Sequence[tuple[datetime | None, datetime]],
    writer: BookWriter,
    *,
    signals_from: int | None,
    report: Progress,
) -> tuple[engine.EngineState, int, Written]:
    """Run the windows of candles through the engine one after the other, carrying its
    state as the live driver does, and write each signal once its trades are done (or at
    the end): memory holds one window of candles and the signals still in flight, never
    the whole history. Returns the final state, the candles run and the rows written."""
    state = engine.EngineState()
    unwritten: dict[engine.SignalKey, _Unwritten] = {}
    ids: dict[engine.SignalKey, int] = {}
    candles = 0
    written = Written()
    for after, through in windows:
        arrays = {}
        for key, market in markets.items():
            fresh = market_candles(market, after=after, until=through)
            if after is not None and key in state.last_time:
                # The candles before the window the guards look back at (not run again).
                fresh = market_candles(market, until=after, newest=config.context_candles).then(
                    fresh
                )
            arrays[key] = fresh
        result = engine.run(config, state, arrays, signals_from=signals_from)
        state = result.state
        candles += result.candles
        report("candles", result.candles)
        ids.update(writer.signal_ids([s.key for s in result.signals]))
        for record in result.signals:
            unwritten[record.key] = _Unwritten(record)
        for transition in result.transitions:
            unwritten[transition.key].transitions.append(transition)
        for trade in result.trades:
            unwritten[trade.key].trades[trade.kind] = trade
        in_flight = {flight.key for flight in state.flights}
        done = [key for key in unwritten if key not in in_flight]
        written = _plus(written, _write(writer, unwritten, done, ids, result.equity, report))
        report("written", result.candles)
    if unwritten:
        written = _plus(written, _write(writer, unwritten, list(unwritten), ids, [], report))
    return state, candles, written


def _write(
    writer: BookWriter,
    unwritten: dict[engine.SignalKey, _Unwritten],
    keys: Sequence[engine.SignalKey],
    ids: dict[engine.SignalKey, int],
    equity: Sequence[tuple[int, float]],
    report: Progress,
) -> Written:
    """Write the signals ``keys`` (taking them out of ``unwritten``) and ``equity``."""
    entries = sorted((unwritten.pop(key) for key in keys), key=lambda e: ids[e.record.key])
    signals = [
        # A signal's state is where its last transition took it (a later window's
        # transitions move a signal made in an earlier one).
        replace(e.record, state=e.transitions[-1].target) if e.transitions else e.record
        for e in entries
    ]
    transitions = sorted((t for e in entries for t in e.transitions), key=lambda t: t.at)
    trades = [trade for e in entries for trade in e.trades.values()]
    if not signals and not equity:
        return Written()  # nothing to write: spare the statements
    done, _ids = writer.insert_new(
        signals=signals,
        transitions=transitions,
        trades=trades,
        equity=equity,
        on_rows=lambda n: report("rows", n),
        ids={e.record.key: ids.pop(e.record.key) for e in entries},
    )
    return done


def _plus(a: Written, b: Written) -> Written:
    return Written(**{f.name: getattr(a, f.name) + getattr(b, f.name) for f in fields(Written)})


def _replay_book_delete(name: str) -> bool:
    """Delete the replay book ``name`` with everything in it; whether there was one.

    Every table hanging off the signals goes first with one statement each, then the
    signals with one plain ``DELETE``: the ORM's cascade would load every signal of the
    book into memory to collect it, which a long replay's book cannot afford. (A table
    added later that points at signals makes this ``DELETE`` fail on its foreign key,
    loudly, rather than leave rows behind.) The ORM's cascade then only collects the
    book's configuration.
    """
    book = Book.objects.filter(name=name, kind=Book.Kind.REPLAY).first()
    if book is None:
        return False
    for model in (GuardDecision, SignalTransition, ExchangeOrder):
        model.objects.filter(signal__book=book).delete()
    for leaf in (PaperTrade, ShadowTrade, EquityPoint):
        leaf.objects.filter(book=book).delete()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Signal._meta.db_table} WHERE book_id = %s", [book.pk])
    book.delete()
    return True
