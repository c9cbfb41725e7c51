"""Shadow fidelity per day: the fidelity page's summary summed from one row per UTC
candle day instead of comparing every control-group shadow trade with its executed
trade (``analytics.shadow_fidelity``).

Rows (``FidelityDay``), per book, UTC day of the signal's candle (the page's period
applies to the candle time), strategy version, symbol and side (the shadow trade's:
what ``analytics.trades.window`` narrows by): the ``shadow_fidelity.measures_query`` of
the day's pairs, grouped by the database over the page's own annotated pairs
(``shadow_fidelity.book_rows``), one ``INSERT ... SELECT``: one definition of
agreement. Counts and exact sums add up over days and groups; maxima take the largest;
a mean is a sum over its count.

They are kept with the rollups (``shadow.rollups.Extension``): rebuilt with them and
refreshed from the first candle day a write touched, in the same transaction under the
book's lock (a write changes only signals of that day or later: ``shadow.live``).

Live fills are written by ``signals.execution``, which does not refresh the rollups: a
day's row may predate an order of one of its signals. So a window reads from the rows,
through the same query, every whole day on which a signal of the book has an exchange
order (none in paper mode; the set of such days only grows), and its partial first and
last day (a window not starting or ending at midnight UTC); every other whole day from
its rows. Every figure is therefore the one the single aggregate over the window's pairs
gives.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal
from typing import Any

from django.db import connection
from django.db.models import Max, Q, Sum
from django.db.models.functions import TruncDate

from analytics.filters import Filters
from analytics.models import FidelityDay
from analytics.shadow_fidelity import measures_query, row_column, shown
from shadow import rollups
from signals.models import BookStrategy, ExchangeOrder

# Bump when a row's definition changes: every book is rebuilt on its next read.
VERSION = 1
NAME = "fidelity"

_KEYS = ("day", "strategy_id", "symbol", "side")
_COUNTS = (
    "pairs", "live", "compared", "exact", "disagreements", "reason_differs", "time_differs",
    "pnl_differs", "entry_n", "exit_n", "pnl_n",
)  # fmt: skip
_SUMS = ("entry_sum", "exit_sum", "pnl_sum")
_MAXIMA = ("entry_max", "exit_max", "pnl_max")
_MEASURES = (*_COUNTS, *_SUMS, *_MAXIMA)
_SQLITE_DIGITS = Context(prec=15)


def _select(book_id: int, since: datetime | None) -> tuple[str, list[Any]]:
    """The rows of the candle days from ``since`` on (every day for ``None``) as SQL:
    columns ``k_<key>`` then ``m_<measure>``."""
    where = [] if since is None else [(f"{row_column('k_time')} >= %s", [_time(since)])]
    return measures_query(book_id, where, tuple(f"k_{key}" for key in _KEYS))


def _time(moment: datetime) -> Any:
    """``moment`` as a parameter compared with a candle time (naive UTC text on SQLite)."""
    return connection.ops.adapt_datetimefield_value(moment)


def _write(book_id: int, since: datetime | None) -> None:
    sql, params = _select(book_id, since)
    q = connection.ops.quote_name
    columns = ", ".join(q(c) for c in ("book_id", *_KEYS, *_MEASURES))
    picked = ", ".join(
        [*(f"x.{q('k_' + c)}" for c in _KEYS), *(f"x.{q('m_' + c)}" for c in _MEASURES)]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {FidelityDay._meta.db_table} ({columns}) "
            f"SELECT %s, {picked} FROM ({sql}) AS x",
            [book_id, *params],
        )


def rebuild(book_id: int) -> None:
    """Every row of the book written again from its pairs (inside the rollups'
    transaction, under the book's lock)."""
    FidelityDay.objects.filter(book_id=book_id).delete()
    _write(book_id, None)


def refresh(book_id: int, first: date) -> None:
    """The rows of candle day ``first`` and every later day written again."""
    FidelityDay.objects.filter(book_id=book_id, day__gte=first).delete()
    _write(book_id, rollups.midnight(first))


def register() -> None:
    """Keep the rows with the rollups (``AnalyticsConfig.ready``)."""
    rollups.extend(rollups.Extension(NAME, VERSION, rebuild, refresh))


# --- Reading ----------------------------------------------------------------------------


def _empty() -> dict[str, Any]:
    return {
        **dict.fromkeys(_COUNTS, 0),
        **dict.fromkeys(_SUMS, None),
        **dict.fromkeys(_MAXIMA, None),
    }


def _read(name: str, value: Any) -> Any:
    """A measure as the database driver returned it, read as Django reads an aggregate:
    a count an ``int``, money a ``Decimal`` (on SQLite from a float, to the 15 digits it
    stores)."""
    if value is None:
        return None
    if name in _COUNTS:
        return int(value)
    if isinstance(value, (float, int)):
        return _SQLITE_DIGITS.create_decimal_from_float(value)
    return Decimal(value)


def _add(total: dict[str, Any], row: dict[str, Any]) -> None:
    """``row``'s measures added into ``total``: counts and sums summed, maxima the
    largest (``None``: nothing)."""
    for name in _COUNTS:
        total[name] += int(row[name] or 0)
    for name in _SUMS:
        if row[name] is not None:
            total[name] = Decimal(row[name]) + (total[name] or 0)
    for name in _MAXIMA:
        if row[name] is not None and (total[name] is None or row[name] > total[name]):
            total[name] = Decimal(row[name])


def _ranges(days: list[date]) -> list[tuple[datetime, datetime]]:
    """``days`` (sorted) as stretches of consecutive days, ``[start, end)`` in time."""
    found: list[tuple[datetime, datetime]] = []
    for day in days:
        start, end = rollups.midnight(day), rollups.midnight(day) + timedelta(days=1)
        if found and found[-1][1] == start:
            found[-1] = (found[-1][0], end)
        else:
            found.append((start, end))
    return found


def _narrowed(
    stretches: list[tuple[datetime | None, datetime | None]], filters: Filters
) -> list[tuple[str, list[Any]]]:
    """Conditions on the pairs' rows (``measures_query``): a candle time in one of
    ``stretches`` (``[low, high)``, ``None`` unbounded), and ``filters``' strategy (by
    name: its versions), symbol and side, as ``analytics.trades.window`` narrows."""
    time = row_column("k_time")
    anywhen, params = [], []
    for low, high in stretches:
        bounds = []
        if low is not None:
            bounds.append(f"{time} >= %s")
            params.append(_time(low))
        if high is not None:
            bounds.append(f"{time} < %s")
            params.append(_time(high))
        anywhen.append(" AND ".join(bounds) or "1 = 1")
    where = [(" OR ".join(f"({one})" for one in anywhen), params)]
    if filters.strategy:
        named = BookStrategy.objects.filter(name=filters.strategy).values("pk").order_by()
        sql, named_params = named.query.sql_with_params()
        where.append((f"{row_column('k_strategy_id')} IN ({sql})", list(named_params)))
    if filters.symbol:
        where.append((f"{row_column('k_symbol')} = %s", [filters.symbol]))
    if filters.side:
        where.append((f"{row_column('k_side')} = %s", [filters.side]))
    return where


def window_measures(filters: Filters) -> dict[str, Any]:
    """The ``measures`` of the pairs the page shows for ``filters`` (period by candle
    time, strategy, symbol, side): the whole days without an exchange order from their
    rows (one grouped read), the days with one and a partial first and last day from the
    pairs through the same query. The rollups are built first if they must be."""
    assert filters.book is not None
    book_id = filters.book.pk
    rollups.ensure_built(book_id)
    since, until = filters.since, filters.until
    if until is not None and filters.clock is not None and until > filters.clock:
        until = None  # nothing lies after the book's clock: no partial last day
    first, stop, edges, whole = rollups.split_window(since, until)
    stretches: list[tuple[datetime | None, datetime | None]] = list(edges)
    total = _empty()
    if whole:
        inside = Q()
        if first is not None:
            inside &= Q(day__gte=first)
        if stop is not None:
            inside &= Q(day__lt=stop)
        ordered = sorted(
            ExchangeOrder.objects.filter(book_id=book_id)
            .annotate(day=TruncDate("signal__candle_time", tzinfo=UTC))
            .filter(inside)
            .order_by()
            .values_list("day", flat=True)
            .distinct()
        )
        stretches += _ranges(ordered)
        rows = FidelityDay.objects.filter(inside, book_id=book_id).exclude(day__in=ordered)
        if filters.strategy:
            named = BookStrategy.objects.filter(name=filters.strategy).values("pk")
            rows = rows.filter(strategy_id__in=named)
        if filters.symbol:
            rows = rows.filter(symbol=filters.symbol)
        if filters.side:
            rows = rows.filter(side=filters.side)
        summed = {name: Sum(name) for name in (*_COUNTS, *_SUMS)}
        _add(total, rows.aggregate(**summed, **{name: Max(name) for name in _MAXIMA}))
    if stretches:
        sql, params = measures_query(book_id, _narrowed(stretches, filters))
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            names = [column[0] for column in cursor.description]
            found = dict(zip(names, cursor.fetchone(), strict=True))
        _add(total, {name: _read(name, found[f"m_{name}"]) for name in _MEASURES})
    return total


def summary(filters: Filters) -> dict[str, Any]:
    """The fidelity page's summary (``shadow_fidelity.shown``) of ``filters``' window."""
    return shown(window_measures(filters))


def stored(book_id: int) -> list[tuple[Any, ...]]:
    """The book's rows as comparable tuples (keys, then measures; money as ``Decimal``),
    sorted: what a rebuild must reproduce."""
    rows = FidelityDay.objects.filter(book_id=book_id).values_list(*_KEYS, *_MEASURES)
    return sorted(rows, key=lambda row: tuple("" if v is None else str(v) for v in row))
