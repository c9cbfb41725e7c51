"""Executive summary, the home page: for the last day, the last 7 days and the last 30
days of the book (ending at its clock, ``analytics.filters``): the P&L and win rate of the
closed paper trades (by exit time), the signals (by candle time), the blocked opportunity
cost and the guards' net impact, the best and worst guard and strategy configuration,
the pipeline's health and an equity sparkline.

The page ignores the period filter: it always shows the three windows side by side.
Sign convention: the **blocked opportunity cost** is the shadow P&L of the closed shadow
trades of blocked signals (negative = the blocks avoided a loss); the guards' **net
impact** is minus that (positive = the guards saved money).

A fixed number of queries whatever the number of signals: four reads of the book's
rollups per window (signals, paper trades, blocked shadow trades, per guard), each the
rollup rows of the window's whole days plus the rows of its partial first and last day,
all twelve in one statement (``shadow.rollups.reads``), the equity marks (one row per
day, ``shadow.equity_marks``) and the health checks.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from analytics.charts import chart_spec
from analytics.filters import PERIOD_LABELS, PERIODS, Filters
from analytics.guard_skill import book_expectancy
from analytics.numbers import cents, json_clean, rate
from analytics.page_cache import Policy
from analytics.pages import Page, register
from analytics.pages.guards import expectancy_data
from analytics.paper_balance import balance_failures
from markets.timestamps import utc_from_ms
from shadow import equity_marks, rollups
from shadow.models import BookRollup
from signals.models import BookStrategy, StrategyConfig

WINDOWS = ("1d", "7d", "30d")
SPARKLINE_POINTS = 120
ZERO = Decimal(0)
Fact = BookRollup.Fact

CONVENTION = (
    "P&L is that of the closed paper trades, after fees, counted on the day a trade "
    "closed. Blocked opportunity cost is what the blocked signals' shadow trades made "
    "(positive: blocking gave up a profit, bad; negative: it avoided a loss, good); the "
    "guards' net impact is its opposite, positive = the guards saved money. Green is "
    "good for you, red is bad."
)


@dataclass(frozen=True, slots=True)
class Window:
    key: str
    label: str
    since: datetime | None
    until: datetime | None  # exclusive


def windows(clock: datetime | None) -> list[Window]:
    """The three windows, each ending just after the clock's candle (as ``parse_filters``
    computes a period), or unbounded when the book has no clock yet."""
    found = []
    for key in WINDOWS:
        span = PERIODS[key]
        assert span is not None
        until = clock + timedelta(microseconds=1) if clock is not None else None
        found.append(Window(key, PERIOD_LABELS[key], until - span if until else None, until))
    return found


def _money(value: Decimal | float | None) -> Decimal:
    return Decimal(str(value)) if value is not None else ZERO


def period_figures(filters: Filters, spans: list[Window]) -> list[dict[str, Any]]:
    """Per window: paper P&L, trades, wins and win rate; signals; blocked opportunity cost
    and net impact; the best and worst guard and strategy configuration. Read from the
    book's rollups (``shadow.rollups``): four sums per window, every window's in one
    statement, whatever the number of signals."""
    book = filters.book
    assert book is not None
    rollups.ensure_built(book.pk)
    names = dict(BookStrategy.objects.filter(book=book).values_list("pk", "name"))
    configs = dict(
        StrategyConfig.objects.filter(signals__book=book, signals__book_strategy__isnull=True)
        .distinct()
        .values_list("pk", "name")
    )

    # Every window's four reads in one statement (``rollups.reads``): whole days from the
    # rollups, the partial first day of each window from the rows.
    facts = (
        (Fact.SIGNALS, ()),
        (Fact.PAPER, ("strategy_id", "config_id")),
        (Fact.SHADOW, ()),
        (Fact.GUARD_SHADOW, ("guard",)),
    )
    found = rollups.reads(
        book.pk,
        [rollups.Read(fact, by, w.since, w.until) for w in spans for fact, by in facts],
        check=False,
        clock=filters.clock,
    )
    figures = []
    for index, w in enumerate(spans):
        signal_rows, paper, shadow, guard_rows = found[
            index * len(facts) : (index + 1) * len(facts)
        ]
        signals = sum(row["n"] for row in signal_rows)
        by_strategy: dict[str, list[Any]] = {}
        for row in paper:
            # Versions of one configuration count together, under its name; a signal from
            # before books froze versions goes by its configuration's.
            name = names.get(row["strategy_id"]) or configs.get(row["config_id"], "unnamed")
            into = by_strategy.setdefault(name, [ZERO, 0, 0])
            into[0] += _money(row["pnl"])
            into[1] += row["n"]
            into[2] += row["wins"]
        pnl = sum((v[0] for v in by_strategy.values()), ZERO)
        trades = sum(v[1] for v in by_strategy.values())
        wins = sum(v[2] for v in by_strategy.values())
        opportunity = sum((_money(row["pnl"]) for row in shadow), ZERO)
        # Per guard: the shadow P&L of every signal it blocked (a signal two guards blocked
        # counts for both, as the guard page's "any" attribution).
        impacts = [(row["guard"], -_money(row["pnl"]), row["n"]) for row in guard_rows if row["n"]]
        results = [(name, v[0], v[1]) for name, v in by_strategy.items() if v[1]]
        figures.append(
            {
                "period": w.key,
                "label": w.label,
                "since": w.since,
                "until": w.until,
                "pnl": cents(pnl),
                "trades": trades,
                "wins": wins,
                "win_rate": rate(wins / trades if trades else None),
                "signals": signals,
                "shadow_closed": sum(row["n"] for row in shadow),
                "opportunity_cost": cents(opportunity),
                "net_impact": cents(-opportunity),
                **_best_and_worst("guard", impacts, "net_impact"),
                **_best_and_worst("strategy", results, "pnl"),
            }
        )
    return figures


def _best_and_worst(
    kind: str, rows: list[tuple[str, Decimal, int]], money: str
) -> dict[str, dict[str, Any] | None]:
    """The highest and the lowest row by money (ties: by name); no "worst" when there is
    only one candidate (it would be the best too)."""
    if not rows:
        return {f"best_{kind}": None, f"worst_{kind}": None}
    ordered = sorted(rows, key=lambda row: (-row[1], row[0]))

    def item(row: tuple[str, Decimal, int]) -> dict[str, Any]:
        return {"name": row[0], money: cents(row[1]), "trades": row[2]}

    return {
        f"best_{kind}": item(ordered[0]),
        f"worst_{kind}": item(ordered[-1]) if len(ordered) > 1 else None,
    }


def health() -> dict[str, Any]:
    """The pipeline's status by the ``/healthz`` rule, each check in words
    (``analytics.pages.health.system_status``, which the health page shows too)."""
    from analytics.pages.health import system_status

    return system_status(now=timezone.now())


def sparkline(filters: Filters) -> dict[str, Any] | None:
    """The book's paper equity, marked to market at the last candle close of each UTC
    day (``shadow.equity_marks``: the marks kept with the rollups, the days since the
    book's last write computed from the last one), at most ``SPARKLINE_POINTS`` points
    (the last of each bucket of days, so the newest equity always shows). The rollups
    must be built (``build`` reads ``period_figures`` first, which builds them)."""
    assert filters.book is not None
    marks = equity_marks.sampled(equity_marks.book_marks(filters.book.pk), SPARKLINE_POINTS)
    if len(marks) < 2:
        return None
    values = [cents(equity) for _, equity in marks]
    last = values[-1] or ZERO
    return {
        "first": utc_from_ms(marks[0][0]),
        "last": utc_from_ms(marks[-1][0]),
        "equity": last,
        "low": min(v for v in values if v is not None),
        "high": max(v for v in values if v is not None),
        "chart": chart_spec(
            "line",
            [f"{utc_from_ms(t):%Y-%m-%d %H:%M}" for t, _ in marks],
            [
                {
                    "name": "Equity",
                    "values": values,
                    "tone": "good" if last >= 0 else "bad",
                    "fill": True,
                }
            ],
        ),
    }


def paper_balance(filters: Filters, spans: list[Window]) -> dict[str, Any] | None:
    """Signals that failed for lack of paper balance: all history and per window."""
    if filters.book is None:
        return None
    total, by_window = balance_failures(
        book=filters.book, windows={w.key: (w.since, w.until) for w in spans}
    )
    return {"failed": total.count, "first": total.first, "last": total.last, **by_window}


def build(filters: Filters) -> dict[str, Any]:
    spans = windows(filters.clock)
    balance = paper_balance(filters, spans)
    periods = period_figures(filters, spans)
    for period in periods:
        period["balance_failed"] = balance[period["period"]] if balance else 0
    return {
        "convention": CONVENTION,
        "clock": filters.clock,
        "periods": periods,
        "paper_balance": balance,
        "health": health(),
        "equity": sparkline(filters),
        # All history: on a losing strategy any guard that blocks looks good.
        "expectancy": expectancy_data(book_expectancy(book=filters.book))
        if filters.book is not None
        else None,
    }


def _live_health_line(payload: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's health line is live; the rest of a cached payload comes as cached."""
    data = payload.get("data")
    if isinstance(data, dict) and "health" in data:
        payload = {**payload, "data": {**data, "health": json_clean(health())}}
    return payload


PAGE = register(
    Page(
        name="summary",
        title="Summary",
        template="analytics/pages/summary.html",
        build=build,
        path="",
        order=0,
        default_period="7d",
        cache=Policy(live=_live_health_line),
    )
)
