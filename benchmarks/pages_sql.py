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

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from statistics import NormalDist
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


# One pass over the blocked group's shadow trades (joined to their signal for the
# strategy): the total, the closed count and what is still open (grouping set ()), per
# strategy and per exit day. Faster than a query per breakdown (each scanned the trades).
OPPORTUNITY_SQL = """
SELECT GROUPING(s.book_strategy_id) AS no_strategy,
       GROUPING((t.exit_time AT TIME ZONE 'UTC')::date) AS no_day,
       s.book_strategy_id,
       (t.exit_time AT TIME ZONE 'UTC')::date AS day,
       sum(t.pnl) FILTER (WHERE t.status = 'closed' AND t.pnl IS NOT NULL),
       count(*) FILTER (WHERE t.status = 'closed' AND t.pnl IS NOT NULL),
       count(*) FILTER (WHERE t.status <> 'closed')
FROM shadow_shadowtrade t
JOIN signals_signal s ON s.id = t.signal_id
WHERE t.book_id = %(book)s AND t."group" = 'blocked'
GROUP BY GROUPING SETS ((s.book_strategy_id), ((t.exit_time AT TIME ZONE 'UTC')::date), ())
"""
# Per guard, the closed shadow P&L of the signals it blocked (every guard that blocked
# one, with 0 when none of its trades closed): the blocking decisions through the partial
# index decision_blocks_by_signal, the book's through their signal.
OPPORTUNITY_BY_GUARD_SQL = """
SELECT d.guard, sum(t.pnl) FILTER (WHERE t.status = 'closed')
FROM signals_guarddecision d
JOIN signals_signal s ON s.id = d.signal_id
LEFT JOIN shadow_shadowtrade t ON t.signal_id = d.signal_id
WHERE s.book_id = %(book)s AND d.verdict = 'block'
GROUP BY d.guard
"""


def _names(cursor: Any, book: int) -> dict[int, str]:
    return dict(
        _rows(cursor, "SELECT id, name FROM signals_bookstrategy WHERE book_id = %(book)s",
              {"book": book})
    )  # fmt: skip


def _opportunity_figures(
    rows: list[tuple[Any, ...]], still_open: int, by_guard: dict[str, Any], names: dict[int, str]
) -> dict[str, Any]:
    """The opportunity figures from grouped rows (no strategy, no day, strategy id, day,
    P&L, closed): the raw SQL's and the rollups' alike."""
    figures: dict[str, Any] = {
        "total": cents(None),
        "closed": 0,
        "open": still_open,
        "by_guard": {name: cents(pnl) for name, pnl in sorted(by_guard.items())},
        "by_strategy": {},
        "by_day": {},
    }
    by_strategy: dict[str, Decimal] = {}
    by_day: dict[str, Decimal] = {}
    for no_strategy, no_day, strategy, day, pnl, closed in rows:
        if no_strategy and no_day:
            figures["total"], figures["closed"] = cents(pnl), int(closed or 0)
        elif not no_strategy and closed:
            name = names[strategy]
            by_strategy[name] = by_strategy.get(name, Decimal(0)) + (pnl or Decimal(0))
        elif not no_day and closed:
            by_day[day.isoformat()] = by_day.get(day.isoformat(), Decimal(0)) + pnl
    figures["by_strategy"] = {name: cents(by_strategy[name]) for name in sorted(by_strategy)}
    figures["by_day"] = {day: cents(by_day[day]) for day in sorted(by_day)}
    return figures


