"""Rollups: a book's rows summed per UTC day, kept in the transaction of every write.

A page reads what it shows (counts, P&L sums, wins, sums of squares) from
``BookRollup`` rows, one per day and group, instead of scanning every signal of the
book. Each fact is computed by exactly one query over the raw rows (``_facts``), used
three ways:

- ``refresh(book_id, since=...)``: in the writer's transaction, the days from
  ``since`` on are deleted and summed again from the rows (``INSERT ... SELECT``): a
  live advance costs the rows of the days it touched, a replay the rows it wrote;
- ``rebuild(book_id)``: every day of the book (``manage.py rollups_rebuild``, and a
  book whose rollups were built with older definitions: ``VERSION``);
- ``totals(...)``: a window that does not start or end at midnight UTC reads its whole
  days from the rollups and its partial first and last day from the rows, through the
  same query, so a figure is the same whichever way it was summed.

Facts (``BookRollup.Fact``) and their day, each per strategy version (and its
configuration: signals from before books froze versions have only that) and symbol:

- ``signals``: signals by candle day and state, blocked ones also by their shadow
  trade's status;
- ``blocked``: blocked signals by candle day and blocker (the one guard that blocked
  them, ``+`` for several);
- ``paper``: closed paper trades with a P&L by exit day;
- ``shadow``: closed shadow trades of blocked signals by exit day, with the blocker;
- ``guard_blocked``: blocking decisions of blocked signals by candle day, per guard;
- ``guard_shadow``: the same decisions whose shadow trade closed, by exit day;
- ``pool``: every closed shadow trade (blocked signals' and the control group's) by
  exit day, with its blocker (empty when no guard blocked it): the pool of the honest
  verdicts (``analytics.guard_skill``).

The guard facts also carry the guard's configuration version (``guard_config_id``,
the ``BookGuard``; for a blocker, that of the one guard that blocked the signal).

Other per-day summaries that must stay in step with the rows (summaries a sum cannot
hold: a histogram, an equity path) register an ``Extension``: its rebuild and refresh
run in the same transaction, under the same lock, as the rollups', and its version is
part of the rollups' (``current_version``), so changing it rebuilds every book on its
next read.

Dimensions are only those the pages group or filter on: every one multiplies the rows a
window reads (a signal's side, for one, is left out).

Writes to one book's rollups are serialised by a lock on the book's row, taken just
before the delete; each statement then sees every committed row (READ COMMITTED), so
two writers of a book never leave a day summed twice or from stale rows.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    DateField,
    DecimalField,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, TruncDate, TruncMonth

from shadow.models import BookRollup, RollupState, ShadowTrade
from signals.models import Book, GuardDecision, PaperTrade, Signal, SignalState

# Bump when a fact's definition changes: books built before are rebuilt on first read.
# 2: the pool fact and the guard's configuration version.
VERSION = 2

Fact = BookRollup.Fact
DIMENSIONS = (
    "day", "strategy_id", "config_id", "symbol", "state", "guard", "guard_config_id", "status",
)  # fmt: skip
MEASURES = ("n", "wins", "pnl", "pnl_sq")
SEVERAL = "+"
DAY, MONTH = BookRollup.Grain.DAY, BookRollup.Grain.MONTH
BLOCK = GuardDecision.Verdict.BLOCK
_COLUMNS = (*DIMENSIONS, *MEASURES)
_EMPTY = Value("", output_field=CharField())
_NO_MONEY = Cast(Value(None), DecimalField(max_digits=48, decimal_places=30))
_NO_ID = Cast(Value(None), IntegerField())


@dataclass(frozen=True, slots=True)
class Extension:
    """A per-day summary kept with the rollups: ``rebuild(book_id)`` deletes and writes
    every day of the book again, ``refresh(book_id, first)`` the UTC day ``first`` and
    every later one. Both are called inside the rollups' transaction, under the book's
    lock, after the rows are written. Bump ``version`` when its definition changes."""

    name: str
    version: int
    rebuild: Callable[[int], None]
    refresh: Callable[[int, date], None]


_EXTENSIONS: dict[str, Extension] = {}


def extend(extension: Extension) -> None:
    """Keep ``extension`` with the rollups (call it from an app's ``ready``)."""
    _EXTENSIONS[extension.name] = extension


def current_version() -> int:
    """The rollups' definitions with every extension's: what ``RollupState`` records."""
    return VERSION * 1000 + sum(extension.version for extension in _EXTENSIONS.values())


def _window(field: str, since: datetime | None, until: datetime | None) -> Q:
    where = Q()
    if since is not None:
        where &= Q(**{f"{field}__gte": since})
    if until is not None:
        where &= Q(**{f"{field}__lt": until})
    return where


def _scope(prefix: str, strategies: Collection[int] | None, symbol: str) -> Q:
    where = Q()
    if strategies is not None:
        where &= Q(**{f"{prefix}book_strategy_id__in": list(strategies)})
    if symbol:
        where &= Q(**{f"{prefix}symbol": symbol})
    return where


def _blocker(signal: Any) -> tuple[Case, Case, Subquery]:
    """The one guard that blocked ``signal`` (an ``OuterRef`` to its id), ``+`` when
    several did, empty when none did (read from an annotation ``blockers``); that one
    guard's configuration version (``None`` otherwise); and the count of its blocking
    decisions to annotate ``blockers`` with."""
    blocks = GuardDecision.objects.filter(signal_id=signal, verdict=BLOCK).order_by()
    count = Subquery(
        blocks.values("signal_id").annotate(c=Count("id")).values("c"),
        output_field=IntegerField(),
    )
    first = Subquery(blocks.order_by("guard").values("guard")[:1], output_field=CharField())
    config = Subquery(
        blocks.order_by("guard").values("book_guard_id")[:1], output_field=IntegerField()
    )
    return (
        Case(
            When(Q(blockers=1), then=first),
            When(Q(blockers__gte=2), then=Value(SEVERAL)),
            default=_EMPTY,
            output_field=CharField(),
        ),
        Case(When(Q(blockers=1), then=config), default=_NO_ID, output_field=IntegerField()),
        count,
    )


def _counts() -> dict[str, Any]:
    return {
        "r_n": Count("id"),
        "r_wins": Value(0, output_field=IntegerField()),
        "r_pnl": _NO_MONEY,
        "r_pnl_sq": Value(0.0, output_field=FloatField()),
    }


def _money(pnl: str) -> dict[str, Any]:
    return {
        "r_n": Count("id"),
        "r_wins": Count("id", filter=Q(**{f"{pnl}__gt": 0})),
        "r_pnl": Sum(pnl),
        "r_pnl_sq": Sum(Cast(F(pnl) * F(pnl), FloatField())),
    }


def _grouped(
    rows: QuerySet[Any],
    signal: str,
    day: str,
    measures: dict[str, Any],
    *,
    state: Any = _EMPTY,
    guard: Any = _EMPTY,
    guard_config: Any = _NO_ID,
    status: Any = _EMPTY,
) -> QuerySet[Any]:
    """``rows`` grouped by the rollup's dimensions (``signal``: the path to the signal,
    ``""`` on signals; ``day``: the field whose UTC day the row counts on)."""
    return (
        rows.order_by()
        .values(
            r_day=TruncDate(day, tzinfo=UTC),
            r_strategy_id=F(f"{signal}book_strategy_id"),
            r_config_id=F(f"{signal}strategy_config_id"),
            r_symbol=F(f"{signal}symbol"),
            r_state=state,
            r_guard=guard,
            r_guard_config_id=guard_config,
            r_status=status,
        )
        .annotate(**measures)
    )


def _facts(
    book_id: int,
    since: datetime | None,
    until: datetime | None,
    *,
    strategies: Collection[int] | None = None,
    symbol: str = "",
    only: Collection[str] | None = None,
) -> dict[str, QuerySet[Any]]:
    """Per fact, one grouped query over the book's rows whose day axis falls in
    ``[since, until)``: columns ``r_<dimension>`` and ``r_<measure>``."""
    wanted = set(only) if only is not None else set(Fact.values)
    facts: dict[str, QuerySet[Any]] = {}
    signals = Signal.objects.filter(
        _window("candle_time", since, until), _scope("", strategies, symbol), book_id=book_id
    )
    blocked = signals.filter(state=SignalState.BLOCKED)
    # A closed trade without an exit time (never written by the engine; a fixture, a
    # repair by hand) has no day: it is left out rather than stop every page.
    closed = ShadowTrade.objects.filter(
        _window("exit_time", since, until),
        _scope("signal__", strategies, symbol),
        book_id=book_id,
        group=ShadowTrade.Group.BLOCKED,
        signal__state=SignalState.BLOCKED,
        status=ShadowTrade.Status.CLOSED,
        pnl__isnull=False,
        exit_time__isnull=False,
    )
    decisions = GuardDecision.objects.filter(
        _scope("signal__", strategies, symbol),
        signal__book_id=book_id,
        signal__state=SignalState.BLOCKED,
        verdict=BLOCK,
    )
    trade = "signal__shadow_trade__"
    if Fact.SIGNALS in wanted:
        facts[Fact.SIGNALS] = _grouped(
            signals,
            "",
            "candle_time",
            _counts(),
            state=F("state"),
            status=Case(
                When(
                    Q(state=SignalState.BLOCKED, shadow_trade__group=ShadowTrade.Group.BLOCKED),
                    then=F("shadow_trade__status"),
                ),
                default=_EMPTY,
                output_field=CharField(),
            ),
        )
    if Fact.BLOCKED in wanted:
        guard, config, count = _blocker(OuterRef("pk"))
        facts[Fact.BLOCKED] = _grouped(
            blocked.annotate(blockers=count),
            "",
            "candle_time",
            _counts(),
            guard=guard,
            guard_config=config,
        )
    if Fact.PAPER in wanted:
        paper = PaperTrade.objects.filter(
            _window("exit_time", since, until),
            _scope("signal__", strategies, symbol),
            book_id=book_id,
            status=PaperTrade.Status.CLOSED,
            pnl__isnull=False,
            exit_time__isnull=False,
        )
        facts[Fact.PAPER] = _grouped(paper, "signal__", "exit_time", _money("pnl"))
    if Fact.SHADOW in wanted:
        guard, config, count = _blocker(OuterRef("signal_id"))
        facts[Fact.SHADOW] = _grouped(
            closed.annotate(blockers=count),
            "signal__",
            "exit_time",
            _money("pnl"),
            guard=guard,
            guard_config=config,
        )
    if Fact.POOL in wanted:
        guard, config, count = _blocker(OuterRef("signal_id"))
        pool = ShadowTrade.objects.filter(
            _window("exit_time", since, until),
            _scope("signal__", strategies, symbol),
            book_id=book_id,
            status=ShadowTrade.Status.CLOSED,
            pnl__isnull=False,
            exit_time__isnull=False,
        )
        facts[Fact.POOL] = _grouped(
            pool.annotate(blockers=count),
            "signal__",
            "exit_time",
            _money("pnl"),
            guard=guard,
            guard_config=config,
        )
    if Fact.GUARD_BLOCKED in wanted:
        facts[Fact.GUARD_BLOCKED] = _grouped(
            decisions.filter(_window("signal__candle_time", since, until)),
            "signal__",
            "signal__candle_time",
            _counts(),
            guard=F("guard"),
            guard_config=F("book_guard_id"),
        )
    if Fact.GUARD_SHADOW in wanted:
        facts[Fact.GUARD_SHADOW] = _grouped(
            decisions.filter(
                _window(f"{trade}exit_time", since, until),
                **{
                    f"{trade}group": ShadowTrade.Group.BLOCKED,
                    f"{trade}status": ShadowTrade.Status.CLOSED,
                    f"{trade}pnl__isnull": False,
                    f"{trade}exit_time__isnull": False,
                },
            ),
            "signal__",
            f"{trade}exit_time",
            _money(f"{trade}pnl"),
            guard=F("guard"),
            guard_config=F("book_guard_id"),
        )
    return facts


def midnight(day: date) -> datetime:
    """The start of a UTC day."""
    return datetime.combine(day, time(), tzinfo=UTC)


Statement = tuple[str, tuple[Any, ...]]


def _insert_select(columns: tuple[str, ...], selects: list[tuple[str, list[Any]]]) -> Statement:
    """The ``INSERT INTO`` the rollups' ``columns`` of the rows of ``selects`` (SQL and
    params each, their columns in that order) as one statement (a UNION ALL)."""
    target = ", ".join(connection.ops.quote_name(c) for c in columns)
    values = tuple(value for _sql, params in selects for value in params)
    union = " UNION ALL ".join(sql for sql, _params in selects)
    return f"INSERT INTO {BookRollup._meta.db_table} ({target}) {union}", values


def _execute(statements: Iterable[Statement]) -> None:
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)


