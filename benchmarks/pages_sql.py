"""Hand-written PostgreSQL for the figures the pages show: the floor a page's own queries
are timed against, and the reference its JSON is checked against.

Each function takes a DB-API cursor, the book id and the book's clock (the open time of
its last signal candle) and returns plain figures: money as ``Decimal`` rounded to the
cent, counts as ``int``. The conventions are the product's: signals are counted by their
candle time, money by the trade's exit time; a guard's shadow P&L is the P&L of the
closed shadow trades of the signals it blocked (its net impact is minus that); the
blocked opportunity cost is the P&L of the closed shadow trades of the blocked group.

Pages whose figures are not pinned down here are listed in ``NOT_WRITTEN`` with why.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
PERIODS = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
TRADES_PAGE = 50

NOT_WRITTEN = {
    "health": "state counts are one GROUP BY, but stuck signals and latencies depend on "
    "the wall clock and the page's own deadlines",
    "performance": "equity marked to market at every candle, drawdown and Sharpe come "
    "from numpy over the candles, not from one SQL result",
    "fidelity": "paper-vs-shadow pairing rules are the page's own",
    "learning": "threshold sweeps are computed in numpy from observed values",
}


def cents(value: Decimal | None) -> Decimal:
    return (value if value is not None else Decimal(0)).quantize(CENT, ROUND_HALF_UP)


def _rows(cursor: Any, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    cursor.execute(query, params)
    return list(cursor.fetchall())


GUARDS_SQL = """
WITH blocks AS (
    SELECT d.signal_id, d.guard
    FROM signals_guarddecision d
    JOIN signals_signal s ON s.id = d.signal_id
    WHERE s.book_id = %(book)s AND d.verdict = 'block'
), per_signal AS (
    SELECT signal_id, count(*) AS blockers FROM blocks GROUP BY signal_id
)
SELECT b.guard,
       count(*) AS blocked,
       count(*) FILTER (WHERE p.blockers = 1) AS sole,
       count(t.id) FILTER (WHERE t.status = 'closed' AND t.pnl IS NOT NULL) AS evaluated,
       sum(t.pnl) FILTER (WHERE t.status = 'closed') AS shadow_pnl,
       sum(t.pnl) FILTER (WHERE t.status = 'closed' AND p.blockers = 1) AS sole_pnl
FROM blocks b
JOIN per_signal p ON p.signal_id = b.signal_id
LEFT JOIN shadow_shadowtrade t ON t.signal_id = b.signal_id
GROUP BY b.guard
ORDER BY b.guard
"""


def guards(cursor: Any, book: int, clock: datetime) -> dict[str, Any]:
    """Per guard: signals blocked, blocked alone, closed shadow trades and their P&L."""
    return {
        "guards": {
            guard: {
                "blocked": blocked,
                "sole_blocked": sole,
                "evaluated": evaluated,
                "shadow_pnl": cents(pnl),
                "net_impact": -cents(pnl),
                "sole_shadow_pnl": cents(sole_pnl),
            }
            for guard, blocked, sole, evaluated, pnl, sole_pnl in _rows(
                cursor, GUARDS_SQL, {"book": book}
            )
        }
    }


OPPORTUNITY_TOTAL_SQL = """
SELECT sum(pnl) FILTER (WHERE status = 'closed' AND pnl IS NOT NULL),
       count(*) FILTER (WHERE status = 'closed' AND pnl IS NOT NULL),
       count(*) FILTER (WHERE status <> 'closed')
FROM shadow_shadowtrade
WHERE book_id = %(book)s AND "group" = 'blocked'
"""
OPPORTUNITY_BY_STRATEGY_SQL = """
SELECT bs.name, sum(t.pnl)
FROM shadow_shadowtrade t
JOIN signals_signal s ON s.id = t.signal_id
JOIN signals_bookstrategy bs ON bs.id = s.book_strategy_id
WHERE t.book_id = %(book)s AND t."group" = 'blocked' AND t.status = 'closed'
  AND t.pnl IS NOT NULL
GROUP BY bs.name
ORDER BY bs.name
"""
OPPORTUNITY_BY_DAY_SQL = """
SELECT (t.exit_time AT TIME ZONE 'UTC')::date AS day, sum(t.pnl)
FROM shadow_shadowtrade t
WHERE t.book_id = %(book)s AND t."group" = 'blocked' AND t.status = 'closed'
  AND t.pnl IS NOT NULL
