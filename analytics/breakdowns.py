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
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import (
    FloatField,
    Func,
    Q,
    QuerySet,
)
from psycopg.types.numeric import FloatLoader

from analytics.filters import Filters
from shadow import rollups
from shadow.models import BookRollup, ShadowTrade
from shadow.selectors import PASSED_GUARD_STATES
from signals.models import BookStrategy, GuardDecision, SignalState

ZERO = Decimal(0)
Fact = BookRollup.Fact
BLOCKED = SignalState.BLOCKED
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
#
# Read from the book's rollups (``shadow.rollups``): blocked signals by candle day with
# their blocker (the one guard that blocked them, "+" for several) and shadow status,
# closed shadow trades of blocked signals by exit day with their blocker, and blocking
# decisions per guard. A window's whole days come from the rollups, its partial ends from
# the rows: the page costs the rows of the rollups it reads, not the book's signals.


def scope(filters: Filters) -> dict[str, Any]:
    """The rollup narrowing of the filters' strategy (its versions' ids in the book) and
    symbol."""
    strategies = None
    if filters.strategy:
        strategies = list(
            BookStrategy.objects.filter(book=filters.book, name=filters.strategy).values_list(
                "pk", flat=True
            )
        )
    return {"strategies": strategies, "symbol": filters.symbol}


def _rolled(
    filters: Filters, fact: str, by: Sequence[str], *, windowed: bool = True, **where: Any
) -> list[dict[str, Any]]:
    assert filters.book is not None
    return rollups.totals(
        filters.book.pk,
        fact,
        by=by,
        since=filters.since if windowed else None,
        until=filters.until if windowed else None,
        where=where or None,
        check=False,
        clock=filters.clock,
        **scope(filters),
    )


def _cost_row(sums: dict[str, Any]) -> dict[str, Any]:
    pnl = sums["pnl"] if sums["pnl"] is not None else ZERO
    return {
        "blocked": sums["blocked"],
        "closed": sums["closed"],
        "made_money": sums["wins"],
        "opportunity_cost": pnl,
        "net_impact": -pnl,
    }


def _empty() -> dict[str, Any]:
    return {"blocked": 0, "closed": 0, "wins": 0, "pnl": None}


def _count(into: dict[str, Any], n: int) -> None:
    into["blocked"] += n


def _close(into: dict[str, Any], row: dict[str, Any]) -> None:
    into["closed"] += row["n"]
    into["wins"] += row["wins"]
    if row["pnl"] is not None:
        into["pnl"] = row["pnl"] if into["pnl"] is None else into["pnl"] + row["pnl"]


def opportunity(filters: Filters) -> dict[str, Any]:
    """Every figure of the opportunity-cost page: ``totals`` (with the single/several
    split, what is still open and what never entered), ``guards`` (each guard's "any"
    part: every signal it blocked, a signal two guards blocked counting for both; and
    its "sole" part: the signals it alone blocked), ``strategies`` (per strategy
    version, by name and version), ``symbols`` (in the database's order) and ``days``
    (per UTC day of the shadow trade's exit, days without a close absent).

    Eight rollup reads whatever the number of signals: the blocked signals of the window
    by blocker and by shadow status, their closed shadow trades (and per day, from day
    rows: the others read whole months from month rows), the blocking decisions
    and their closed shadow trades per guard, and (all history) which guards blocked and
    which strategies had a blocked signal, so a guard or strategy with nothing in the
    window still shows its zeros."""
    assert filters.book is not None
    rollups.ensure_built(filters.book.pk)
    blocked = _rolled(filters, Fact.BLOCKED, ("strategy_id", "symbol", "guard"))
    statuses = _rolled(filters, Fact.SIGNALS, ("status",), state=BLOCKED)
    closed = _rolled(filters, Fact.SHADOW, ("strategy_id", "symbol", "guard"))
    daily = _rolled(filters, Fact.SHADOW, ("day",))
    names = sorted(
        {row["guard"] for row in _rolled(filters, Fact.GUARD_BLOCKED, ("guard",), windowed=False)}
    )
    any_blocked = {
        row["guard"]: row["n"] for row in _rolled(filters, Fact.GUARD_BLOCKED, ("guard",))
    }
    any_closed = {row["guard"]: row for row in _rolled(filters, Fact.GUARD_SHADOW, ("guard",))}
    ever = _rolled(filters, Fact.BLOCKED, ("strategy_id", "symbol"), windowed=False)

    total, single, several = _empty(), _empty(), _empty()
    sole = {name: _empty() for name in names}
    strategies: dict[int | None, dict[str, Any]] = {row["strategy_id"]: _empty() for row in ever}
    symbols: dict[str, dict[str, Any]] = {row["symbol"]: _empty() for row in ever}
    still_open = never_entered = 0

    def parts(row: dict[str, Any]) -> list[dict[str, Any]]:
        """The sums a row of blocked signals (or of their closed trades) adds into."""
        found = [
            total,
            strategies.setdefault(row["strategy_id"], _empty()),
            symbols.setdefault(row["symbol"], _empty()),
            several if row["guard"] == rollups.SEVERAL else single,
        ]
        return [*found, sole[row["guard"]]] if row["guard"] in sole else found

    for row in blocked:
        for part in parts(row):
            _count(part, row["n"])
    for row in statuses:
        if row["status"] in STILL_OPEN:
            still_open += row["n"]
        elif row["status"] == ShadowTrade.Status.EXPIRED:
            never_entered += row["n"]
    days: dict[date, dict[str, Any]] = {}
    for row in closed:
        for part in parts(row):
            _close(part, row)
    for row in daily:
        _close(days.setdefault(row["day"], _empty()), row)

    guards = []
    for name in names:
        part = _empty()
        _count(part, any_blocked.get(name, 0))
        if name in any_closed:
            _close(part, any_closed[name])
        guards.append({"guard": name, "any": _cost_row(part), "sole": _cost_row(sole[name])})

    versions = {s.pk: s for s in BookStrategy.objects.filter(pk__in=[k for k in strategies if k])}

    def strategy_row(key: int | None, sums: dict[str, Any]) -> dict[str, Any]:
        version = versions.get(key) if key is not None else None
        return {
            "id": key,
            "name": version.name if version else "(no configuration)",
            "kind": version.kind if version else "",
            "version": version.config_version if version else None,
            "market": f"{version.symbol} {version.timeframe}" if version else "",
            **_cost_row(sums),
        }

    by_strategy = sorted(
        (strategy_row(key, sums) for key, sums in strategies.items()),
        key=lambda row: (row["id"] is None, row["name"], row["version"] or 0, row["id"] or 0),
    )
    return {
        "totals": {
            **_cost_row(total),
            "still_open": still_open,
            "never_entered": never_entered,
            "single_guard": _cost_row(single),
            "several_guards": _cost_row(several),
        },
        "guards": guards,
        "strategies": by_strategy,
        "symbols": [
            {"symbol": symbol, **_cost_row(symbols[symbol])} for symbol in collated(list(symbols))
        ],
        "days": [
            {
                "day": day,
                "closed": sums["closed"],
                "made_money": sums["wins"],
                "opportunity_cost": sums["pnl"] if sums["pnl"] is not None else ZERO,
                "net_impact": -(sums["pnl"] if sums["pnl"] is not None else ZERO),
            }
            for day, sums in sorted(days.items())
        ],
    }