def _picked(names: tuple[str, ...]) -> str:
    return ", ".join(connection.ops.quote_name(f"r_{c}") for c in names)


def _insert(book_id: int, facts: dict[str, QuerySet[Any]]) -> Statement:
    """Day rows from each fact's query over the raw rows."""
    selects = []
    for fact, rows in facts.items():
        sql, params = rows.query.sql_with_params()
        selects.append(
            (
                f"SELECT %s, %s, %s, {_picked(_COLUMNS)} FROM ({sql}) AS f",
                [book_id, fact, DAY, *params],
            )
        )
    return _insert_select(("book_id", "fact", "grain", *_COLUMNS), selects)


def _insert_months(book_id: int, first: date | None, until: date | None = None) -> Statement:
    """Month rows (``day`` = the month's first day) summed from the day rows of the
    months from ``first``'s on (every month for ``None``) that lie before ``until``
    (``None``: every one)."""
    days = BookRollup.objects.filter(book_id=book_id, grain=DAY)
    if first is not None:
        days = days.filter(day__gte=first.replace(day=1))
    if until is not None:
        days = days.filter(day__lt=until)
    rows = (
        days.order_by()
        .values(
            r_fact=F("fact"),
            r_day=TruncMonth("day"),
            **{f"r_{c}": F(c) for c in DIMENSIONS if c != "day"},
        )
        .annotate(r_n=Sum("n"), r_wins=Sum("wins"), r_pnl=Sum("pnl"), r_pnl_sq=Sum("pnl_sq"))
    )
    sql, params = rows.query.sql_with_params()
    return _insert_select(
        ("book_id", "grain", "fact", *_COLUMNS),
        [
            (
                f"SELECT %s, %s, {_picked(('fact', *_COLUMNS))} FROM ({sql}) AS m",
                [book_id, MONTH, *params],
            )
        ],
    )