GROUP BY day
ORDER BY day
"""


def opportunity(cursor: Any, book: int, clock: datetime) -> dict[str, Any]:
    """Blocked opportunity cost: in total, by guard, by strategy and by exit day (UTC)."""
    [(total, closed, still_open)] = _rows(cursor, OPPORTUNITY_TOTAL_SQL, {"book": book})
    by_guard = {
        name: row["shadow_pnl"] for name, row in guards(cursor, book, clock)["guards"].items()
    }
    return {
        "total": cents(total),
        "closed": closed,
        "open": still_open,
        "by_guard": by_guard,
        "by_strategy": {
            name: cents(pnl)
            for name, pnl in _rows(cursor, OPPORTUNITY_BY_STRATEGY_SQL, {"book": book})
        },
        "by_day": {
            day.isoformat(): cents(pnl)
            for day, pnl in _rows(cursor, OPPORTUNITY_BY_DAY_SQL, {"book": book})
        },
    }


LEADERBOARD_SQL = """
SELECT bs.name,
       count(s.id) AS signals,
       count(p.id) FILTER (WHERE p.status = 'closed') AS trades,
       count(p.id) FILTER (WHERE p.status = 'closed' AND p.pnl > 0) AS wins,
       sum(p.pnl) FILTER (WHERE p.status = 'closed') AS pnl
FROM signals_signal s
JOIN signals_bookstrategy bs ON bs.id = s.book_strategy_id
LEFT JOIN signals_papertrade p ON p.signal_id = s.id
WHERE s.book_id = %(book)s
GROUP BY bs.name
ORDER BY bs.name
"""


# What the leaderboard shows beyond counts and sums, for every strategy and for the whole
# book, guarded (closed paper trades) and unguarded (plus the closed shadow trades of the
# blocked signals), with analytics.metrics' definitions: max drawdown of the running sum
# in exit order (ties: paper first, then id) below its running peak (which starts at 0);
# Sharpe of daily P&L over every UTC day from the first exit to the last (days without a
# close count as 0): mean / sample standard deviation * sqrt(365).
LEADERBOARD_STATS_SQL = """
WITH trades AS (
    SELECT s.book_strategy_id AS strategy, p.exit_time, 0 AS kind, p.id, p.pnl, true AS paper
    FROM signals_papertrade p JOIN signals_signal s ON s.id = p.signal_id
    WHERE p.book_id = %(book)s AND p.status = 'closed' AND p.pnl IS NOT NULL
    UNION ALL
    SELECT s.book_strategy_id, t.exit_time, 1, t.id, t.pnl, false
    FROM shadow_shadowtrade t JOIN signals_signal s ON s.id = t.signal_id
    WHERE t.book_id = %(book)s AND t."group" = 'blocked' AND t.status = 'closed'
      AND t.pnl IS NOT NULL
),
scoped AS (
    SELECT strategy AS scope, paper, exit_time, kind, id, pnl FROM trades
    UNION ALL
    SELECT 0, paper, exit_time, kind, id, pnl FROM trades
),
sets AS (
    SELECT scope, 'guarded' AS set_, exit_time, kind, id, pnl FROM scoped WHERE paper
    UNION ALL
    SELECT scope, 'unguarded', exit_time, kind, id, pnl FROM scoped
),
running AS (
    SELECT scope, set_, pnl, exit_time,
           sum(pnl) OVER (PARTITION BY scope, set_ ORDER BY exit_time, kind, id
                          ROWS UNBOUNDED PRECEDING) AS equity
    FROM sets
),
falls AS (
    SELECT scope, set_,
           greatest(0, max(equity) OVER (PARTITION BY scope, set_ ORDER BY exit_time
                                         ROWS UNBOUNDED PRECEDING)) - equity AS fall
    FROM running
),
drawdowns AS (
    SELECT scope, set_, greatest(0, max(fall)) AS max_drawdown FROM falls GROUP BY 1, 2
),
days AS (
    SELECT scope, set_,
           floor(extract(epoch FROM exit_time) * 1000 / 86400000)::bigint AS day,
           sum(pnl) AS day_pnl
    FROM sets GROUP BY 1, 2, 3
),
sharpe AS (
    SELECT scope, set_, max(day) - min(day) + 1 AS n,
           sum(day_pnl)::float8 AS s, sum(day_pnl * day_pnl)::float8 AS q
    FROM days GROUP BY 1, 2
)
SELECT coalesce(bs.name, '') AS name, d.set_, d.max_drawdown,
       CASE WHEN h.n >= 2 AND (h.q - h.s * h.s / h.n) > 0
            THEN (h.s / h.n) / sqrt((h.q - h.s * h.s / h.n) / (h.n - 1)) * sqrt(365.0)
       END AS sharpe