def opportunity(cursor: Any, book: int, clock: datetime) -> dict[str, Any]:
    """Blocked opportunity cost: in total, by guard, by strategy and by exit day (UTC)."""
    rows = _rows(cursor, OPPORTUNITY_SQL, {"book": book})
    still_open = next((row[6] for row in rows if row[0] and row[1]), 0)
    by_guard = dict(_rows(cursor, OPPORTUNITY_BY_GUARD_SQL, {"book": book}))
    return _opportunity_figures(
        [row[:6] for row in rows], int(still_open or 0), by_guard, _names(cursor, book)
    )


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
#
# In one pass over the trades: each trade once (a query copying every trade per
# strategy, book and set took 57 s at 1,000,000 signals against this one's 34-39 s, same
# figures), P&L as float8 (the running sums are rounded to the cent at the end), the
# guarded running sum a FILTER of the unguarded one's window (at a shadow trade it
# repeats the last paper trade's, so its running peak and fall do too), per strategy and
# for the book two window orders; the days per strategy and for the book one GROUPING
# SETS.
LEADERBOARD_STATS_SQL = """
WITH trades AS (
    SELECT s.book_strategy_id AS strategy, p.exit_time, 0 AS kind, p.id, p.pnl::float8 AS pnl
    FROM signals_papertrade p JOIN signals_signal s ON s.id = p.signal_id
    WHERE p.book_id = %(book)s AND p.status = 'closed' AND p.pnl IS NOT NULL
    UNION ALL
    SELECT s.book_strategy_id, t.exit_time, 1, t.id, t.pnl::float8
    FROM shadow_shadowtrade t JOIN signals_signal s ON s.id = t.signal_id
    WHERE t.book_id = %(book)s AND t."group" = 'blocked' AND t.status = 'closed'
      AND t.pnl IS NOT NULL
),
running AS (
    SELECT strategy, exit_time, kind, id,
           coalesce(sum(pnl) FILTER (WHERE kind = 0) OVER s, 0) AS g_s,
           sum(pnl) OVER s AS u_s,
           coalesce(sum(pnl) FILTER (WHERE kind = 0) OVER b, 0) AS g_b,
           sum(pnl) OVER b AS u_b
    FROM trades
    WINDOW s AS (PARTITION BY strategy ORDER BY exit_time, kind, id ROWS UNBOUNDED PRECEDING),
           b AS (ORDER BY exit_time, kind, id ROWS UNBOUNDED PRECEDING)
),
falls AS (
    SELECT strategy,
           greatest(0, max(g_s) OVER s) - g_s AS g_s,
           greatest(0, max(u_s) OVER s) - u_s AS u_s,
           greatest(0, max(g_b) OVER b) - g_b AS g_b,
           greatest(0, max(u_b) OVER b) - u_b AS u_b
    FROM running
    WINDOW s AS (PARTITION BY strategy ORDER BY exit_time, kind, id ROWS UNBOUNDED PRECEDING),
           b AS (ORDER BY exit_time, kind, id ROWS UNBOUNDED PRECEDING)
),
drawdowns AS (
    SELECT GROUPING(strategy) AS whole, strategy,
           CASE WHEN GROUPING(strategy) = 1 THEN max(g_b) ELSE max(g_s) END AS guarded,
           CASE WHEN GROUPING(strategy) = 1 THEN max(u_b) ELSE max(u_s) END AS unguarded
    FROM falls GROUP BY GROUPING SETS ((strategy), ())
),
days AS (
    SELECT GROUPING(strategy) AS whole, strategy, day,
           sum(pnl) FILTER (WHERE kind = 0) AS guarded, sum(pnl) AS unguarded
    FROM (
        SELECT strategy, kind, pnl,
               floor(extract(epoch FROM exit_time) * 1000 / 86400000)::bigint AS day
        FROM trades
    ) dated
    GROUP BY GROUPING SETS ((strategy, day), (day))
),
spread AS (
    SELECT whole, strategy,
           max(day) FILTER (WHERE guarded IS NOT NULL)
             - min(day) FILTER (WHERE guarded IS NOT NULL) + 1 AS g_n,
           sum(guarded)::float8 AS g_s, sum(guarded * guarded)::float8 AS g_q,
           max(day) - min(day) + 1 AS u_n,
           sum(unguarded)::float8 AS u_s, sum(unguarded * unguarded)::float8 AS u_q
    FROM days GROUP BY whole, strategy
),
totals AS (
    SELECT GROUPING(strategy) AS whole, strategy,
           count(*) FILTER (WHERE kind = 0) AS g_n,
           count(*) FILTER (WHERE kind = 0 AND pnl > 0) AS g_w,
           coalesce(sum(pnl) FILTER (WHERE kind = 0 AND pnl > 0), 0) AS g_gp,
           -sum(pnl) FILTER (WHERE kind = 0 AND pnl < 0) AS g_gl,
           count(*) AS u_n, count(*) FILTER (WHERE pnl > 0) AS u_w,
           coalesce(sum(pnl) FILTER (WHERE pnl > 0), 0) AS u_gp,
           -sum(pnl) FILTER (WHERE pnl < 0) AS u_gl
    FROM trades GROUP BY GROUPING SETS ((strategy), ())
)
SELECT coalesce(bs.name, '') AS name, d.guarded, d.unguarded,
       CASE WHEN h.g_n >= 2 AND (h.g_q - h.g_s * h.g_s / h.g_n) > 0
            THEN (h.g_s / h.g_n) / sqrt((h.g_q - h.g_s * h.g_s / h.g_n) / (h.g_n - 1))
                 * sqrt(365.0)
       END,
       CASE WHEN h.u_n >= 2 AND (h.u_q - h.u_s * h.u_s / h.u_n) > 0
            THEN (h.u_s / h.u_n) / sqrt((h.u_q - h.u_s * h.u_s / h.u_n) / (h.u_n - 1))
                 * sqrt(365.0)
       END,
       t.g_gp / nullif(t.g_gl, 0), t.u_gp / nullif(t.u_gl, 0),
       t.g_w::float8 / nullif(t.g_n, 0), t.u_w::float8 / nullif(t.u_n, 0)
FROM drawdowns d
JOIN spread h ON h.whole = d.whole AND h.strategy IS NOT DISTINCT FROM d.strategy
JOIN totals t ON t.whole = d.whole AND t.strategy IS NOT DISTINCT FROM d.strategy
LEFT JOIN signals_bookstrategy bs ON bs.id = d.strategy AND d.whole = 0
"""