@functools.lru_cache(maxsize=256)
def _day_statement(alias: str, book_id: int, first: date) -> Statement:
    """A refresh's ``INSERT ... SELECT`` of the day rows of ``first`` and later, compiled
    once per database, book and day. A live book refreshes the same day at every
    advance, and building the seven grouped queries with Django's ORM took about 60 ms
    of CPU each time (more than running them, at 200 markets). The SQL depends on
    nothing else: the rows are read when it runs."""
    assert alias == connection.alias
    return _insert(book_id, _facts(book_id, midnight(first), None))


def _lock(book_id: int) -> None:
    """Serialise rollup writes of one book (a no-op on SQLite, which has one writer)."""
    list(Book.objects.select_for_update().filter(pk=book_id).values_list("pk", flat=True))


def rebuild(book_id: int, *, on_stage: Callable[[str], None] | None = None) -> None:
    """Every rollup of the book summed again from its rows, in one transaction.
    ``on_stage(name)``, when given, hears each stage as it starts (the facts, the month
    rows, each extension by name) and ``"done"`` at the end: at 1,000,000 signals a
    rebuild takes minutes."""
    stage = on_stage or (lambda _name: None)
    with transaction.atomic():
        _lock(book_id)
        BookRollup.objects.filter(book_id=book_id).delete()
        stage("facts")
        _execute([_insert(book_id, _facts(book_id, None, None))])
        stage("months")
        _execute([_insert_months(book_id, None)])
        for name, extension in _EXTENSIONS.items():
            stage(name)
            extension.rebuild(book_id)
        RollupState.objects.update_or_create(
            book_id=book_id, defaults={"version": current_version(), "months_until": None}
        )
        _record_newest(book_id)
        stage("done")


