"""Strategy leaderboard: per strategy configuration (version) of the book, its signals,
approval rate and the statistics of its closed paper trades ("guarded": what was
traded), beside the same statistics "unguarded": those paper trades plus the closed
shadow trades of its blocked signals (what it would have done with no guards).

Approval rate = signals that passed every guard (approved, executed, failed, expired or
closed) / signals the guards decided (those plus the blocked ones); rejected signals
(bad prices, stale candle) never reached the guards and count in neither.

A fixed number of queries whatever the number of signals: the strategies with their
counts and exact P&L sums from the rollups (``leaderboard_strategies``), and the
statistics that need every trade in exit order (win rate, profit factor, maximum
drawdown, Sharpe) folded from the day segments of the book's equity path
(``analytics.segments``: one row per day and strategy version, a window's partial first
and last day from the rows), the same figures as ``analytics.metrics.trade_stats``
over the trades in exit order (exit time, paper before shadow, id).
"""

from decimal import Decimal
from typing import Any

from analytics import segments
from analytics.breakdowns import leaderboard_strategies
from analytics.filters import Filters
from analytics.numbers import cents, rate, ratio
from analytics.pages import Page, register
from analytics.segments import GUARDED, UNGUARDED, Fold

CONVENTION = (
    "Guarded: the closed paper trades, what the strategy really traded. Unguarded: those "
    "plus the shadow trades of its blocked signals, what it would have done with no "
    "guards. Guards' effect = guarded P&L minus unguarded P&L: positive = the guards "
    "saved this strategy money."
)

EMPTY = segments.EMPTY


def _figures(stats: Fold, total: Decimal) -> dict[str, Any]:
    """A strategy's trade statistics as the page shows them; ``total`` is the exact
    decimal sum from the rollups (the same as the segments' on PostgreSQL)."""
    trades = stats.trades
    return {
        "trades": trades,
        "wins": stats.wins,
        "win_rate": rate(stats.win_rate),
        "total_pnl": cents(total),
        "average_pnl": cents(total / trades) if trades else None,
        # The same figure as the average, from the exact sum: one rounding on every page.
        "expectancy": cents(total / trades) if trades else None,
        "profit_factor": ratio(stats.profit_factor),
        "max_drawdown": cents(stats.max_drawdown),
        "sharpe": ratio(stats.sharpe),
    }


def build(filters: Filters) -> dict[str, Any]:
    assert filters.book is not None
    strategies = list(leaderboard_strategies(filters))  # builds the rollups if needed
    folded = segments.figures(
        filters.book.pk,
        since=filters.since,
        until=filters.until,
        strategies=[strategy["id"] for strategy in strategies],
        symbol=filters.symbol,
        clock=filters.clock,
    )
    rows = []
    for strategy in strategies:
        paper_pnl = strategy["paper_pnl"] if strategy["paper_pnl"] is not None else Decimal(0)
        shadow_pnl = strategy["shadow_pnl"] if strategy["shadow_pnl"] is not None else Decimal(0)
        decided = strategy["passed"] + strategy["blocked"]
        rows.append(
            {
                "id": strategy["id"],
                "name": strategy["name"],
                "kind": strategy["kind"],
                "version": strategy["config_version"],
                "market": " ".join(
                    (strategy["exchange"], strategy["symbol"], strategy["timeframe"])
                ),
                "signals": strategy["signal_count"],
                "approved": strategy["passed"],
                "blocked": strategy["blocked"],
                "rejected": strategy["rejected"],
                "decided": decided,
                "approval_rate": rate(strategy["passed"] / decided if decided else None),
                "guarded": _figures(folded.get((GUARDED, strategy["id"]), EMPTY), paper_pnl),
                "unguarded": _figures(
                    folded.get((UNGUARDED, strategy["id"]), EMPTY), paper_pnl + shadow_pnl
                ),
                "guards_effect": cents(-shadow_pnl),
                "blocked_closed": strategy["shadow_closed"],
            }
        )
    rows.sort(key=lambda row: (-(row["guarded"]["total_pnl"] or 0), row["name"], row["version"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    paper_total = sum((s["paper_pnl"] or Decimal(0) for s in strategies), Decimal(0))
    shadow_total = sum((s["shadow_pnl"] or Decimal(0) for s in strategies), Decimal(0))
    passed = sum(s["passed"] for s in strategies)
    decided = passed + sum(s["blocked"] for s in strategies)
    book_row = {
        "signals": sum(s["signal_count"] for s in strategies),
        "approved": passed,
        "decided": decided,
        "approval_rate": rate(passed / decided if decided else None),
        # Every strategy version of the book (of the symbol when filtered) together.
        "guarded": _figures(folded.get((GUARDED, None), EMPTY), paper_total),
        "unguarded": _figures(folded.get((UNGUARDED, None), EMPTY), paper_total + shadow_total),
        "guards_effect": cents(-shadow_total),
    }
    return {"convention": CONVENTION, "strategies": rows, "book": book_row}


PAGE = register(
    Page(
        name="leaderboard",
        title="Leaderboard",
        template="analytics/pages/leaderboard.html",
        build=build,
        path="leaderboard/",
        order=40,
        default_period="all",
        filters=("period", "symbol"),
    )
)