FROM drawdowns d
JOIN sharpe h USING (scope, set_)
LEFT JOIN signals_bookstrategy bs ON bs.id = d.scope
"""


def leaderboard(cursor: Any, book: int, clock: datetime) -> dict[str, Any]:
    """Per strategy configuration: signals, closed paper trades, wins and their P&L; and
    per strategy and for the whole book, guarded and unguarded, max drawdown and Sharpe."""
    strategies: dict[str, dict[str, Any]] = {
        name: {"signals": signals, "trades": trades, "wins": wins, "pnl": cents(pnl)}
        for name, signals, trades, wins, pnl in _rows(cursor, LEADERBOARD_SQL, {"book": book})
    }
    empty = {
        f"{set_}_{figure}": value
        for set_ in ("guarded", "unguarded")
        for figure, value in (("max_drawdown", cents(None)), ("sharpe", None))
    }
    for row in strategies.values():
        row.update(empty)
    book_row: dict[str, Any] = dict(empty)
    for name, set_, drawdown, sharpe in _rows(cursor, LEADERBOARD_STATS_SQL, {"book": book}):
        target = strategies.setdefault(name, {}) if name else book_row
        target[f"{set_}_max_drawdown"] = cents(drawdown)
        target[f"{set_}_sharpe"] = round(sharpe, 2) if sharpe is not None else None
    return {"strategies": strategies, "book": book_row}


SUMMARY_SQL = """
WITH window_ AS (
    SELECT %(until)s::timestamptz - %(span)s::interval AS since, %(until)s::timestamptz AS until
)
SELECT
    (SELECT count(*) FROM signals_signal s, window_ w
      WHERE s.book_id = %(book)s AND s.candle_time >= w.since AND s.candle_time < w.until),
    (SELECT count(*) FROM signals_signal s, window_ w
      WHERE s.book_id = %(book)s AND s.state = 'blocked'
        AND s.candle_time >= w.since AND s.candle_time < w.until),
    (SELECT count(*) FROM signals_papertrade p, window_ w
      WHERE p.book_id = %(book)s AND p.status = 'closed'
        AND p.exit_time >= w.since AND p.exit_time < w.until),
    (SELECT sum(p.pnl) FROM signals_papertrade p, window_ w
      WHERE p.book_id = %(book)s AND p.status = 'closed'
        AND p.exit_time >= w.since AND p.exit_time < w.until),
    (SELECT sum(t.pnl) FROM shadow_shadowtrade t, window_ w
      WHERE t.book_id = %(book)s AND t."group" = 'blocked' AND t.status = 'closed'
        AND t.exit_time >= w.since AND t.exit_time < w.until)
"""


def summary(cursor: Any, book: int, clock: datetime) -> dict[str, Any]:
    """Over the last day, 7 and 30 days to the clock: signals, blocked signals, closed
    paper trades, paper P&L and blocked opportunity cost."""
    until = clock + timedelta(microseconds=1)
    periods = {}
    for name, span in PERIODS.items():
        [(signals, blocked, trades, pnl, opportunity)] = _rows(
            cursor, SUMMARY_SQL, {"book": book, "until": until, "span": span}
        )
        periods[name] = {
            "signals": signals,
            "blocked": blocked,
            "trades": trades,
            "pnl": cents(pnl),
            "opportunity_cost": cents(opportunity),
        }
    return {"periods": periods}


TRADING_TOTALS_SQL = """
SELECT count(*) FILTER (WHERE status = 'closed'),
       count(*) FILTER (WHERE status = 'open'),
       count(*) FILTER (WHERE status = 'closed' AND pnl > 0),
       sum(pnl) FILTER (WHERE status = 'closed')
FROM signals_papertrade
WHERE book_id = %(book)s
"""
TRADING_PAGE_SQL = """
SELECT p.id, s.symbol, p.side, p.status, p.entry_time, p.exit_time, p.exit_reason, p.pnl
FROM signals_papertrade p
JOIN signals_signal s ON s.id = p.signal_id
WHERE p.book_id = %(book)s AND p.status IN ('open', 'closed')
ORDER BY coalesce(p.exit_time, p.entry_time) DESC, p.id DESC
LIMIT %(limit)s
"""


def trading(cursor: Any, book: int, clock: datetime) -> dict[str, Any]:
    """Paper trading totals and the first page of trades, the latest first."""
    [(closed, still_open, wins, pnl)] = _rows(cursor, TRADING_TOTALS_SQL, {"book": book})
    rows = _rows(cursor, TRADING_PAGE_SQL, {"book": book, "limit": TRADES_PAGE})
    return {
        "closed": closed,
        "open": still_open,
        "wins": wins,
        "pnl": cents(pnl),
        "first_page": [
            {
                "id": trade_id,
                "symbol": symbol,
                "side": side,
                "status": status,
                "pnl": cents(trade_pnl) if trade_pnl is not None else None,
            }
            for trade_id, symbol, side, status, _entry, _exit, _reason, trade_pnl in rows
        ],
    }


FIGURES: dict[str, Callable[[Any, int, datetime], dict[str, Any]]] = {
    "summary": summary,
    "opportunity": opportunity,
    "guards": guards,
    "leaderboard": leaderboard,
    "trading": trading,
}
