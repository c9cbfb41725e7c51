"""The replay driver: stored candles of one or more markets through the engine into a
book of their own, in one pass.

It reads each market's candles once into arrays, runs the pure engine over the whole
range (every market in one time order, so guards that count positions see the whole
book), and writes every row in bulk in one transaction: the book, its frozen
configuration, signals with their full transition logs, decisions, paper and shadow
trades, equity points and the engine state. A failure leaves no partial book.

It sits at the top of the write side (the shadow app) because it writes shadow trades.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from markets.selectors import candle_arrays
from markets.timestamps import ms_from_utc, utc_from_ms
from shadow.models import ShadowTrade
from shadow.persistence import BookWriter, Written
from signals.domain import engine
from signals.economics import economics_seed, economics_with_quotes
from signals.models import (
    Book,
    BookGuard,
    BookState,
    BookStrategy,
    EquityPoint,
    GuardConfig,
    GuardDecision,
    PaperTrade,
    Signal,
    SignalTransition,
    StrategyConfig,
)
from signals.services import LIVE_BOOK, book_configure, engine_config_of

Progress = Callable[[str, int], object]
"""Called with ("candles", n) as the engine finishes n candles, ("rows to write", n)
once it knows how many rows the book gets, then ("rows", n) as they are written."""


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
) -> ReplayResult:
    """Replay the stored candles of every market ``strategies`` trade into the replay
    book ``name`` (replacing a replay book of that name), up to ``until``. Candles before
    ``since`` only warm the indicators up: no signal is made on them.

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
    candles = {
        key: candle_arrays(
            exchange=market.exchange, symbol=market.symbol, timeframe=market.timeframe, until=until
        )
        for key, market in engine.markets_of(config, engine.EngineState()).items()
    }
    result = engine.run(
        config,
        engine.EngineState(),
        candles,
        signals_from=ms_from_utc(since) if since else None,
    )
    report("candles", result.candles)
    report(
        "rows to write",
        len(result.signals)
        + len(result.transitions)
        + sum(len(s.verdicts) for s in result.signals)
        + len(result.trades)
        + len(result.equity),
    )

    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A replay book can always be written again: not waiting for its commit to
            # reach the disk is safe (a crash may lose the book, never corrupt it).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        replaced = _replay_book_delete(name)
        last_candle = max(result.state.last_time.values(), default=None)
        book = Book.objects.create(
            name=name,
            kind=Book.Kind.REPLAY,
            description=description,
            since=since,
            until=utc_from_ms(last_candle) if last_candle is not None else until,
            ablation_of=ablation_of,
            without_guard=without_guard,
            economics=economics,
        )
        book_configure(book=book, strategies=strategies, guards=guards)
        BookState.objects.create(book=book, state=result.state.to_json())
        writer = BookWriter(
            book=book,
            strategies={s.name: s for s in BookStrategy.objects.filter(book=book)},
            guards={g.name: g for g in BookGuard.objects.filter(book=book)},
        )
        written, _ids = writer.insert_new(
            signals=result.signals,
            transitions=result.transitions,
            trades=result.trades,
            equity=result.equity,
            on_rows=lambda n: report("rows", n),
        )
    return ReplayResult(book=book, candles=result.candles, replaced=replaced, written=written)


def _replay_book_delete(name: str) -> bool:
    """Delete the replay book ``name`` with everything in it; whether there was one.

    The leaf tables go first with one statement each, so the ORM's cascade only finds
    the book's signals and configuration left to collect, not every row hanging off them.
    """
    book = Book.objects.filter(name=name, kind=Book.Kind.REPLAY).first()
    if book is None:
        return False
    for model in (GuardDecision, SignalTransition):
        model.objects.filter(signal__book=book).delete()
    for leaf in (PaperTrade, ShadowTrade, EquityPoint):
        leaf.objects.filter(book=book).delete()
    Signal.objects.filter(book=book).delete()
    book.delete()
    return True
