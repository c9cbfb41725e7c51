"""A book's data stamp and clock, read with the book in one query of index probes.

The **stamp** of a book changes whenever a writer commits to it (see
``analytics.page_cache`` for who writes what): its id and creation time, its
``BookState`` revision and ``updated_at``, its newest signal id (index
``signal_book_newest``), a fingerprint of its configuration rows (newest id and the sum
of the active ids), of its orders (count, newest ``updated_at``) and of its ablation legs
(count, newest id). The **clock** is the open time of the last closed candle of its
markets (``clock_column``). Both are scalar subqueries annotated on a ``Book`` query
(``with_stamp``), so the page frame reads them with the book itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache as cache_result
from typing import Any

from django.db import connection
from django.db.models import BigIntegerField, DateTimeField, Field, QuerySet
from django.db.models.expressions import RawSQL

from markets.models import Candle
from signals.models import Book, BookGuard, BookState, BookStrategy, ExchangeOrder, Signal


def clock_column() -> RawSQL:
    """The book's clock as a column of a ``Book`` query: per market of its strategies,
    the newest stored candle up to the book's ``until`` (a backward probe of the index
    ``candle_unique_open_time`` each), the newest of those; or its last signal's candle
    when that is later or no candle is stored (index ``signal_book_clock``). Stored
    candles are closed ones: cleaning drops a candle still open."""
    book = f"{Book._meta.db_table}.id"
    until = f"{Book._meta.db_table}.until"
    candle = Candle._meta.db_table
    strategy = BookStrategy._meta.db_table
    signal = Signal._meta.db_table
    # SQLite (make run) has no GREATEST and no 'infinity': its scalar max() returns NULL
    # when either side is NULL, so each side falls back on the other.
    sqlite = connection.vendor == "sqlite"
    no_end = "'9999-12-31 23:59:59'" if sqlite else "'infinity'::timestamptz"
    last_candle = (
        f"SELECT max((SELECT c.open_time FROM {candle} c WHERE c.exchange = m.exchange "
        "AND c.symbol = m.symbol AND c.timeframe = m.timeframe "
        f"AND c.open_time <= COALESCE({until}, {no_end}) "
        "ORDER BY c.open_time DESC LIMIT 1)) "
        f"FROM (SELECT DISTINCT s.exchange, s.symbol, s.timeframe FROM {strategy} s "
        f"WHERE s.book_id = {book}) m"
    )
    last_signal = f"SELECT max(g.candle_time) FROM {signal} g WHERE g.book_id = {book}"
    if sqlite:
        both = (
            f"max(COALESCE(({last_candle}), ({last_signal})), "
            f"COALESCE(({last_signal}), ({last_candle})))"
        )
    else:
        both = f"GREATEST(({last_candle}), ({last_signal}))"
    return RawSQL(both, [], output_field=DateTimeField())


STAMP_FIELDS = (
    "stamp_revision",
    "stamp_state_at",
    "stamp_signal",
    "stamp_strategies",
    "stamp_strategies_active",
    "stamp_guards",
    "stamp_guards_active",
    "stamp_orders",
    "stamp_orders_at",
    "stamp_legs",
    "stamp_legs_newest",
)


def with_stamp(books: QuerySet[Book]) -> QuerySet[Book]:
    """``books`` with their data stamp's parts (``STAMP_FIELDS``) and their clock
    (``frame_clock``, ``analytics.filters.clock_column``) read in the same query: scalar
    subqueries, each an index probe (``candle_unique_open_time``, ``signal_book_clock``, ``signal_book_newest``, the
    unique index of ``BookState.book``) or a read of the book's few configuration and
    order rows. Written as SQL once: the ORM would take milliseconds to compile them."""
    return books.annotate(**_stamp_columns())


@cache_result
def _stamp_columns() -> dict[str, RawSQL]:
    book = f"{Book._meta.db_table}.id"
    signal = Signal._meta.db_table
    state = BookState._meta.db_table
    order = ExchangeOrder._meta.db_table

    def column(select: str, field: Field[Any, Any] | None = None) -> RawSQL:
        return RawSQL(f"({select})", [], output_field=field or BigIntegerField())

    def config(model: type[Any], active: bool) -> RawSQL:
        value = "CASE WHEN c.active THEN c.id ELSE 0 END" if active else "c.id"
        how = "sum" if active else "max"
        return column(
            f"SELECT {how}({value}) FROM {model._meta.db_table} c WHERE c.book_id = {book}"
        )

    table = Book._meta.db_table
    return {
        "frame_clock": clock_column(),
        "stamp_revision": column(f"SELECT s.revision FROM {state} s WHERE s.book_id = {book}"),
        "stamp_state_at": column(
            f"SELECT s.updated_at FROM {state} s WHERE s.book_id = {book}", DateTimeField()
        ),
        "stamp_signal": column(f"SELECT max(g.id) FROM {signal} g WHERE g.book_id = {book}"),
        "stamp_strategies": config(BookStrategy, active=False),
        "stamp_strategies_active": config(BookStrategy, active=True),
        "stamp_guards": config(BookGuard, active=False),
        "stamp_guards_active": config(BookGuard, active=True),
        "stamp_orders": column(f"SELECT count(*) FROM {order} o WHERE o.book_id = {book}"),
        "stamp_orders_at": column(
            f"SELECT max(o.updated_at) FROM {order} o WHERE o.book_id = {book}", DateTimeField()
        ),
        # Its ablation legs (each its own book, written once): the guards and performance
        # pages show them.
        "stamp_legs": column(f"SELECT count(*) FROM {table} l WHERE l.ablation_of_id = {book}"),
        "stamp_legs_newest": column(
            f"SELECT max(l.id) FROM {table} l WHERE l.ablation_of_id = {book}"
        ),
    }


def book_stamps(book_ids: Iterable[int]) -> dict[int, str]:
    """The data stamp of each book in ``book_ids``, in one query of index probes."""
    ids = sorted(set(book_ids))
    if not ids:
        return {}
    return {book.pk: stamp_of(book) for book in with_stamp(Book.objects.filter(pk__in=ids))}


def stamp_of(book: Book) -> str:
    """``book``'s data stamp: from the parts read with it (``with_stamp``), else queried."""
    if not hasattr(book, STAMP_FIELDS[0]):
        return book_stamps([book.pk]).get(book.pk, f"{book.pk}|gone")
    parts = [book.pk, book.created_at, *(getattr(book, name) for name in STAMP_FIELDS)]
    return "|".join("" if part is None else str(part) for part in parts)


def book_stamp(book: Book) -> str:
    """``book``'s data stamp as it is now (always queried)."""
    return book_stamps([book.pk]).get(book.pk, f"{book.pk}|gone")