# How many days of day rows past ``months_until`` a refresh leaves unfolded (what a page
# adds to the month rows: at most this many days and the refreshed ones).
FOLD_DAYS = 2


def refresh(book_id: int, *, since: datetime | None) -> None:
    """The book's rollups of the UTC day of ``since`` and every later day summed again
    from the rows (all of them for ``None``); a book never built, or built with older
    definitions, is rebuilt whole. Call it inside the writer's transaction, after the
    rows are written."""
    # Only the definitions matter here: this write's own new signals are not summed yet.
    if (
        since is None
        or not RollupState.objects.filter(book_id=book_id, version=current_version()).exists()
    ):
        rebuild(book_id)
        return
    first = since.astimezone(UTC).date()
    with transaction.atomic():
        _lock(book_id)
        # The month rows sum the day rows before ``months_until``; a page adds the day
        # rows from it on. A refresh from that day or up to FOLD_DAYS - 1 days after it
        # leaves them alone (a live book refreshes today, or yesterday when a trade of
        # yesterday's signal closes: alternating, each would have re-summed the month);
        # one from before it, or further on, folds the days before ``first`` into them
        # again, from the first month it changes.
        boundary = months_until(book_id)
        fold = boundary is None or first < boundary or (first - boundary).days >= FOLD_DAYS
        BookRollup.objects.filter(grain=DAY, day__gte=first, book_id=book_id).delete()
        statements = [_day_statement(connection.alias, book_id, first)]
        if fold:
            low = first if boundary is None else min(first, boundary)
            BookRollup.objects.filter(
                grain=MONTH, day__gte=low.replace(day=1), book_id=book_id
            ).delete()
            statements.append(_insert_months(book_id, low, first))
        _execute(statements)
        for extension in _EXTENSIONS.values():
            extension.refresh(book_id, first)
        if fold:
            _record_newest(book_id, months_until=first)
        else:
            _record_newest(book_id)


