"""Queries behind the opportunity-cost page and the strategy leaderboard.

Every aggregate is computed in the database (one query per table or breakdown, whatever
the number of signals); the trade statistics SQL cannot give (drawdown, Sharpe) come from
``analytics.metrics`` over one query's columns, grouped per strategy with numpy.

Conventions (``analytics.filters``): signals are counted by their candle time, money by
the trade's exit time; ``strategy`` narrows to a strategy configuration's name in the
book, ``symbol`` to the signal's market symbol.

Sign convention: the **blocked opportunity cost** is the shadow P&L of the closed shadow
trades of blocked signals (what blocking gave up; negative = the blocks avoided a loss);
the guards' **net impact** is minus that (positive = the guards saved money).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import (
    Count,
    F,
    FilteredRelation,
    FloatField,
    Func,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    Window,
)
from django.db.models.functions import DenseRank, TruncDate
from psycopg.types.numeric import FloatLoader

from analytics.filters import Filters
from analytics.metrics import TradeStats, trade_stats
from shadow.models import ShadowTrade
from shadow.selectors import PASSED_GUARD_STATES
from signals.models import BookStrategy, GuardDecision, PaperTrade, Signal, SignalState

ZERO = Decimal(0)
BLOCK = GuardDecision.Verdict.BLOCK
STILL_OPEN = (ShadowTrade.Status.PENDING, ShadowTrade.Status.OPEN)


def window(field: str, filters: Filters) -> Q:
    """``field`` inside the filters' period (``since`` inclusive, ``until`` exclusive)."""
    where = Q()
    if filters.since is not None:
        where &= Q(**{f"{field}__gte": filters.since})
    if filters.until is not None:
        where &= Q(**{f"{field}__lt": filters.until})
    return where


def signal_scope(filters: Filters, prefix: str = "") -> Q:
    """Signals of the filters' book, narrowed by strategy name and symbol."""
    where = Q(**{f"{prefix}book": filters.book})
    if filters.strategy:
        where &= Q(**{f"{prefix}book_strategy__name": filters.strategy})
    if filters.symbol:
        where &= Q(**{f"{prefix}symbol": filters.symbol})
    return where


class EpochMs(Func):
    """Epoch milliseconds of a datetime column, floored (as ``ms_from_utc``), computed by
    the database so that no ``datetime`` is built per row."""

    template = "FLOOR(EXTRACT(EPOCH FROM %(expressions)s) * 1000)"
    output_field = FloatField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django keeps SQLite datetimes as UTC text; %f is "SS.SSS". A literal % is
        # doubled twice: once for this template, once for the cursor's placeholders.
        template = (
            "(CAST(strftime('%%%%s', %(expressions)s) AS INTEGER) * 1000"
            " + CAST(substr(strftime('%%%%f', %(expressions)s), 4) AS INTEGER))"
        )
        return self.as_sql(compiler, connection, template=template, **extra)


def float_columns(queryset: QuerySet[Any], width: int) -> np.ndarray:
    """The rows of ``queryset`` (a ``values_list`` of numbers) as a float array of
    ``width`` columns, NULL as NaN: one query, read straight into floats by the
    driver (no ``Decimal``, no ``datetime`` and no model per row)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.cursor.adapters.register_loader("numeric", FloatLoader)
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return np.array(rows, dtype=float).reshape(len(rows), width)


# --- Opportunity cost -------------------------------------------------------------------


def _blocked_signals(filters: Filters, prefix: str = "") -> Q:
    return signal_scope(filters, prefix) & Q(**{f"{prefix}state": SignalState.BLOCKED})


def _closed_shadow(filters: Filters, prefix: str = "") -> Q:
    """A blocked signal's shadow trade, closed with a P&L inside the period."""
    trade = f"{prefix}shadow_trade__"
    return Q(
        **{
            f"{trade}group": ShadowTrade.Group.BLOCKED,
            f"{trade}status": ShadowTrade.Status.CLOSED,
            f"{trade}pnl__isnull": False,
        }
    ) & window(f"{trade}exit_time", filters)


