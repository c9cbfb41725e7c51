"""Performance / P&L of a book's closed paper trades: total P&L, trades, win rate, profit
factor, expectancy, max drawdown and Sharpe (``analytics.metrics`` definitions), the
equity curve (paper, marked to market), daily realised P&L and the drawdown of realised
equity below its running peak.

``?compare=<book id>`` adds a second book ("B") with the same filters: both books'
figures side by side with the difference (A minus B) and their realised equity by day
overlaid, e.g. a replay beside its ablation leg without one guard.

Money is the paper trades' net P&L (after fees) in the book's quote currency, counted
when the trade closed (its exit time). A fixed number of queries per book whatever the
number of trades: one for the trades' columns, the equity curve's reads.
"""

from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

import numpy as np
from django.db.models import Q

from analytics.charts import chart_spec
from analytics.filters import Filters
from analytics.metrics import DAY_MS, daily_pnl, trade_stats
from analytics.numbers import cents, fine, rate
from analytics.pages import Page, register
from analytics.selectors import book_equity_curve, book_quote_currency
from markets.timestamps import ms_from_utc, utc_from_ms
from signals.models import Book, PaperTrade

EQUITY_POINTS = 400
DRAWDOWN_POINTS = 400
ZERO = Decimal(0)

CONVENTION = (
    "P&L is that of the closed paper trades after fees, counted when a trade closed; "
    "positive = money made (green), negative = money lost (red). Max drawdown is the "
    "largest fall of realised equity below its running peak, shown as a positive amount."
)


def trades(book: Book, filters: Filters) -> tuple[list[Decimal], np.ndarray]:
    """(P&L, exit time in ms) of ``book``'s closed paper trades inside the filters, in exit
    order: one query."""
    where = Q(book=book, status=PaperTrade.Status.CLOSED, pnl__isnull=False)
    where &= Q(exit_time__isnull=False)
    if filters.since is not None:
        where &= Q(exit_time__gte=filters.since)
    if filters.until is not None:
        where &= Q(exit_time__lt=filters.until)
    if filters.strategy:
        where &= Q(signal__book_strategy__name=filters.strategy)
    if filters.symbol:
        where &= Q(signal__symbol=filters.symbol)
    rows = [
        (value, moment)
        for value, moment in PaperTrade.objects.filter(where)
        .order_by("exit_time", "id")
        .values_list("pnl", "exit_time")
        if moment is not None  # excluded above; the column is nullable
    ]
    pnl = [Decimal(str(value)) for value, _ in rows]
    exits = np.array([ms_from_utc(moment) for _, moment in rows], dtype=np.int64)
    return pnl, exits


def figures(pnl: list[Decimal], exits: np.ndarray) -> dict[str, Any]:
    """The headline figures (``analytics.metrics``); totals summed exactly in decimals."""
    stats = trade_stats(np.array([float(value) for value in pnl], dtype=float), exits)
    total = sum(pnl, ZERO)
    gross_profit = sum((value for value in pnl if value > 0), ZERO)
    gross_loss = -sum((value for value in pnl if value < 0), ZERO)
    return {
        "total_pnl": cents(total),
        "trades": stats.trades,
        "wins": stats.wins,
        "losses": stats.losses,
        "win_rate": rate(stats.win_rate),
        "gross_profit": cents(gross_profit),
        "gross_loss": cents(gross_loss),
        "profit_factor": rate(gross_profit / gross_loss if gross_loss > 0 else None),
        "expectancy": fine(total / len(pnl)) if pnl else None,
        "max_drawdown": cents(stats.max_drawdown),
        "sharpe": rate(stats.sharpe),
    }


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date().isoformat()