def collated(texts: list[str]) -> list[str]:
    """``texts`` in the database's order (its collation), as an ``ORDER BY`` gives them."""
    if len(texts) < 2:
        return texts
    values = ", ".join(["(%s)"] * len(texts))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT v FROM (VALUES {values}) AS t(v) ORDER BY v", texts)
        return [row[0] for row in cursor.fetchall()]


# --- Leaderboard ------------------------------------------------------------------------


def leaderboard_strategies(filters: Filters) -> list[dict[str, Any]]:
    """The book's strategy configurations (dicts), each with its signal counts and the
    exact (decimal) P&L sums of its closed paper trades and of the closed shadow trades
    of its blocked signals: three rollup reads in one statement whatever the number of
    signals."""
    assert filters.book is not None
    rollups.ensure_built(filters.book.pk)
    strategies = BookStrategy.objects.filter(book=filters.book)
    if filters.symbol:
        strategies = strategies.filter(symbol=filters.symbol)
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in strategies.order_by("name", "config_version", "id").values(
            "id", "name", "kind", "config_version", "exchange", "symbol", "timeframe"
        )
    ]
    # The three reads in one statement (``rollups.reads``).
    narrowed = scope(filters)

    def read(fact: str, by: tuple[str, ...]) -> rollups.Read:
        return rollups.Read(fact, by, filters.since, filters.until, **narrowed)

    signal_rows, paper_rows, shadow_rows = rollups.reads(
        filters.book.pk,
        [
            read(Fact.SIGNALS, ("strategy_id", "state")),
            read(Fact.PAPER, ("strategy_id",)),
            read(Fact.SHADOW, ("strategy_id",)),
        ],
        check=False,
        clock=filters.clock,
    )
    counts: dict[Any, dict[str, int]] = {}
    for row in signal_rows:
        counts.setdefault(row["strategy_id"], {})[row["state"]] = row["n"]
    paper = {row["strategy_id"]: row for row in paper_rows}
    shadow = {row["strategy_id"]: row for row in shadow_rows}
    for row in rows:
        states = counts.get(row["id"], {})
        traded, blocked = paper.get(row["id"]), shadow.get(row["id"])
        row |= {
            "signal_count": sum(states.values()),
            "passed": sum(states.get(state, 0) for state in PASSED_GUARD_STATES),
            "blocked": states.get(SignalState.BLOCKED, 0),
            "rejected": states.get(SignalState.REJECTED, 0),
            "paper_closed": traded["n"] if traded else 0,
            "paper_pnl": traded["pnl"] if traded else None,
            "shadow_closed": blocked["n"] if blocked else 0,
            "shadow_pnl": blocked["pnl"] if blocked else None,
        }
    return rows