def _shadow_sums(
    filters: Filters, among: Q | None = None, prefix: str = "", name: str = ""
) -> dict[str, Any]:
    """Counts and shadow P&L of blocked signals matching ``among`` (annotate/aggregate)."""
    among = among if among is not None else Q()
    counted = window(f"{prefix}candle_time", filters)
    closed = _closed_shadow(filters, prefix)
    pnl = f"{prefix}shadow_trade__pnl"
    # The signal's id (on a decision: its signal_id, in the partial index of blocks).
    signal = f"{prefix}id"
    return {
        f"{name}blocked": Count(signal, filter=among & counted),
        f"{name}closed": Count(signal, filter=among & closed),
        f"{name}wins": Count(signal, filter=among & closed & Q(**{f"{pnl}__gt": 0})),
        f"{name}pnl": Sum(pnl, filter=among & closed),
    }


def _cost_row(row: dict[str, Any], name: str = "") -> dict[str, Any]:
    pnl = row[f"{name}pnl"] if row[f"{name}pnl"] is not None else ZERO
    return {
        "blocked": row[f"{name}blocked"],
        "closed": row[f"{name}closed"],
        "made_money": row[f"{name}wins"],
        "opportunity_cost": pnl,
        "net_impact": -pnl,
    }


def opportunity_by_guard(filters: Filters) -> list[dict[str, Any]]:
    """Per guard (by name): the opportunity cost of every signal it blocked ("any": a
    signal two guards blocked counts for both). The "sole" part (signals it alone
    blocked) comes from ``opportunity_totals``, which counts each signal's blockers."""
    rows = (
        GuardDecision.objects.filter(_blocked_signals(filters, "signal__"), verdict=BLOCK)
        .values("guard")
        .order_by("guard")
        .annotate(**_shadow_sums(filters, prefix="signal__"))
    )
    return [{"guard": row["guard"], "any": _cost_row(row)} for row in rows]


def opportunity_totals(filters: Filters, guards: Sequence[str] = ()) -> dict[str, Any]:
    """The blocked opportunity cost with its counts, the part of it from signals that
    exactly one guard blocked (sole-attributable) and from those two or more blocked, and
    for each of ``guards`` the part from the signals it alone blocked (``"sole"``).

    One pass: a row per blocked signal with its blocking decisions counted once (a
    grouped join on the partial index of blocks: ``blockers``, and ``blocker``, the only
    one when there is one) and its counted shadow P&L (``counted_pnl``: null unless the
    blocked-group shadow trade closed with a P&L inside the period); every figure is
    then a conditional aggregate over those rows."""
    closed = _closed_shadow(filters)
    per_signal = (
        Signal.objects.filter(_blocked_signals(filters))
        .annotate(blocks=FilteredRelation("decisions", condition=Q(decisions__verdict=BLOCK)))
        .annotate(
            # signal_id and guard are the partial index's columns: an index-only scan.
            blockers=Count("blocks__signal_id"),
            blocker=Min("blocks__guard"),
            # One shadow trade per signal: Max picks its value out of the join's copies.
            counted_pnl=Max("shadow_trade__pnl", filter=closed),
            blocked_status=Max(
                "shadow_trade__status", filter=Q(shadow_trade__group=ShadowTrade.Group.BLOCKED)
            ),
        )
    )
    counted = window("candle_time", filters)

    def sums(among: Q, name: str) -> dict[str, Any]:
        return {
            f"{name}blocked": Count("id", filter=among & counted),
            f"{name}closed": Count("counted_pnl", filter=among),
            f"{name}wins": Count("id", filter=among & Q(counted_pnl__gt=0)),
            f"{name}pnl": Sum("counted_pnl", filter=among),
        }

    sole = Q(blockers=1)
    row = per_signal.aggregate(
        **sums(Q(), ""),
        **sums(sole, "single_"),
        **sums(Q(blockers__gte=2), "multi_"),
        **{
            key: value
            for index, guard in enumerate(guards)
            for key, value in sums(sole & Q(blocker=guard), f"sole{index}_").items()
        },
        still_open=Count("id", filter=counted & Q(blocked_status__in=STILL_OPEN)),
        never_entered=Count("id", filter=counted & Q(blocked_status=ShadowTrade.Status.EXPIRED)),
    )
    return {
        **_cost_row(row),
        "still_open": row["still_open"],
        "never_entered": row["never_entered"],
        "single_guard": _cost_row(row, "single_"),
        "several_guards": _cost_row(row, "multi_"),
        "sole": {guard: _cost_row(row, f"sole{index}_") for index, guard in enumerate(guards)},
    }