def _newest(book_id: int) -> Coalesce:
    """The book's newest signal id (0 without signals), as an expression."""
    newest = Signal.objects.filter(book_id=book_id).order_by("-id").values("id")[:1]
    return Coalesce(Subquery(newest, output_field=IntegerField()), Value(0))


def _record_newest(book_id: int, **also: Any) -> None:
    RollupState.objects.filter(book_id=book_id).update(newest_signal=_newest(book_id), **also)


def _months_until(book_id: int) -> Subquery:
    """``months_until`` as an expression (read in the page's own query)."""
    state = RollupState.objects.filter(book_id=book_id).values("months_until")[:1]
    return Subquery(state, output_field=DateField())


def months_until(book_id: int) -> date | None:
    """The day before which the book's month rows sum its day rows (``None``: all)."""
    return (
        RollupState.objects.filter(book_id=book_id).values_list("months_until", flat=True).first()
    )


def built(book_ids: Collection[int]) -> QuerySet[Any]:
    """The ``book_id`` of each of ``book_ids`` whose rollups are of today's definitions
    and have seen its newest signal (a subquery; per book two index probes)."""
    newest = Signal.objects.filter(book_id=OuterRef("book_id")).order_by("-id").values("id")[:1]
    return (
        RollupState.objects.filter(book_id__in=list(book_ids), version=current_version())
        .annotate(newest=Coalesce(Subquery(newest, output_field=IntegerField()), Value(0)))
        .filter(newest_signal=F("newest"))
        .values("book_id")
    )


def is_built(book_id: int) -> bool:
    """The book's rollups are of today's definitions and have seen its newest signal."""
    return built([book_id]).exists()


def ensure_built(book_id: int) -> None:
    """Rebuild the book's rollups if they were never built or are of older definitions
    (a book written before rollups existed: one rebuild, then kept by every write)."""
    if is_built(book_id):
        return
    with transaction.atomic():
        _lock(book_id)
        if not is_built(book_id):
            rebuild(book_id)


def grains(first: date | None, stop: date | None, *, months: bool, until: Any = None) -> Q:
    """The rollup rows covering the whole days ``[first, stop)`` (``None``: no bound):
    month rows for the whole months inside, day rows for the days around them (day rows
    only when ``months`` is false, for a sum per day). ``until`` (a date or an expression
    giving one): the month rows sum only the day rows before it
    (``RollupState.months_until``), so the day rows from it on inside those months are
    added (none when it is NULL or past them)."""

    def days(low: date | None, high: date | None) -> Q:
        where = Q(grain=DAY)
        if low is not None:
            where &= Q(day__gte=low)
        if high is not None:
            where &= Q(day__lt=high)
        return where

    if not months:
        return days(first, stop)
    # The first whole month: the month of ``first`` if it starts it, else the next one.
    start = None
    if first is not None:
        start = first if first.day == 1 else _next_month(first)
        if start is None:  # December of year 9999: no whole month after it
            return days(first, stop)
    end = stop.replace(day=1) if stop is not None else None
    if start is not None and end is not None and start >= end:
        return days(first, stop)
    whole = Q(grain=MONTH)
    if start is not None:
        whole &= Q(day__gte=start)
    if end is not None:
        whole &= Q(day__lt=end)
    found = whole
    if first is not None and start is not None and first < start:
        found |= days(first, start)
    if end is not None and (stop is None or end < stop):
        found |= days(end, stop)
    if until is not None:
        found |= days(start, end) & Q(day__gte=until)
    return found


def _next_month(day: date) -> date | None:
    """The first day of the month after ``day``'s; ``None`` past the calendar's end."""
    if (day.year, day.month) == (date.max.year, date.max.month):
        return None
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def split_window(
    since: datetime | None, until: datetime | None
) -> tuple[date | None, date | None, list[tuple[datetime | None, datetime | None]], bool]:
    """The whole UTC days inside ``[since, until)`` (first, and last exclusive; ``None``
    for no bound), the partial stretches at either end to read from the rows, and
    whether there are whole days at all: how every per-day summary reads a window."""
    since = since.astimezone(UTC) if since is not None else None
    until = until.astimezone(UTC) if until is not None else None
    first = None
    if since is not None:
        first = since.date()
        if since != midnight(first):
            if first == date.max:  # no whole day after the calendar's last
                return None, None, [(since, until)], False
            first += timedelta(1)
    stop = until.date() if until is not None else None
    if first is not None and stop is not None and first >= stop:
        return None, None, [(since, until)], False
    edges: list[tuple[datetime | None, datetime | None]] = []
    if since is not None and first is not None and since < midnight(first):
        edges.append((since, midnight(first)))
    if until is not None and stop is not None and midnight(stop) < until:
        edges.append((midnight(stop), until))
    return first, stop, edges, True


