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

from dataclasses import dataclass
from datetime import UTC, date
from decimal import Decimal
from typing import Any

import numpy as np
from django.db.models import (
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDate

from analytics.filters import Filters
from analytics.metrics import TradeStats, trade_stats
from markets.timestamps import ms_from_utc
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
    return {
        f"{name}blocked": Count("id", filter=among & counted),
        f"{name}closed": Count("id", filter=among & closed),
        f"{name}wins": Count("id", filter=among & closed & Q(**{f"{pnl}__gt": 0})),
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


def opportunity_totals(filters: Filters) -> dict[str, Any]:
    """The blocked opportunity cost with its counts, and the part of it from signals that
    exactly one guard blocked (sole-attributable) and from those two or more blocked."""
    blockers = (
        GuardDecision.objects.filter(signal=OuterRef("pk"), verdict=BLOCK)
        .order_by()
        .values("signal")
        .annotate(count=Count("id"))
        .values("count")
    )
    counted = window("candle_time", filters)
    row = (
        Signal.objects.filter(_blocked_signals(filters))
        .annotate(blockers=Coalesce(Subquery(blockers, output_field=IntegerField()), 0))
        .aggregate(
            **_shadow_sums(filters),
            **_shadow_sums(filters, Q(blockers=1), name="single_"),
            **_shadow_sums(filters, Q(blockers__gte=2), name="multi_"),
            still_open=Count(
                "id",
                filter=counted
                & Q(
                    shadow_trade__group=ShadowTrade.Group.BLOCKED,
                    shadow_trade__status__in=STILL_OPEN,
                ),
            ),
            never_entered=Count(
                "id",
                filter=counted
                & Q(
                    shadow_trade__group=ShadowTrade.Group.BLOCKED,
                    shadow_trade__status=ShadowTrade.Status.EXPIRED,
                ),
            ),
        )
    )
    return {
        **_cost_row(row),
        "still_open": row["still_open"],
        "never_entered": row["never_entered"],
        "single_guard": _cost_row(row, "single_"),
        "several_guards": _cost_row(row, "multi_"),
    }


def opportunity_by_guard(filters: Filters) -> list[dict[str, Any]]:
    """Per guard (by name): the opportunity cost of every signal it blocked ("any": a
    signal two guards blocked counts for both) and of those it alone blocked ("sole")."""
    another_guard_blocked = GuardDecision.objects.filter(
        signal_id=OuterRef("signal_id"), verdict=BLOCK
    ).exclude(guard=OuterRef("guard"))
    blocking = Q(verdict=BLOCK)
    sole = Q(blocking, ~Exists(another_guard_blocked))
    rows = (
        GuardDecision.objects.filter(_blocked_signals(filters, "signal__"))
        .values("guard")
        .order_by("guard")
        .annotate(
            **_shadow_sums(filters, blocking, "signal__", "any_"),
            **_shadow_sums(filters, sole, "signal__", "sole_"),
        )
    )
    return [
        {"guard": row["guard"], "any": _cost_row(row, "any_"), "sole": _cost_row(row, "sole_")}
        for row in rows
    ]


def opportunity_by_strategy(filters: Filters) -> list[dict[str, Any]]:
    """Per strategy configuration version of the book."""
    rows = (
        Signal.objects.filter(_blocked_signals(filters))
        .values(
            "book_strategy_id",
            "book_strategy__name",
            "book_strategy__kind",
            "book_strategy__config_version",
            "book_strategy__symbol",
            "book_strategy__timeframe",
        )
        .order_by("book_strategy__name", "book_strategy__config_version", "book_strategy_id")
        .annotate(**_shadow_sums(filters))
    )
    return [
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
            **_cost_row(row),
        }
        for row in rows
    ]


def opportunity_by_symbol(filters: Filters) -> list[dict[str, Any]]:
    rows = (
        Signal.objects.filter(_blocked_signals(filters))
        .values("symbol")
        .order_by("symbol")
        .annotate(**_shadow_sums(filters))
    )
    return [{"symbol": row["symbol"], **_cost_row(row)} for row in rows]


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
    period, in one query (a UNION ALL)."""
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
    columns = ("signal__book_strategy_id", "pnl", "exit_time")
    rows = list(
        paper.order_by()
        .values_list(*columns, Value(0, output_field=IntegerField()))
        .union(
            shadow.order_by().values_list(*columns, Value(1, output_field=IntegerField())),
            all=True,
        )
    )
    count = len(rows)
    return TradeColumns(
        strategy=np.fromiter((r[0] if r[0] is not None else -1 for r in rows), np.int64, count),
        pnl=np.fromiter((float(r[1]) for r in rows), float, count),
        exit_ms=np.fromiter((ms_from_utc(r[2]) for r in rows), np.int64, count),
        shadow=np.fromiter((bool(r[3]) for r in rows), bool, count),
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