SUMMED = ("blocked", "closed", "wins", "pnl")


def _add(into: dict[str, Any], row: dict[str, Any]) -> None:
    """Add a grouped row's counts and exact (decimal) P&L into ``into``."""
    for key in SUMMED:
        if row[key] is not None:
            into[key] = row[key] if into[key] is None else into[key] + row[key]


def opportunity_by_strategy_and_symbol(
    filters: Filters,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per strategy configuration version of the book, and per market symbol: one query
    grouped by both (a strategy trades one market, so a handful of groups), each side
    then the sum of its groups' exact counts and decimal sums. Strategies come in the
    database's order (name, version, id), symbols in the database's order of symbols
    (its collation: a dense rank in the same query)."""
    rows = list(
        Signal.objects.filter(_blocked_signals(filters))
        .values(
            "book_strategy_id",
            "book_strategy__name",
            "book_strategy__kind",
            "book_strategy__config_version",
            "book_strategy__symbol",
            "book_strategy__timeframe",
            "symbol",
        )
        .order_by("book_strategy__name", "book_strategy__config_version", "book_strategy_id")
        .annotate(**_shadow_sums(filters))
        .annotate(symbol_rank=Window(DenseRank(), order_by=F("symbol").asc()))
    )
    strategies: dict[int | None, dict[str, Any]] = {}
    symbols: dict[str, dict[str, Any]] = {}
    for row in rows:
        strategy = strategies.setdefault(
            row["book_strategy_id"],
            {
                "id": row["book_strategy_id"],
                "name": row["book_strategy__name"] or "(no configuration)",
                "kind": row["book_strategy__kind"] or "",
                "version": row["book_strategy__config_version"],
                "market": " ".join(
                    part
                    for part in (row["book_strategy__symbol"], row["book_strategy__timeframe"])
                    if part
                ),
                **dict.fromkeys(SUMMED),
            },
        )
        _add(strategy, row)
        symbol = symbols.setdefault(
            row["symbol"],
            {"symbol": row["symbol"], "rank": row["symbol_rank"], **dict.fromkeys(SUMMED)},
        )
        _add(symbol, row)
    by_strategy = [
        {key: value for key, value in group.items() if key not in SUMMED} | _cost_row(group)
        for group in strategies.values()
    ]
    by_symbol = [
        {"symbol": group["symbol"], **_cost_row(group)}
        for group in sorted(symbols.values(), key=lambda group: group["rank"])
    ]
    return by_strategy, by_symbol


def opportunity_by_strategy(filters: Filters) -> list[dict[str, Any]]:
    """Per strategy configuration version of the book."""
    return opportunity_by_strategy_and_symbol(filters)[0]


def opportunity_by_symbol(filters: Filters) -> list[dict[str, Any]]:
    """Per market symbol."""
    return opportunity_by_strategy_and_symbol(filters)[1]


def opportunity_by_day(filters: Filters) -> list[dict[str, Any]]:
    """Per UTC day of the shadow trade's exit: closed shadow trades and their P&L (days
    without a close are absent)."""
    rows = (
        Signal.objects.filter(_blocked_signals(filters) & _closed_shadow(filters))
        .annotate(day=TruncDate("shadow_trade__exit_time", tzinfo=UTC))
        .values("day")
        .order_by("day")
        .annotate(
            closed=Count("id"),
            wins=Count("id", filter=Q(shadow_trade__pnl__gt=0)),
            pnl=Sum("shadow_trade__pnl"),
        )
    )
    result = []
    for row in rows:
        day = row["day"]
        pnl = row["pnl"] if row["pnl"] is not None else ZERO
        result.append(
            {
                "day": day if isinstance(day, date) else date.fromisoformat(str(day)),
                "closed": row["closed"],
                "made_money": row["wins"],
                "opportunity_cost": pnl,
                "net_impact": -pnl,
            }
        )
    return result


# --- Leaderboard ------------------------------------------------------------------------


def leaderboard_strategies(filters: Filters) -> list[dict[str, Any]]:
    """The book's strategy configurations (dicts), each with its signal counts and the
    exact (decimal) P&L sums of its closed paper trades and of the closed shadow trades
    of its blocked signals."""
    strategies = BookStrategy.objects.filter(book=filters.book)
    on_signals = Q(signals__book=filters.book)
    if filters.symbol:
        strategies = strategies.filter(symbol=filters.symbol)
        on_signals &= Q(signals__symbol=filters.symbol)
    counted = on_signals & window("signals__candle_time", filters)
    paper = on_signals & Q(
        signals__paper_trade__status=PaperTrade.Status.CLOSED,
        signals__paper_trade__pnl__isnull=False,
    )
    paper &= window("signals__paper_trade__exit_time", filters)
    shadow = on_signals & _closed_shadow(filters, "signals__") & Q(signals__state="blocked")
    rows = (
        strategies.order_by("name", "config_version", "id")
        .values("id", "name", "kind", "config_version", "exchange", "symbol", "timeframe")
        .annotate(
            signal_count=Count("signals", filter=counted),
            passed=Count("signals", filter=counted & Q(signals__state__in=PASSED_GUARD_STATES)),
            blocked=Count("signals", filter=counted & Q(signals__state=SignalState.BLOCKED)),
            rejected=Count("signals", filter=counted & Q(signals__state=SignalState.REJECTED)),
            paper_closed=Count("signals", filter=paper),
            paper_pnl=Sum("signals__paper_trade__pnl", filter=paper),
            shadow_closed=Count("signals", filter=shadow),
            shadow_pnl=Sum("signals__shadow_trade__pnl", filter=shadow),
        )
    )
    return list(rows)


@dataclass(frozen=True)
class TradeColumns:
    """One query's columns: the strategy configuration, P&L, exit time (ms) and whether
    the trade is a shadow trade of a blocked signal (else a closed paper trade)."""

    strategy: np.ndarray
    pnl: np.ndarray
    exit_ms: np.ndarray
    shadow: np.ndarray


def leaderboard_trades(filters: Filters) -> TradeColumns:
    """Every closed paper trade and every closed shadow trade of a blocked signal in the
    period, in one query (a UNION ALL) read as float columns (``float_columns``), in
    exit order: paper before shadow at the same exit time, then by id."""
    paper = PaperTrade.objects.filter(
        book=filters.book, status=PaperTrade.Status.CLOSED, pnl__isnull=False
    ).filter(window("exit_time", filters))
    shadow = ShadowTrade.objects.filter(
        book=filters.book,
        group=ShadowTrade.Group.BLOCKED,
        signal__state=SignalState.BLOCKED,
        status=ShadowTrade.Status.CLOSED,
        pnl__isnull=False,
    ).filter(window("exit_time", filters))
    if filters.symbol:
        paper = paper.filter(signal__symbol=filters.symbol)
        shadow = shadow.filter(signal__symbol=filters.symbol)

    def columns(kind: int) -> tuple[Any, ...]:
        return ("signal__book_strategy_id", "pnl", EpochMs("exit_time"), Value(kind), "id")

    table = float_columns(
        paper.order_by()
        .values_list(*columns(0))
        .union(shadow.order_by().values_list(*columns(1)), all=True),
        5,
    )
    strategy, pnl, exit_ms, kind, ids = table.T
    order = np.lexsort((ids, kind, exit_ms))
    return TradeColumns(
        strategy=np.nan_to_num(strategy[order], nan=-1).astype(np.int64),
        pnl=pnl[order],
        exit_ms=exit_ms[order].astype(np.int64),
        shadow=kind[order] == 1,
    )


def stats_by_strategy(columns: TradeColumns, mask: np.ndarray) -> dict[int, TradeStats]:
    """``trade_stats`` of the trades selected by ``mask``, per strategy configuration id."""
    strategy = columns.strategy[mask]
    if strategy.size == 0:
        return {}
    pnl, exit_ms = columns.pnl[mask], columns.exit_ms[mask]
    order = np.argsort(strategy, kind="stable")
    strategy, pnl, exit_ms = strategy[order], pnl[order], exit_ms[order]
    keys, starts = np.unique(strategy, return_index=True)
    ends = np.append(starts[1:], strategy.size)
    return {
        int(key): trade_stats(pnl[start:end], exit_ms[start:end])
        for key, start, end in zip(keys, starts, ends, strict=True)
    }