@dataclass(frozen=True, slots=True)
class Read:
    """One window's sums of one fact, as ``totals`` takes them (``reads`` takes several)."""

    fact: str
    by: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None
    strategies: Collection[int] | None = None
    symbol: str = ""
    where: dict[str, Any] | None = None


def totals(
    book_id: int,
    fact: str,
    *,
    by: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    strategies: Collection[int] | None = None,
    symbol: str = "",
    where: dict[str, Any] | None = None,
    check: bool = True,
    clock: datetime | None = None,
) -> list[dict[str, Any]]:
    """``fact``'s measures summed per ``by`` (dimensions) over the days of
    ``[since, until)``, narrowed to the strategy versions ``strategies`` and ``symbol``
    and to dimension values ``where`` (e.g. ``{"state": "blocked"}``).

    Whole days come from the rollups, a partial first or last day from the rows through
    the fact's own query, both in one statement (``reads``). Rows: the ``by`` values and
    ``n``, ``wins``, ``pnl`` (``Decimal``, ``None`` when nothing was summed) and
    ``pnl_sq``. ``check=False`` skips making sure the book's rollups are built (a caller
    reading several facts calls ``ensure_built`` once first). ``clock`` is the book's
    clock (``analytics.filters.book_clock``): no signal, entry or exit of the book lies
    after it, so a window ending after it has no partial last day to read from the
    rows."""
    read = Read(fact, by, since, until, strategies, symbol, where)
    return reads(book_id, [read], check=check, clock=clock)[0]


# A dimension's type, for the NULL a branch of ``reads`` gives for one it does not group by.
_TYPES = {
    "day": "date", "strategy_id": "integer", "config_id": "integer", "symbol": "varchar",
    "state": "varchar", "guard": "varchar", "guard_config_id": "integer", "status": "varchar",
}  # fmt: skip


Stretch = tuple[datetime | None, datetime | None]


def _moved(statement: Statement, old: Stretch, new: Stretch) -> Statement:
    """``statement``, compiled for the stretch ``old``, for the stretch ``new`` (each
    bound ``None`` in both or in neither): its window's bounds are its only parameters
    equal to ``old``'s, as the database driver is given them. Compiling a fact's query
    with Django costs more than running it over a partial day; this compiles one per
    fact and narrowing, whatever the number of windows."""
    adapt = connection.ops.adapt_datetimefield_value
    swap: dict[Any, Any] = {
        adapt(o): adapt(n) for o, n in zip(old, new, strict=True) if o is not None
    }
    sql, params = statement
    bounds = [p for p in params if isinstance(p, datetime | str)]
    if not set(swap) <= set(bounds):
        raise AssertionError(f"the window's bounds are not among the parameters of {sql}")
    return sql, tuple(swap.get(p, p) if isinstance(p, datetime | str) else p for p in params)


# Two instants no window bound is: the bounds a fact's query over a partial day is
# compiled with (``_edge_statement``), swapped for the real ones (``_moved``).
_SAMPLE: Stretch = (datetime(1, 1, 2, 1, tzinfo=UTC), datetime(1, 1, 2, 2, tzinfo=UTC))


@functools.lru_cache(maxsize=256)
def _edge_statement(
    alias: str,
    book_id: int,
    fact: str,
    strategies: tuple[int, ...] | None,
    symbol: str,
    bounded: tuple[bool, bool],
) -> tuple[Stretch, Statement]:
    """A fact's query over the rows of a stretch bounded below and above as
    ``bounded`` says, compiled once per database, book, fact and narrowing with bounds
    ``_SAMPLE`` (returned with it, for ``_moved``). The SQL depends on nothing else."""
    assert alias == connection.alias
    stretch = (_SAMPLE[0] if bounded[0] else None, _SAMPLE[1] if bounded[1] else None)
    rows = _facts(book_id, *stretch, strategies=strategies, symbol=symbol, only=(fact,))[fact]
    return stretch, rows.query.sql_with_params()