def leaderboard(cursor: Any, book: int, clock: datetime) -> dict[str, Any]:
    """Per strategy configuration: signals, closed paper trades, wins and their P&L; and
    per strategy and for the whole book, guarded and unguarded, max drawdown, Sharpe,
    profit factor and win rate."""
    rows = [
        row
        for name, g_dd, u_dd, g_sharpe, u_sharpe, g_pf, u_pf, g_wr, u_wr in _rows(
            cursor, LEADERBOARD_STATS_SQL, {"book": book}
        )
        for row in (
            (name, "guarded", g_dd, g_sharpe, g_pf, g_wr),
            (name, "unguarded", u_dd, u_sharpe, u_pf, u_wr),
        )
    ]
    return _leaderboard_figures(cursor, book, rows)


def _leaderboard_figures(cursor: Any, book: int, stats: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The counts (``LEADERBOARD_SQL``) with ``stats`` (``_with_stats``)."""
    strategies: dict[str, dict[str, Any]] = {
        name: {"signals": signals, "trades": trades, "wins": wins, "pnl": cents(pnl)}
        for name, signals, trades, wins, pnl in _rows(cursor, LEADERBOARD_SQL, {"book": book})
    }
    return _with_stats(strategies, stats)


def _with_stats(
    strategies: dict[str, dict[str, Any]], stats: list[tuple[Any, ...]]
) -> dict[str, Any]:
    """The leaderboard's figures: ``strategies``' counts by name with ``stats``, (name,
    set, drawdown, Sharpe, profit factor, win rate) rows, the book's named ''. Ratios
    rounded half up as the page rounds them (Sharpe and profit factor to 2 places, the
    win rate to 3)."""
    empty = {
        f"{set_}_{figure}": value
        for set_ in ("guarded", "unguarded")
        for figure, value in (
            ("max_drawdown", cents(None)),
            ("sharpe", None),
            ("profit_factor", None),
            ("win_rate", None),
        )
    }
    for row in strategies.values():
        row.update(empty)
    book_row: dict[str, Any] = dict(empty)
    for name, set_, drawdown, sharpe, profit_factor, win_rate in stats:
        target = strategies.setdefault(name, {}) if name else book_row
        if isinstance(drawdown, float):
            drawdown = Decimal(repr(drawdown))
        target[f"{set_}_max_drawdown"] = cents(drawdown)
        target[f"{set_}_sharpe"] = _half_up(sharpe, 2)
        target[f"{set_}_profit_factor"] = _half_up(profit_factor, 2)
        target[f"{set_}_win_rate"] = _half_up(win_rate, 3)
    return {"strategies": strategies, "book": book_row}


def _half_up(value: float | Decimal | None, places: int) -> Decimal | None:
    if value is None:
        return None
    exact = value if isinstance(value, Decimal) else Decimal(repr(value))
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _per_window(template: str) -> str:
    return ",\n       ".join(template.format(k=key) for key in PERIODS)


# One statement, each table read once over the widest window (through the indexes on
# (book, candle time) and (book, exit time)), each window a FILTER: three times fewer
# reads than a query per window and figure.
SUMMARY_SQL = f"""
SELECT * FROM (
    SELECT {_per_window("count(*) FILTER (WHERE candle_time >= %(since_{k})s)")},
           {
    _per_window("count(*) FILTER (WHERE candle_time >= %(since_{k})s AND state = 'blocked')")
}
    FROM signals_signal
    WHERE book_id = %(book)s AND candle_time >= %(widest)s AND candle_time < %(until)s
) signals, (
    SELECT {_per_window("count(*) FILTER (WHERE exit_time >= %(since_{k})s)")},
           {_per_window("sum(pnl) FILTER (WHERE exit_time >= %(since_{k})s)")}
    FROM signals_papertrade
    WHERE book_id = %(book)s AND status = 'closed'
      AND exit_time >= %(widest)s AND exit_time < %(until)s
) paper, (
    SELECT {_per_window("sum(pnl) FILTER (WHERE exit_time >= %(since_{k})s)")}
    FROM shadow_shadowtrade
    WHERE book_id = %(book)s AND "group" = 'blocked' AND status = 'closed'
      AND exit_time >= %(widest)s AND exit_time < %(until)s
) shadow
"""


def _windows(clock: datetime) -> tuple[datetime, dict[str, datetime]]:
    """The summary's windows: each ends just after the clock's candle (as the page's)."""
    until = clock + timedelta(microseconds=1)
    return until, {name: until - span for name, span in PERIODS.items()}


def _summary_figures(values: list[Any]) -> dict[str, Any]:
    """Five figures per window from ``values`` (signals, blocked, trades, P&L,
    opportunity cost, each a list in ``PERIODS`` order)."""
    signals, blocked, trades, pnl, opportunity = (
        values[i * len(PERIODS) : (i + 1) * len(PERIODS)] for i in range(5)
    )
    return {
        "periods": {
            name: {
                "signals": int(signals[i] or 0),
                "blocked": int(blocked[i] or 0),
                "trades": int(trades[i] or 0),
                "pnl": cents(pnl[i]),
                "opportunity_cost": cents(opportunity[i]),
            }
            for i, name in enumerate(PERIODS)
        }
    }


# Per window, what picks the best and worst strategy and guard: the closed paper trades'
# P&L per strategy (configuration name) and the blocked signals' closed shadow P&L per
# guard that blocked them (a signal two guards blocked counts for both).
SUMMARY_GROUPS_SQL = f"""
SELECT 'strategy', bs.name,
       {_per_window("count(*) FILTER (WHERE p.exit_time >= %(since_{k})s)")},
       {_per_window("sum(p.pnl) FILTER (WHERE p.exit_time >= %(since_{k})s)")}
FROM signals_papertrade p
JOIN signals_signal s ON s.id = p.signal_id
JOIN signals_bookstrategy bs ON bs.id = s.book_strategy_id
WHERE p.book_id = %(book)s AND p.status = 'closed' AND p.pnl IS NOT NULL
  AND p.exit_time >= %(widest)s AND p.exit_time < %(until)s
GROUP BY bs.name
UNION ALL
SELECT 'guard', d.guard,
       {_per_window("count(*) FILTER (WHERE t.exit_time >= %(since_{k})s)")},
       {_per_window("sum(t.pnl) FILTER (WHERE t.exit_time >= %(since_{k})s)")}
FROM shadow_shadowtrade t
JOIN signals_signal s ON s.id = t.signal_id AND s.state = 'blocked'
JOIN signals_guarddecision d ON d.signal_id = t.signal_id AND d.verdict = 'block'
WHERE t.book_id = %(book)s AND t."group" = 'blocked' AND t.status = 'closed'
  AND t.pnl IS NOT NULL AND t.exit_time >= %(widest)s AND t.exit_time < %(until)s
GROUP BY d.guard
"""
# The all-history expectancy card: every closed shadow trade (blocked signals' and the
# control group's), per UTC exit day (the clusters of its interval).
EXPECTANCY_SQL = """
SELECT count(*), sum(pnl)
FROM shadow_shadowtrade
WHERE book_id = %(book)s AND status = 'closed' AND pnl IS NOT NULL AND exit_time IS NOT NULL
GROUP BY (exit_time AT TIME ZONE 'UTC')::date
"""


# Signals that failed for lack of paper balance, in all history and per window (by candle
# time): the page reads them from the transition log, not from the rollups, so both
# floors read them the same way.
BALANCE_FAILURES_SQL = f"""
SELECT count(*),
       {_per_window("count(*) FILTER (WHERE s.candle_time >= %(since_{k})s AND s.candle_time < %(until)s)")}
FROM signals_signaltransition t
JOIN signals_signal s ON s.id = t.signal_id
WHERE s.book_id = %(book)s AND s.state = 'failed' AND t.name = 'fail'
  AND t.payload ->> 'reason' LIKE %(balance)s
"""
BALANCE = "insufficient paper balance%"  # signals.domain.engine.INSUFFICIENT_BALANCE


def _balance_figures(cursor: Any, params: dict[str, Any], figures: dict[str, Any]) -> None:
    [(total, *per_window)] = _rows(cursor, BALANCE_FAILURES_SQL, params | {"balance": BALANCE})
    figures["balance_failed"] = int(total)
    for window, failed in zip(PERIODS, per_window, strict=True):
        figures["periods"][window]["balance_failed"] = int(failed)


def _best_and_worst(
    rows: dict[str, list[Any]], money: str, sign: int
) -> dict[str, dict[str, Any] | None]:
    """The summary's pick (``analytics.pages.summary._best_and_worst``) from (trades,
    P&L) per name: the highest money first (ties by name), no worst with one name."""
    found = [(name, sign * (pnl or Decimal(0)), n) for name, (n, pnl) in rows.items() if n]
    ordered = sorted(found, key=lambda row: (-row[1], row[0]))

    def item(row: tuple[str, Decimal, int]) -> dict[str, Any]:
        return {"name": row[0], money: cents(row[1]), "trades": row[2]}

    return {
        "best": item(ordered[0]) if ordered else None,
        "worst": item(ordered[-1]) if len(ordered) > 1 else None,
    }


def _groups_figures(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, Any]]:
    """Per window the best and worst strategy and guard, from rows (kind, name, trades
    per window..., P&L per window...) that may repeat a (kind, name): added."""
    width = len(PERIODS)
    added: dict[tuple[str, str], list[Any]] = {}
    for kind, name, *values in rows:
        into = added.setdefault((kind, name), [0] * width + [None] * width)
        for i, value in enumerate(values):
            if value is not None:
                into[i] = value if into[i] is None else into[i] + value
    found: dict[str, dict[str, Any]] = {}
    for i, window in enumerate(PERIODS):
        for kind, money, sign in (("strategy", "pnl", 1), ("guard", "net_impact", -1)):
            sums = {
                name: [int(v[i] or 0), v[width + i]] for (k, name), v in added.items() if k == kind
            }
            picked = _best_and_worst(sums, money, sign)
            found.setdefault(window, {}).update(
                {f"best_{kind}": picked["best"], f"worst_{kind}": picked["worst"]}
            )
    return found


def _expectancy_figures(days: list[tuple[Any, Any]]) -> dict[str, Any]:
    """The expectancy card's trades, mean P&L and its interval (cluster-robust over UTC
    days, normal quantile: ``analytics.skill.clustered_mean_interval``) from (trades,
    P&L) per day."""
    counts = [float(n) for n, _ in days if n]
    sums = [float(pnl or 0) for n, pnl in days if n]
    trades = int(sum(counts))
    total = sum((Decimal(pnl or 0) for _, pnl in days), Decimal(0))
    found: dict[str, Any] = {
        "trades": trades,
        "mean_pnl": cents(total / trades) if trades else None,
        "low": None,
        "high": None,
    }
    if trades >= 2 and len(counts) >= 2:
        mean = sum(sums) / trades
        residual = sum((s - n * mean) ** 2 for n, s in zip(counts, sums, strict=True))
        variance = len(counts) / (len(counts) - 1) * residual / (trades * trades)
        half = NormalDist().inv_cdf(0.975) * math.sqrt(variance)
        found |= {"low": cents(Decimal(mean - half)), "high": cents(Decimal(mean + half))}
    return found


def summary(cursor: Any, book: int, clock: datetime) -> dict[str, Any]:
    """Over the last day, 7 and 30 days to the clock: signals, blocked signals, closed
    paper trades, paper P&L, blocked opportunity cost, the best and worst strategy and
    guard, signals failed for lack of paper balance; and the book's all-history
    expectancy and balance failures."""
    until, since = _windows(clock)
    params = {"book": book, "until": until, "widest": min(since.values())}
    params |= {f"since_{name}": start for name, start in since.items()}
    [values] = _rows(cursor, SUMMARY_SQL, params)
    figures = _summary_figures(list(values))
    for window, picked in _groups_figures(_rows(cursor, SUMMARY_GROUPS_SQL, params)).items():
        figures["periods"][window] |= picked
    figures["expectancy"] = _expectancy_figures(_rows(cursor, EXPECTANCY_SQL, {"book": book}))
    _balance_figures(cursor, params, figures)
    return figures


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


# --- bare reads of the rollups the pages read (shadow.rollups, table shadow_bookrollup) --
#
# For a page that reads the book's rollups, its other floor: the same rollup rows read by
# hand (all history from the month rows, a window's whole UTC days from the day rows, its
# partial first day from the raw rows, as the page reads them), giving the figures the
# raw SQL above gives. A summary window ends just after the clock's candle and nothing of
# the book lies after the clock, so its last day, the clock's, is whole in the day rows
# (as the page reads it).

ROLLUP_SUMMARY_SQL = f"""
SELECT {_per_window("sum(n) FILTER (WHERE fact = 'signals' AND day >= %(first_{k})s)")},
       {
    _per_window(
        "sum(n) FILTER (WHERE fact = 'signals' AND state = 'blocked' AND day >= %(first_{k})s)"
    )
},
       {_per_window("sum(n) FILTER (WHERE fact = 'paper' AND day >= %(first_{k})s)")},
       {_per_window("sum(pnl) FILTER (WHERE fact = 'paper' AND day >= %(first_{k})s)")},
       {_per_window("sum(pnl) FILTER (WHERE fact = 'shadow' AND day >= %(first_{k})s)")}
FROM shadow_bookrollup
WHERE book_id = %(book)s AND grain = 'day' AND fact IN ('signals', 'paper', 'shadow')
  AND day >= %(widest)s AND day < %(stop)s
"""


def _edge(column: str) -> str:
    return "({c} >= %(since_{k})s AND {c} < %(head_{k})s)".replace("{c}", column)


def _edges(column: str) -> str:
    return f"({' OR '.join(_edge(column).format(k=k) for k in PERIODS)})"


ROLLUP_SUMMARY_EDGES_SQL = f"""
SELECT * FROM (
    SELECT {_per_window(f"count(*) FILTER (WHERE {_edge('candle_time')})")},
           {_per_window(f"count(*) FILTER (WHERE state = 'blocked' AND {_edge('candle_time')})")}
    FROM signals_signal
    WHERE book_id = %(book)s AND {_edges("candle_time")}
) signals, (
    SELECT {_per_window(f"count(*) FILTER (WHERE {_edge('exit_time')})")},
           {_per_window(f"sum(pnl) FILTER (WHERE {_edge('exit_time')})")}
    FROM signals_papertrade
    WHERE book_id = %(book)s AND status = 'closed' AND pnl IS NOT NULL AND {_edges("exit_time")}
) paper, (
    SELECT {_per_window(f"sum(pnl) FILTER (WHERE {_edge('exit_time')})")}
    FROM shadow_shadowtrade
    WHERE book_id = %(book)s AND "group" = 'blocked' AND status = 'closed'
      AND pnl IS NOT NULL AND {_edges("exit_time")}
) shadow
"""


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


ROLLUP_SUMMARY_GROUPS_SQL = f"""
SELECT 'strategy', bs.name,
       {_per_window("sum(r.n) FILTER (WHERE r.day >= %(first_{k})s)")},
       {_per_window("sum(r.pnl) FILTER (WHERE r.day >= %(first_{k})s)")}
FROM shadow_bookrollup r
JOIN signals_bookstrategy bs ON bs.id = r.strategy_id
WHERE r.book_id = %(book)s AND r.grain = 'day' AND r.fact = 'paper'
  AND r.day >= %(widest)s AND r.day < %(stop)s
GROUP BY bs.name
UNION ALL
SELECT 'guard', r.guard,
       {_per_window("sum(r.n) FILTER (WHERE r.day >= %(first_{k})s)")},
       {_per_window("sum(r.pnl) FILTER (WHERE r.day >= %(first_{k})s)")}
FROM shadow_bookrollup r
WHERE r.book_id = %(book)s AND r.grain = 'day' AND r.fact = 'guard_shadow'
  AND r.day >= %(widest)s AND r.day < %(stop)s
GROUP BY r.guard
UNION ALL
SELECT 'strategy', bs.name,
       {_per_window(f"count(*) FILTER (WHERE {_edge('p.exit_time')})")},
       {_per_window(f"sum(p.pnl) FILTER (WHERE {_edge('p.exit_time')})")}
FROM signals_papertrade p
JOIN signals_signal s ON s.id = p.signal_id
JOIN signals_bookstrategy bs ON bs.id = s.book_strategy_id
WHERE p.book_id = %(book)s AND p.status = 'closed' AND p.pnl IS NOT NULL
  AND {_edges("p.exit_time")}
GROUP BY bs.name
UNION ALL
SELECT 'guard', d.guard,
       {_per_window(f"count(*) FILTER (WHERE {_edge('t.exit_time')})")},
       {_per_window(f"sum(t.pnl) FILTER (WHERE {_edge('t.exit_time')})")}
FROM shadow_shadowtrade t
JOIN signals_signal s ON s.id = t.signal_id AND s.state = 'blocked'
JOIN signals_guarddecision d ON d.signal_id = t.signal_id AND d.verdict = 'block'
WHERE t.book_id = %(book)s AND t."group" = 'blocked' AND t.status = 'closed'
  AND t.pnl IS NOT NULL AND {_edges("t.exit_time")}
GROUP BY d.guard
"""
# The expectancy's days: the pool fact's day rows (every closed shadow trade), summed per
# day, all history.
ROLLUP_EXPECTANCY_SQL = """
SELECT sum(n), sum(pnl) FROM shadow_bookrollup
WHERE book_id = %(book)s AND grain = 'day' AND fact = 'pool'
GROUP BY day
"""


def rollup_summary(cursor: Any, book: int, clock: datetime) -> dict[str, Any]:
    """``summary``'s figures from what the page reads: each window's whole UTC days from
    ``shadow_bookrollup`` and its partial first day from the rows, added (the figures in
    two statements, the best and worst strategy and guard in one), the expectancy's days
    from the pool fact's day rows, and the balance failures as the raw floor reads
    them."""
    until, since = _windows(clock)
    stop = clock.astimezone(UTC).date() + timedelta(1)  # the day after the clock's
    params: dict[str, Any] = {"book": book, "stop": stop, "until": until}
    for name, start in since.items():
        first = start.date() if start == _midnight(start.date()) else start.date() + timedelta(1)
        params |= {f"since_{name}": start, f"first_{name}": first, f"head_{name}": _midnight(first)}
    params["widest"] = min(params[f"first_{name}"] for name in PERIODS)
    [whole] = _rows(cursor, ROLLUP_SUMMARY_SQL, params)
    [edges] = _rows(cursor, ROLLUP_SUMMARY_EDGES_SQL, params)
    added = [
        None if a is None and b is None else (a or 0) + (b or 0)
        for a, b in zip(whole, edges, strict=True)
    ]
    figures = _summary_figures(added)
    for window, picked in _groups_figures(_rows(cursor, ROLLUP_SUMMARY_GROUPS_SQL, params)).items():
        figures["periods"][window] |= picked
    days = _rows(cursor, ROLLUP_EXPECTANCY_SQL, {"book": book})
    figures["expectancy"] = _expectancy_figures(days)
    _balance_figures(cursor, params, figures)
    return figures


ROLLUP_OPPORTUNITY_SQL = """
SELECT GROUPING(strategy_id), GROUPING(day), strategy_id, day, sum(pnl), sum(n)
FROM shadow_bookrollup
WHERE book_id = %(book)s AND grain = 'day' AND fact = 'shadow'
GROUP BY GROUPING SETS ((strategy_id), (day), ())
"""
# The month rows sum the day rows before the book's months_until; the day rows from it on
# are added (shadow.rollups: a live write leaves its last day out of the month rows).
_MONTHS = (
    "({r}grain = 'month' OR {r}grain = 'day' AND {r}day >= "
    "(SELECT months_until FROM shadow_rollupstate WHERE book_id = %(book)s))"
)
ROLLUP_OPPORTUNITY_OPEN_SQL = """
SELECT sum(n) FROM shadow_bookrollup
WHERE book_id = %(book)s AND {months} AND fact = 'signals' AND state = 'blocked'
  AND status NOT IN ('', 'closed')
""".format(months=_MONTHS.format(r=""))
ROLLUP_OPPORTUNITY_BY_GUARD_SQL = """
SELECT guard, sum(pnl) FILTER (WHERE fact = 'guard_shadow')
FROM shadow_bookrollup
WHERE book_id = %(book)s AND {months} AND fact IN ('guard_blocked', 'guard_shadow')
GROUP BY guard
""".format(months=_MONTHS.format(r=""))


def rollup_opportunity(cursor: Any, book: int, clock: datetime) -> dict[str, Any]:
    """``opportunity``'s figures from the rollups (all history: no partial day)."""
    rows = _rows(cursor, ROLLUP_OPPORTUNITY_SQL, {"book": book})
    [(still_open,)] = _rows(cursor, ROLLUP_OPPORTUNITY_OPEN_SQL, {"book": book})
    by_guard = dict(_rows(cursor, ROLLUP_OPPORTUNITY_BY_GUARD_SQL, {"book": book}))
    return _opportunity_figures(rows, int(still_open or 0), by_guard, _names(cursor, book))


# The leaderboard's counts and sums from the rollups, and its drawdown and Sharpe from
# the equity segments kept with them (analytics.segments, table analytics_equitysegment):
# what the page reads, all history. The month rows and the day rows after them as two
# index ranges (UNION ALL): one OR of both (a BitmapOr, 13-20 ms at 1,000,000 signals,
# the planner expecting 4 times the rows and starting two workers) took 4-8 times
# longer, same figures.
ROLLUP_LEADERBOARD_SQL = """
WITH r AS (
    SELECT strategy_id, fact, n, wins, pnl FROM shadow_bookrollup
    WHERE book_id = %(book)s AND fact IN ('signals', 'paper', 'shadow') AND grain = 'month'
    UNION ALL
    SELECT strategy_id, fact, n, wins, pnl FROM shadow_bookrollup
    WHERE book_id = %(book)s AND fact IN ('signals', 'paper', 'shadow') AND grain = 'day'
      AND day >= (SELECT months_until FROM shadow_rollupstate WHERE book_id = %(book)s)
), s AS (
    SELECT strategy_id,
           sum(n) FILTER (WHERE fact = 'signals') AS signals,
           sum(n) FILTER (WHERE fact = 'paper') AS trades,
           sum(wins) FILTER (WHERE fact = 'paper') AS wins,
           sum(pnl) FILTER (WHERE fact = 'paper') AS pnl,
           sum(n) FILTER (WHERE fact = 'shadow') AS shadow,
           sum(pnl) FILTER (WHERE fact = 'shadow') AS shadow_pnl
    FROM r
    GROUP BY strategy_id
)
SELECT bs.name, s.signals, s.trades, s.wins, s.pnl, s.shadow, s.shadow_pnl
FROM s JOIN signals_bookstrategy bs ON bs.id = s.strategy_id
"""
# The segments of every strategy version (symbol '') and of the book (no strategy, every
# symbol: symbol ''), guarded and unguarded: the month rows (closed months) and the day
# rows after the last of them, folded in day order as analytics.segments.fold does: with
# e the equity before a segment and peak the running peak before it (0 at the start), the
# segment's worst fall is max(fall, peak - (e + low)); the drawdown the largest of those.
# Sharpe of daily P&L from the sums of the days' totals and of their squares over every
# day from the first to the last with a trade (days without one count 0).
ROLLUP_LEADERBOARD_STATS_SQL = """
WITH seg AS (
    SELECT series, strategy_id, day, n, wins, total, high, low, fall, gross_profit,
           gross_loss, squares, first, last
    FROM analytics_equitysegment
    WHERE book_id = %(book)s AND symbol = ''
      AND (grain = 'month' OR grain = 'day' AND day >= coalesce(
          (SELECT max(day) FROM analytics_equitysegment
           WHERE book_id = %(book)s AND grain = 'month') + interval '1 month',
          '-infinity'))
),
-- e: the equity before each segment; then peak: the running peak before it.
equity AS (
    SELECT seg.*, coalesce(sum(total) OVER before, 0) AS e
    FROM seg
    WINDOW before AS (PARTITION BY series, strategy_id ORDER BY day
                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
peaks AS (
    SELECT equity.*, greatest(coalesce(max(e + high) OVER before, 0), 0) AS peak
    FROM equity
    WINDOW before AS (PARTITION BY series, strategy_id ORDER BY day
                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
folded AS (
    SELECT series, strategy_id, greatest(max(fall), max(peak - (e + low))) AS drawdown,
           sum(total) AS total, sum(squares) AS squares, max(last) - min(first) + 1 AS days,
           sum(n) AS n, sum(wins) AS wins, sum(gross_profit) AS gross_profit,
           sum(gross_loss) AS gross_loss
    FROM peaks
    GROUP BY series, strategy_id
)
SELECT coalesce(bs.name, '') AS name, f.series, f.drawdown,
       CASE WHEN f.days >= 2 AND f.squares - f.total * f.total / f.days > 0
            THEN (f.total / f.days / sqrt((f.squares - f.total * f.total / f.days) / (f.days - 1))
                  * sqrt(365.0))::float8
       END,
       f.gross_profit / nullif(f.gross_loss, 0), f.wins::float8 / nullif(f.n, 0)
FROM folded f
LEFT JOIN signals_bookstrategy bs ON bs.id = f.strategy_id
"""


def rollup_leaderboard(cursor: Any, book: int, clock: datetime) -> dict[str, Any]:
    """``leaderboard``'s figures from what the page reads: per strategy configuration its
    signals, closed paper trades, wins and their P&L from the rollups (and the blocked
    signals' closed shadow trades, which the page reads too and the raw SQL does not
    return), and per strategy and for the book, guarded and unguarded, max drawdown and
    Sharpe folded from the equity segments."""
    strategies: dict[str, dict[str, Any]] = {
        name: {
            "signals": int(signals or 0),
            "trades": int(trades or 0),
            "wins": int(wins or 0),
            "pnl": cents(pnl),
        }
        for name, signals, trades, wins, pnl, _shadow, _shadow_pnl in _rows(
            cursor, ROLLUP_LEADERBOARD_SQL, {"book": book}
        )
    }
    return _with_stats(strategies, _rows(cursor, ROLLUP_LEADERBOARD_STATS_SQL, {"book": book}))


ROLLUP_FIGURES: dict[str, Callable[[Any, int, datetime], dict[str, Any]]] = {
    "summary": rollup_summary,
    "opportunity": rollup_opportunity,
    "leaderboard": rollup_leaderboard,
}
"""The pages that read the book's rollups, and a bare read of what they read (each
gives every figure of the page's raw SQL)."""


FIGURES: dict[str, Callable[[Any, int, datetime], dict[str, Any]]] = {
    "summary": summary,
    "opportunity": opportunity,
    "guards": guards,
    "leaderboard": leaderboard,
    "trading": trading,
}
