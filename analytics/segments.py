"""Equity segments: a book's realised equity path summed per UTC day, so that maximum
drawdown, Sharpe and profit factor read one row per day instead of every closed trade.

A **segment** is a run of consecutive trades (in the order below) summed into: ``n``,
``total`` T, the highest running sum H (>= 0: the empty prefix counts), the lowest L
(<= 0), the largest fall of the running sum below its running peak D (the peak starting
at 0 at the segment's start), gross profit, gross loss, wins and losses. Segments fold
exactly: with E the equity before a segment and P the running peak (0 at the start), the
segment's worst fall is ``max(D, P - (E + L))``; then ``P = max(P, E + H)``,
``E += T``. The maximum drawdown of the whole sequence is the largest of those falls,
the same figure as ``analytics.metrics.max_drawdown`` over every trade. Sharpe of daily
P&L needs only the sum and the sum of squares of the days' totals and the first and last
day with a trade (days without one count 0, as ``analytics.metrics.sharpe``).

Rows (``EquitySegment``), per book, UTC exit day and series (``guarded``: closed paper
trades; ``unguarded``: those and the closed shadow trades of blocked signals, the
leaderboard's two columns):

- per strategy version (``strategy_id``, ``symbol`` empty): the leaderboard's rows;
- for the book (``strategy_id`` empty), every symbol (``symbol`` empty) and each symbol:
  the leaderboard's book row, unfiltered and filtered by symbol.

Only trades of a strategy version (a signal with a ``BookStrategy``) count, as on the
leaderboard. Within a day trades are in **exit time, then paper before shadow, then
id** order (paper trades and shadow trades have ids of their own), which is the order
that the leaderboard's trade columns had, with exit times to the microsecond.

Month rows fold their days, for the book's closed months only (those before the month
of its last day row), so a live write within the last month rewrites no month row.

A day's segments are one ``INSERT ... SELECT`` of running sums (window functions) over
its trades; they are kept with the rollups (``shadow.rollups.Extension``): rebuilt with
them and refreshed from the first day a write touched, in the same transaction under the
book's lock. A window reads its whole closed months from the month rows and its other
whole days from the day rows, folded by the database in one query; one that does not
start or end at midnight UTC reads its partial first and last day from the rows, through
the same query as the day rows, so every figure is the one a loop
over the window's trades gives. Money is exact (``numeric``) on PostgreSQL; SQLite sums
in floats.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from django.db import connection
from django.db.models import F, IntegerField, Max, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, TruncDate, TruncMonth

from analytics.models import EquitySegment
from shadow import rollups
from shadow.models import ShadowTrade
from signals.models import PaperTrade, SignalState

# Bump when a segment's definition changes: every book is rebuilt on its next read.
# 2: month rows, and the sums Sharpe needs. 3: month rows for closed months only.
VERSION = 3
NAME = "equity_segments"

GUARDED = EquitySegment.Series.GUARDED
UNGUARDED = EquitySegment.Series.UNGUARDED
ZERO = Decimal(0)
DAY, MONTH = EquitySegment.Grain.DAY, EquitySegment.Grain.MONTH
_MEASURES = (
    "n", "wins", "losses", "total", "high", "low", "fall", "gross_profit", "gross_loss",
    "squares", "first", "last",
)  # fmt: skip
_KEYS = ("day", "series", "strategy_id", "symbol")
_GROUP = ("series", "strategy_id", "symbol")


def _window(since: datetime | None, until: datetime | None) -> Q:
    where = Q(exit_time__isnull=False)
    if since is not None:
        where &= Q(exit_time__gte=since)
    if until is not None:
        where &= Q(exit_time__lt=until)
    return where


def _trades(book_id: int, since: datetime | None, until: datetime | None) -> tuple[str, list[Any]]:
    """The closed trades of the book with an exit in ``[since, until)`` as SQL: columns
    ``t_id``, ``t_kind`` (0 paper, 1 shadow of a blocked signal), ``t_exit``, ``t_day``
    (UTC exit day), ``t_pnl``, ``t_strategy``, ``t_symbol``."""

    def columns(rows: QuerySet[Any], kind: int) -> QuerySet[Any]:
        return (
            rows.filter(_window(since, until), signal__book_strategy_id__isnull=False)
            .order_by()
            .values_list(
                "id",
                Value(kind, output_field=IntegerField()),
                F("exit_time"),
                TruncDate("exit_time", tzinfo=UTC),
                "pnl",
                "signal__book_strategy_id",
                "signal__symbol",
            )
        )

    paper = PaperTrade.objects.filter(
        book_id=book_id, status=PaperTrade.Status.CLOSED, pnl__isnull=False
    )
    shadow = ShadowTrade.objects.filter(
        book_id=book_id,
        group=ShadowTrade.Group.BLOCKED,
        signal__state=SignalState.BLOCKED,
        status=ShadowTrade.Status.CLOSED,
        pnl__isnull=False,
    )
    union = columns(paper, 0).union(columns(shadow, 1), all=True)
    sql, params = union.query.sql_with_params()
    return f"SELECT * FROM ({sql}) AS u", list(params)


def _measures_sql() -> str:
    """``_MEASURES`` but ``first`` and ``last`` of a day's segment, as SQL aggregates over
    rows with columns ``t_pnl`` (the trade's P&L), ``r_run`` (the day's running sum up to
    it) and ``p_peak`` (the running maximum of ``r_run``)."""
    q = connection.ops.quote_name
    return f"""COUNT(*) AS {q("n")},
            COUNT(CASE WHEN t_pnl > 0 THEN 1 END) AS {q("wins")},
            COUNT(CASE WHEN t_pnl < 0 THEN 1 END) AS {q("losses")},
            SUM(t_pnl) AS {q("total")},
            CASE WHEN MAX(r_run) > 0 THEN MAX(r_run) ELSE 0 END AS {q("high")},
            CASE WHEN MIN(r_run) < 0 THEN MIN(r_run) ELSE 0 END AS {q("low")},
            MAX(CASE WHEN p_peak > 0 THEN p_peak ELSE 0 END - r_run) AS {q("fall")},
            SUM(CASE WHEN t_pnl > 0 THEN t_pnl ELSE 0 END) AS {q("gross_profit")},
            -SUM(CASE WHEN t_pnl < 0 THEN t_pnl ELSE 0 END) AS {q("gross_loss")},
            SUM(t_pnl) * SUM(t_pnl) AS {q("squares")}"""


def _select(book_id: int, since: datetime | None, until: datetime | None) -> tuple[str, list[Any]]:
    """The segments of the trades with an exit in ``[since, until)``, one per UTC day,
    series and group: columns ``day, series, strategy_id, symbol`` then ``_MEASURES``."""
    trades, params = _trades(book_id, since, until)
    # The union's columns by position: Django names them after the first query's.
    q = connection.ops.quote_name
    series = (
        f"SELECT '{GUARDED}' AS g_series, 0 AS g_book, 0 AS g_symbol "
        f"UNION ALL SELECT '{GUARDED}', 1, 0 UNION ALL SELECT '{GUARDED}', 1, 1 "
        f"UNION ALL SELECT '{UNGUARDED}', 0, 0 UNION ALL SELECT '{UNGUARDED}', 1, 0 "
        f"UNION ALL SELECT '{UNGUARDED}', 1, 1"
    )
    order = "t_exit, t_kind, t_id"
    part = "g_series, s_strategy, s_symbol, t_day"
    running = f"OVER (PARTITION BY {part} ORDER BY {order} ROWS UNBOUNDED PRECEDING)"
    sql = f"""
        WITH t (t_id, t_kind, t_exit, t_day, t_pnl, t_strategy, t_symbol) AS ({trades}),
        s AS (
            SELECT t.*, g.g_series,
                CASE WHEN g.g_book = 1 THEN NULL ELSE t_strategy END AS s_strategy,
                CASE WHEN g.g_symbol = 1 THEN t_symbol ELSE '' END AS s_symbol
            FROM t CROSS JOIN ({series}) AS g
            WHERE t.t_kind = 0 OR g.g_series = '{UNGUARDED}'
        ),
        r AS (SELECT s.*, SUM(t_pnl) {running} AS r_run FROM s),
        p AS (SELECT r.*, MAX(r_run) {running} AS p_peak FROM r)
        SELECT t_day AS {q("day")}, g_series AS {q("series")}, s_strategy AS {q("strategy_id")},
            s_symbol AS {q("symbol")},
            {_measures_sql()},
            t_day AS {q("first")}, t_day AS {q("last")}
        FROM p
        GROUP BY t_day, g_series, s_strategy, s_symbol
    """
    return sql, params


def _write(book_id: int, grain: str, select: tuple[str, list[Any]]) -> None:
    """``INSERT INTO`` the segments the rows of ``select`` (``_KEYS`` and ``_MEASURES``)."""
    sql, params = select
    q = connection.ops.quote_name
    columns = ", ".join(q(c) for c in ("book_id", "grain", *_KEYS, *_MEASURES))
    picked = ", ".join(f"x.{q(c)}" for c in (*_KEYS, *_MEASURES))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {EquitySegment._meta.db_table} ({columns}) "
            f"SELECT %s, %s, {picked} FROM ({sql}) AS x",
            [book_id, grain, *params],
        )


def _open_month(book_id: int) -> date | None:
    """The first day of the month of the book's last day row (``None`` without any):
    its months before this one are closed, and only those have month rows."""
    last = EquitySegment.objects.filter(book_id=book_id, grain=DAY).aggregate(last=Max("day"))
    return rollups.as_date(last["last"]).replace(day=1) if last["last"] is not None else None


def _months(book_id: int, low: date | None, high: date) -> None:
    """Month rows folded from the day rows of the months ``[low, high)`` (from the first
    for ``None``)."""
    days = EquitySegment.objects.filter(book_id=book_id, grain=DAY, day__lt=high)
    if low is not None:
        days = days.filter(day__gte=low)
    _write(book_id, MONTH, _fold_sql(days, months=True))


def rebuild(book_id: int) -> None:
    """Every segment of the book written again from its trades (inside the rollups'
    transaction, under the book's lock): day rows, and month rows for the closed
    months (those before the month of the book's last day row)."""
    EquitySegment.objects.filter(book_id=book_id).delete()
    _write(book_id, DAY, _select(book_id, None, None))
    current = _open_month(book_id)
    if current is not None:
        _months(book_id, None, current)


@functools.lru_cache(maxsize=256)
def _day_select(alias: str, book_id: int, first: date) -> tuple[str, tuple[Any, ...]]:
    """A refresh's ``_select`` from ``first`` on, built once per database, book and day
    (a live book refreshes the same day at every advance; building it took about 3 ms of
    the writer's CPU each time). The SQL depends on nothing else."""
    assert alias == connection.alias
    sql, params = _select(book_id, rollups.midnight(first), None)
    return sql, tuple(params)


def refresh(book_id: int, first: date) -> None:
    """The segments of UTC day ``first`` and every later day written again, and the
    month rows of the closed months from ``first``'s on or from the first closed month
    without one (none in the common case: a write within the book's last month)."""
    EquitySegment.objects.filter(book_id=book_id, grain=DAY, day__gte=first).delete()
    sql, params = _day_select(connection.alias, book_id, first)
    _write(book_id, DAY, (sql, list(params)))
    # The last day row and the newest month row: two index probes in one statement.
    table = EquitySegment._meta.db_table
    probe = f"(SELECT MAX(day) FROM {table} WHERE book_id = %s AND grain = %s)"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {probe}, {probe}", [book_id, DAY, book_id, MONTH])
        last, newest = cursor.fetchone()
    current = rollups.as_date(last).replace(day=1) if last is not None else None
    # The month after the newest month row: from there on no closed month has its row
    # yet (the book's last month when it was written has closed since).
    unwritten = _next_month(rollups.as_date(newest)) if newest is not None else date.min
    low = min(first.replace(day=1), unwritten, current or date.min)
    EquitySegment.objects.filter(book_id=book_id, grain=MONTH, day__gte=low).delete()
    if current is not None and low < current:
        _months(book_id, low, current)


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def register() -> None:
    """Keep the segments with the rollups (``AnalyticsConfig.ready``)."""
    rollups.extend(rollups.Extension(NAME, VERSION, rebuild, refresh))


# --- Reading ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fold:
    """The statistics of a sequence of closed trades (``analytics.metrics``'
    conventions), folded from its segments: counts, exact sums (``Decimal``), maximum
    drawdown (money, >= 0), profit factor (gross profit / gross loss, ``None`` without
    a loss) and Sharpe of daily P&L (``None`` with fewer than two days or no variation)."""

    trades: int
    wins: int
    losses: int
    total_pnl: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    max_drawdown: Decimal
    sharpe: float | None

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.trades if self.trades else None

    @property
    def profit_factor(self) -> Decimal | None:
        return self.gross_profit / self.gross_loss if self.gross_loss > 0 else None


EMPTY = Fold(0, 0, 0, ZERO, ZERO, ZERO, ZERO, None)


def money(value: Any) -> Decimal:
    if value is None:
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _sharpe(
    total: Decimal, squares: Decimal, first: date | None, last: date | None
) -> float | None:
    """``analytics.metrics.sharpe`` from the sum and the sum of squares of the daily
    totals: every day from the first to the last with a trade counted, those without
    one as 0 (they add nothing to either sum). Exact decimals up to the square root."""
    if first is None or last is None:
        return None
    days = (last - first).days + 1
    if days < 2:
        return None
    with localcontext() as context:
        context.prec = 80
        variance = (squares - total * total / days) / (days - 1)
        if variance <= 0:
            return None
        return float(total / days / variance.sqrt()) * math.sqrt(365.0)


def fold(segments: Iterable[dict[str, Any]]) -> Fold:
    """The statistics of the segments' trades, the segments in order (each a dict of
    ``EquitySegment``'s measures)."""
    trades = wins = losses = 0
    equity = peak = worst = gross_profit = gross_loss = squares = ZERO
    first: date | None = None
    last: date | None = None
    for segment in segments:
        n = int(segment["n"])
        if not n:
            continue
        total, high, low = (money(segment[k]) for k in ("total", "high", "low"))
        worst = max(worst, money(segment["fall"]), peak - (equity + low))
        peak = max(peak, equity + high)
        equity += total
        trades += n
        wins += int(segment["wins"])
        losses += int(segment["losses"])
        gross_profit += money(segment["gross_profit"])
        gross_loss += money(segment["gross_loss"])
        squares += money(segment["squares"])
        low_day, high_day = rollups.as_date(segment["first"]), rollups.as_date(segment["last"])
        first = low_day if first is None else min(first, low_day)
        last = high_day if last is None else max(last, high_day)
    sharpe = _sharpe(equity, squares, first, last)
    return Fold(trades, wins, losses, equity, gross_profit, gross_loss, worst, sharpe)


def _rows(sql: str, params: Iterable[Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _fold_sql(rows: QuerySet[EquitySegment], *, months: bool) -> tuple[str, list[Any]]:
    """The segments ``rows`` folded in day order per series and group (and month, for
    ``months``: a month row's ``day`` is the month's first day), by the database with
    window functions: ``fold``'s arithmetic, one segment per group with ``_KEYS`` and
    ``_MEASURES``."""
    q = connection.ops.quote_name
    picked = rows.order_by().values(*_KEYS, *_MEASURES)
    group = ", ".join(q(c) for c in _GROUP)
    day = f"MIN({q('day')})"
    if months:
        picked = picked.annotate(month=TruncMonth("day"))
        group += f", {q('month')}"
        day = q("month")
    sql, params = picked.query.sql_with_params()
    before = (
        f"OVER (PARTITION BY {group} ORDER BY {q('day')} "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
    )
    # e: the equity before the segment; peak: the running peak before it (0 at the start).
    high, low, fall = q("high"), q("low"), q("fall")
    sums = ", ".join(
        f"SUM({q(c)}) AS {q(c)}"
        for c in ("n", "wins", "losses", "total", "gross_profit", "gross_loss", "squares")
    )
    return (
        f"""
        WITH d AS (
            SELECT x.*, COALESCE(SUM(x.{q("total")}) {before}, 0) AS e
            FROM ({sql}) AS x
        ),
        p AS (SELECT d.*, COALESCE(MAX(e + {high}) {before}, 0) AS p_raw FROM d),
        w AS (SELECT p.*, CASE WHEN p_raw > 0 THEN p_raw ELSE 0 END AS peak FROM p)
        SELECT {group}, {day} AS {q("day")}, {sums},
            CASE WHEN MAX(e + {high}) > 0 THEN MAX(e + {high}) ELSE 0 END AS {high},
            CASE WHEN MIN(e + {low}) < 0 THEN MIN(e + {low}) ELSE 0 END AS {low},
            MAX(CASE WHEN {fall} > peak - (e + {low}) THEN {fall} ELSE peak - (e + {low}) END)
                AS {fall},
            MIN({q("first")}) AS {q("first")}, MAX({q("last")}) AS {q("last")}
        FROM w
        GROUP BY {group}
        """,
        list(params),
    )


@functools.lru_cache(maxsize=256)
def _whole_fold(
    alias: str,
    book_id: int,
    ids: tuple[int, ...],
    symbol: str,
    first: date | None,
    stop: date | None,
) -> tuple[str, list[Any]]:
    """``figures``' statement folding the whole days ``[first, stop)`` of the strategy
    versions ``ids`` and of the book (``symbol``'s trades when given), compiled once per
    database, book, versions and days: the SQL depends on nothing else (the rows, the
    last closed month among them, are read when it runs)."""
    assert alias == connection.alias
    # Whole months from the month rows, the days around them from the day rows
    # (the grains of ``shadow.rollups``, which these rows share), and the days of
    # the months after the last closed one, which have no month rows yet.
    closed = Coalesce(
        Subquery(
            EquitySegment.objects.filter(book_id=book_id, grain=MONTH)
            .order_by("-day")
            .values("day")[:1]
        ),
        Value(date.min),
    )
    # The first day row after the last closed month (an index range from there).
    after = Coalesce(
        Subquery(
            EquitySegment.objects.filter(book_id=book_id, grain=DAY, day__gt=closed)
            .annotate(month=TruncMonth("day"))
            .filter(month__gt=closed)
            .order_by("day")
            .values("day")[:1]
        ),
        Value(date.max),
    )
    recent = Q(grain=DAY, day__gte=after)
    if first is not None:
        recent &= Q(day__gte=first)
    if stop is not None:
        recent &= Q(day__lt=stop)
    rows = EquitySegment.objects.filter(
        Q(strategy_id__in=list(ids), symbol="") | Q(strategy_id__isnull=True, symbol=symbol),
        rollups.grains(first, stop, months=True) | recent,
        book_id=book_id,
    )
    return _fold_sql(rows, months=False)


def figures(
    book_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    strategies: Collection[int] = (),
    symbol: str = "",
    clock: datetime | None = None,
) -> dict[tuple[str, int | None], Fold]:
    """Per (series, strategy version id) the statistics of the closed trades with an
    exit in ``[since, until)``, for the versions ``strategies`` and the book (key
    ``None``: every strategy version, only ``symbol``'s trades when given). The whole
    days' segments folded by the database (one query), a partial first and last day
    from the rows through the segments' own query. ``clock`` is the book's clock:
    nothing lies after it, so a window ending after it has no partial last day. The
    rollups must be built (``shadow.rollups.ensure_built``)."""
    if until is not None and clock is not None and until > clock:
        until = None
    first, stop, edges, whole = rollups.split_window(since, until)
    ids = set(strategies)

    def wanted(row: dict[str, Any]) -> bool:
        if row["strategy_id"] is None:
            return bool(row["symbol"] == symbol)
        return row["strategy_id"] in ids and row["symbol"] == ""

    head: list[dict[str, Any]] = []
    tail: list[dict[str, Any]] = []
    for low, high in edges:
        found = sorted(
            (row for row in _rows(*_select(book_id, low, high)) if wanted(row)),
            key=lambda row: rollups.as_date(row["day"]),
        )
        # A stretch before the whole days (or the only one) comes first, one after last.
        if first is not None and high is not None and high <= rollups.midnight(first):
            head += found
        else:
            tail += found
    middle: list[dict[str, Any]] = []
    if whole:
        key = tuple(sorted(ids))
        middle = _rows(*_whole_fold(connection.alias, book_id, key, symbol, first, stop))
    grouped: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
    for row in (*head, *middle, *tail):
        grouped.setdefault((row["series"], row["strategy_id"]), []).append(row)
    return {key: fold(rows) for key, rows in grouped.items()}


def stored(book_id: int) -> list[tuple[Any, ...]]:
    """The book's segments as comparable tuples (keys, then measures; money as
    ``Decimal``), sorted: what a rebuild must reproduce."""
    rows = EquitySegment.objects.filter(book_id=book_id).values_list("grain", *_KEYS, *_MEASURES)
    return sorted(
        ((r[0], str(r[1]), *r[2:5], *(int(v) for v in r[5:8]), *r[8:]) for r in rows),
        key=lambda row: tuple("" if v is None else str(v) for v in row),
    )


def days(
    book_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    strategy_id: int | None = None,
    symbol: str = "",
    clock: datetime | None = None,
    series: str = GUARDED,
) -> list[dict[str, Any]]:
    """The segments of each UTC exit day with a trade in ``[since, until)``, in day
    order (dicts of ``_KEYS`` and ``_MEASURES``, ``fold``'s input): one strategy
    version's (``strategy_id``), or the book's (``None``: every strategy version, only
    ``symbol``'s trades when given). Whole days are day rows (one index range), a
    partial first and last day come from the rows through the segments' own query;
    ``clock`` as in ``figures``. The rollups must be built."""
    if until is not None and clock is not None and until > clock:
        until = None
    first, stop, edges, whole = rollups.split_window(since, until)
    group = {"series": series, "strategy_id": strategy_id, "symbol": "" if strategy_id else symbol}

    def wanted(row: dict[str, Any]) -> bool:
        return all(row[key] == value for key, value in group.items())

    found = [
        row for low, high in edges for row in _rows(*_select(book_id, low, high)) if wanted(row)
    ]
    if whole:
        strategy = Q(strategy_id=strategy_id) if strategy_id else Q(strategy_id__isnull=True)
        rows = EquitySegment.objects.filter(
            rollups.grains(first, stop, months=False),
            strategy,
            book_id=book_id,
            series=series,
            symbol=group["symbol"],
        )
        found += rows.order_by().values(*_KEYS, *_MEASURES)
    return sorted(found, key=lambda row: rollups.as_date(row["day"]))


def of_trades(trades: QuerySet[Any]) -> list[dict[str, Any]]:
    """One segment per UTC exit day of ``trades`` (closed trades with an exit time and a
    P&L, narrowed in any way: a paper trade queryset), in exit time then id order, in
    day order (``days``' rows without their group): the rows' own path for what the
    stored segments do not hold. One query: the segments' window functions."""
    q = connection.ops.quote_name
    picked = trades.order_by().values_list(
        "id", "exit_time", TruncDate("exit_time", tzinfo=UTC), "pnl"
    )
    sql, params = picked.query.sql_with_params()
    running = "OVER (PARTITION BY t_day ORDER BY t_exit, t_id ROWS UNBOUNDED PRECEDING)"
    return _rows(
        f"""
        WITH t (t_id, t_exit, t_day, t_pnl) AS ({sql}),
        r AS (SELECT t.*, SUM(t_pnl) {running} AS r_run FROM t),
        p AS (SELECT r.*, MAX(r_run) {running} AS p_peak FROM r)
        SELECT t_day AS {q("day")}, {_measures_sql()},
            t_day AS {q("first")}, t_day AS {q("last")}
        FROM p
        GROUP BY t_day
        ORDER BY t_day
        """,
        params,
    )