@functools.lru_cache(maxsize=1024)
def _whole_statement(
    alias: str,
    book_id: int,
    fact: str,
    by: tuple[str, ...],
    where: tuple[tuple[str, Any], ...],
    strategies: tuple[int, ...] | None,
    symbol: str,
    first: date | None,
    stop: date | None,
) -> Statement:
    """The sums per ``by`` of a fact's rollup rows of the whole days ``[first, stop)``
    (month rows for whole months unless ``by`` has the day), every dimension a column
    (NULL for those not in ``by``) then the measures: a branch of ``reads``, compiled
    once per database, book, read and days (the SQL depends on nothing else; the month
    rows' boundary is read when it runs)."""
    assert alias == connection.alias
    q = connection.ops.quote_name
    months = "day" not in by
    rows = grains(first, stop, months=months, until=_months_until(book_id) if months else None)
    # Each range of rows (the month rows, the day rows around them, the day rows from
    # ``months_until``: disjoint) a query of its own, in a UNION ALL: one index range each.
    # Their OR made PostgreSQL expect about ten times the day rows from ``months_until``
    # there are, and start parallel workers for a few hundred rows (2 to 18 ms).
    ranges = rows.children if rows.connector == Q.OR and not rows.negated else [rows]
    selects = []
    for part in ranges:
        stored = BookRollup.objects.filter(
            part if isinstance(part, Q) else Q(part),
            book_id=book_id,
            fact=fact,
            **dict(where),
        )
        if strategies is not None:
            stored = stored.filter(strategy_id__in=strategies)
        if symbol:
            stored = stored.filter(symbol=symbol)
        selects.append(stored.order_by().values(*by, *MEASURES).query.sql_with_params())
    sql = " UNION ALL ".join(f"SELECT * FROM ({part}) AS r" for part, _params in selects)
    params = tuple(value for _sql, part_params in selects for value in part_params)
    dimensions = ", ".join(
        f"w.{q(c)}" if c in by else f"CAST(NULL AS {_TYPES[c]})" for c in DIMENSIONS
    )
    sums = ", ".join(f"SUM(w.{q(c)})" for c in MEASURES)
    # Without ``by``, one sum (no GROUP BY: one row, its ``n`` NULL when empty).
    group = f" GROUP BY {', '.join(f'w.{q(c)}' for c in by)}" if by else ""
    return f"{dimensions}, {sums} FROM ({sql}) AS w{group}", params


def reads(
    book_id: int, wanted: Sequence[Read], *, check: bool = True, clock: datetime | None = None
) -> list[list[dict[str, Any]]]:
    """Each read's ``totals``, in order, in one statement whatever their number, a
    ``UNION ALL`` of: per read its whole days' rollup rows summed (a grouped branch,
    ``_whole_statement``); per partial first or last day (a stretch of one fact and
    narrowing, shared by the reads it is an edge of) the fact's own query over the rows
    (``_edge_statement``). A page reading several facts over several windows (the
    summary: four facts, three windows) pays one round trip and one plan, and Django
    compiles each branch once per process, not at every request: at 1,000,000 signals
    compiling the summary's branches took longer than running them."""
    for read in wanted:
        unknown = set(read.by) - set(DIMENSIONS)
        if unknown:
            raise ValueError(f"not a rollup dimension: {', '.join(sorted(unknown))}")
    if check:
        ensure_built(book_id)
    alias = connection.alias
    branches: list[tuple[str, list[Any]]] = []
    # What each branch's rows are: a read's whole days (its index), or a partial day (a
    # stretch) of one fact and narrowing, of the reads it is an edge of (their indexes).
    targets: list[int | list[int]] = []
    edges_of: dict[tuple[Any, ...], dict[Stretch, list[int]]] = {}

    def add(sql: str, params: Sequence[Any], target: Any) -> None:
        branches.append((f"SELECT %s, {sql}", [len(targets), *params]))
        targets.append(target)

    for index, read in enumerate(wanted):
        since, until = read.since, read.until
        if until is not None and clock is not None and until > clock:
            until = None
        first, stop, edges, whole = split_window(since, until)
        strategies = tuple(sorted(read.strategies)) if read.strategies is not None else None
        if strategies == ():
            continue  # no strategy version: nothing to read
        narrowing = (read.fact, strategies, read.symbol)
        for edge in edges:
            edges_of.setdefault(narrowing, {}).setdefault(edge, []).append(index)
        if whole:
            where = tuple(sorted((read.where or {}).items()))
            add(
                *_whole_statement(
                    alias, book_id, read.fact, tuple(read.by), where, strategies, read.symbol,
                    first, stop,
                ),
                index,
            )  # fmt: skip
    for (fact, strategies, symbol), stretches in edges_of.items():
        for stretch, indexes in stretches.items():
            bounded = (stretch[0] is not None, stretch[1] is not None)
            sample, compiled = _edge_statement(alias, book_id, fact, strategies, symbol, bounded)
            sql, params = _moved(compiled, sample, stretch)
            add(f"{_picked(_COLUMNS)} FROM ({sql}) AS e", params, indexes)
    found: list[dict[tuple[Any, ...], dict[str, Any]]] = [{} for _ in wanted]
    if branches:
        union = " UNION ALL ".join(sql for sql, _params in branches)
        with connection.cursor() as cursor:
            cursor.execute(union, [value for _sql, params in branches for value in params])
            for tag, *values in cursor.fetchall():
                row = dict(zip(_COLUMNS, values, strict=True))
                target = targets[tag]
                if isinstance(target, int):
                    # A whole days' branch: narrowed by ``where`` in SQL.
                    if row["n"] is not None:
                        _merge(found[target], wanted[target].by, [row])
                    continue
                for index in target:
                    read = wanted[index]
                    _merge(found[index], read.by, [row], where=read.where)
    return [list(rows.values()) for rows in found]