def daily(pnl: list[Decimal], exits: np.ndarray) -> tuple[list[str], list[Decimal]]:
    """Every UTC day from the first exit to the last with the P&L closed that day."""
    days, _ = daily_pnl([float(value) for value in pnl], exits)
    totals = dict.fromkeys((int(day) for day in days), ZERO)
    for value, moment in zip(pnl, exits, strict=True):
        totals[int(moment) // DAY_MS * DAY_MS] += value
    return [_day(day) for day in totals], [cents(value) or ZERO for value in totals.values()]


def drawdown(pnl: list[Decimal], exits: np.ndarray) -> dict[str, Any] | None:
    """Realised equity minus its running peak after each close (0 or below), at most
    ``DRAWDOWN_POINTS`` points, each the deepest of its bucket so the worst one shows."""
    if not pnl:
        return None
    equity = np.cumsum([float(value) for value in pnl])
    under = equity - np.maximum.accumulate(np.maximum(equity, 0.0))
    times = exits
    if under.size > DRAWDOWN_POINTS:
        edges = np.linspace(0, under.size, DRAWDOWN_POINTS + 1).astype(np.int64)
        picks = [int(a + np.argmin(under[a:b])) for a, b in pairwise(edges)]
        under, times = under[picks], times[picks]
    return chart_spec(
        "line",
        [f"{utc_from_ms(int(t)):%Y-%m-%d %H:%M}" for t in times],
        [
            {
                "name": "Below the peak",
                "values": [cents(v) for v in under],
                "tone": "bad",
                "fill": True,
            }
        ],
        y_label="Drawdown",
    )


def equity(book: Book, filters: Filters) -> dict[str, Any] | None:
    """The book's paper equity marked to market (``book_equity_curve``) inside the period."""
    curve = book_equity_curve(book=book)
    if len(curve):
        keep = np.ones(len(curve), dtype=bool)
        if filters.since is not None:
            keep &= curve.time >= ms_from_utc(filters.since)
        if filters.until is not None:
            keep &= curve.time < ms_from_utc(filters.until)
        curve = type(curve)(curve.time[keep], curve.equity[keep])
    curve = curve.sampled(EQUITY_POINTS)
    if len(curve) < 2:
        return None
    values = [cents(float(v)) for v in curve.equity]
    last = values[-1] or ZERO
    return {
        "last": last,
        "chart": chart_spec(
            "line",
            [f"{utc_from_ms(int(t)):%Y-%m-%d %H:%M}" for t in curve.time],
            [{"name": "Equity", "values": values, "tone": "neutral", "fill": True}],
            y_label="Equity",
        ),
    }


def realised_by_day(days: list[str], totals: list[Decimal]) -> dict[str, Decimal]:
    """Realised equity at the end of each day (running sum of daily P&L)."""
    running = ZERO
    out = {}
    for day, value in zip(days, totals, strict=True):
        running += value
        out[day] = running
    return out


def book_part(book: Book, filters: Filters) -> tuple[dict[str, Any], list[Decimal], np.ndarray]:
    """One book's figures and daily P&L, with its trades' columns."""
    pnl, exits = trades(book, filters)
    days, totals = daily(pnl, exits)
    part = {
        "book": {"id": book.pk, "name": book.name, "kind": book.kind},
        "figures": figures(pnl, exits),
        "days": days,
        "daily_pnl": totals,
    }
    return part, pnl, exits


FIGURES = (
    ("total_pnl", "Total P&L", "money"),
    ("trades", "Closed trades", "count"),
    ("win_rate", "Win rate", "rate"),
    ("profit_factor", "Profit factor", "ratio"),
    ("expectancy", "Expectancy (mean P&L per trade)", "money"),
    ("max_drawdown", "Max drawdown", "money"),
    ("sharpe", "Sharpe (daily, annualised)", "ratio"),
)
# Lower is better for these: the difference is coloured the other way round.
LOWER_IS_BETTER = {"max_drawdown"}


def comparison(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Each figure of book A beside book B's, with A minus B (``None`` if either lacks it)."""
    rows = []
    for key, label, unit in FIGURES:
        left, right = a["figures"][key], b["figures"][key]
        difference: Any = None
        if left is not None and right is not None:
            if unit == "money":
                difference = (cents if key != "expectancy" else fine)(
                    Decimal(str(left)) - Decimal(str(right))
                )
            elif unit == "count":
                difference = left - right
            else:
                difference = rate(left - right)
        better = None
        if difference:
            better = "a" if (difference > 0) != (key in LOWER_IS_BETTER) else "b"
        rows.append(
            {
                "key": key,
                "label": label,
                "unit": unit,
                "a": left,
                "b": right,
                "difference": difference,
                "better": better,
            }
        )
    return rows


def overlay(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Both books' realised equity at the end of every day of either, carried forward."""
    first, second = (
        realised_by_day(a["days"], a["daily_pnl"]),
        realised_by_day(b["days"], b["daily_pnl"]),
    )
    labels = sorted(set(first) | set(second))

    def line(by_day: dict[str, Decimal]) -> list[Decimal | None]:
        values: list[Decimal | None] = []
        current: Decimal | None = None
        for day in labels:
            if day in by_day:
                current = by_day[day]
            values.append(cents(current) if current is not None else ZERO)
        return values

    return chart_spec(
        "line",
        labels,
        [
            {"name": f"A: {a['book']['name']}", "values": line(first), "tone": "neutral"},
            {"name": f"B: {b['book']['name']}", "values": line(second), "tone": "neutral"},
        ],
        y_label="Realised equity",
    )


def ablation_links(book: Book) -> list[dict[str, Any]]:
    """Books worth comparing with: ``book``'s ablation legs (the same history without one
    guard) and, for a leg, the book it ablates. One query."""
    rows = Book.objects.filter(Q(ablation_of=book) | Q(pk=book.ablation_of_id or 0)).order_by(
        "without_guard", "id"
    )
    return [
        {
            "id": other.pk,
            "name": other.name,
            "why": (
                f"the same history without the guard {other.without_guard}"
                if other.ablation_of_id == book.pk
                else f"the full book this one replays without {book.without_guard}"
            ),
        }
        for other in rows
    ]


def build(filters: Filters) -> dict[str, Any]:
    book = filters.book
    assert book is not None
    main, pnl, exits = book_part(book, filters)
    data: dict[str, Any] = {
        "convention": CONVENTION,
        **main,
        "equity": equity(book, filters),
        "daily_chart": (
            chart_spec(
                "bar",
                main["days"],
                [{"name": "Realised P&L that day", "values": main["daily_pnl"], "tone": "signed"}],
                y_label="P&L",
            )
            if main["days"]
            else None
        ),
        "drawdown_chart": drawdown(pnl, exits),
        "suggested_compare": ablation_links(book),
        "compare": None,
    }
    if filters.compare is not None:
        other, _, _ = book_part(filters.compare, filters)
        data["compare"] = {
            **other,
            "currency": book_quote_currency(book=filters.compare),
            "rows": comparison(main, other),
            "chart": overlay(main, other),
        }
    return data


PAGE = register(
    Page(
        name="performance",
        title="Performance",
        template="analytics/pages/performance.html",
        build=build,
        path="performance/",
        order=50,
        default_period="all",
        filters=("period", "strategy", "symbol", "compare"),
    )
)