def _merge(
    found: dict[tuple[Any, ...], dict[str, Any]],
    by: Sequence[str],
    rows: Iterable[dict[str, Any]],
    *,
    where: dict[str, Any] | None = None,
) -> None:
    for row in rows:
        if where and any(row[k] != v for k, v in where.items()):
            continue
        key = tuple(as_date(row[k]) if k == "day" else row[k] for k in by)
        into = found.get(key)
        pnl = row["pnl"]
        pnl = Decimal(str(pnl)) if pnl is not None and not isinstance(pnl, Decimal) else pnl
        if into is None:
            found[key] = {
                **dict(zip(by, key, strict=True)),
                "n": int(row["n"] or 0),
                "wins": int(row["wins"] or 0),
                "pnl": pnl,
                "pnl_sq": float(row["pnl_sq"] or 0.0),
            }
            continue
        into["n"] += int(row["n"] or 0)
        into["wins"] += int(row["wins"] or 0)
        if pnl is not None:
            into["pnl"] = pnl if into["pnl"] is None else into["pnl"] + pnl
        into["pnl_sq"] += float(row["pnl_sq"] or 0.0)


def as_date(value: Any) -> date:
    """A day as the database returns it (a date; text on SQLite; a datetime's date)."""
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value))


class _Close(float):
    """A sum of squares (a float) equal to another within 1e-9 of its size: summed in
    another order, it may differ in the last bits."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, float) and math.isclose(self, other, rel_tol=1e-9, abs_tol=1e-9)

    __hash__ = float.__hash__


def _fine(pnl: Any) -> Decimal | None:
    """P&L to 1e-10: exact on PostgreSQL (numeric); on SQLite (floats of 15 digits) a sum
    in another order differs below that."""
    return None if pnl is None else Decimal(pnl).quantize(Decimal("1e-10"))


def stored(book_id: int) -> list[tuple[Any, ...]]:
    """The book's rollups as comparable tuples (grain, fact and dimensions, then
    measures; P&L as ``Decimal``), sorted: what a rebuild must reproduce. The day rows as
    they are; per month what a page reads for it, its month row plus its day rows from
    ``months_until`` on (a rebuild folds every day into the month rows, a live write
    leaves its last days out)."""
    until = months_until(book_id)
    found: list[tuple[Any, ...]] = []
    months: dict[tuple[Any, ...], list[Any]] = {}
    rows = BookRollup.objects.filter(book_id=book_id).values_list("grain", "fact", *_COLUMNS)
    for grain, fact, *rest in rows:
        dims, (n, wins, pnl, pnl_sq) = tuple(rest[:-4]), rest[-4:]
        if grain == DAY:
            found.append((DAY, fact, *dims, int(n), int(wins), _fine(pnl), _Close(pnl_sq)))
            if until is None or as_date(dims[0]) < until:
                continue
            dims = (as_date(dims[0]).replace(day=1), *dims[1:])
        into = months.setdefault((fact, as_date(dims[0]), *dims[1:]), [0, 0, None, 0.0])
        into[0] += int(n)
        into[1] += int(wins)
        if pnl is not None:
            into[2] = pnl if into[2] is None else into[2] + pnl
        into[3] += float(pnl_sq)
    found += [(MONTH, *key, n, w, _fine(p), _Close(q)) for key, (n, w, p, q) in months.items()]
    return sorted(found, key=lambda row: tuple("" if v is None else str(v) for v in row))
