"""Performance / P&L of a book's closed paper trades: total P&L, trades, win rate, profit
factor, expectancy, max drawdown and Sharpe (``analytics.metrics`` definitions), the
equity curve (paper, marked to market), daily realised P&L and the drawdown of realised
equity below its running peak.

``?compare=<book id>`` adds a second book ("B") with the same filters: both books'
figures side by side with the difference (A minus B) and their realised equity by day
overlaid, e.g. a replay beside its ablation leg without one guard.

Money is the paper trades' net P&L (after fees) in the book's quote currency, counted
when the trade closed (its exit time). A fixed number of queries per book whatever the
number of trades: two for the trades (their float columns in exit order, their exact
sums per day), the equity marks (one row per day, ``shadow.equity_marks``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from itertools import pairwise
from typing import Any

import numpy as np
from django.db.models import Q, Sum
from django.db.models.functions import TruncDate

from analytics.breakdowns import EpochMs, float_columns
from analytics.charts import chart_spec
from analytics.filters import Filters
from analytics.metrics import daily_pnl, trade_stats
from analytics.numbers import cents, rate, ratio
from analytics.pages import Page, register
from analytics.selectors import book_quote_currency
from markets.timestamps import ms_from_utc, utc_from_ms
from shadow import equity_marks, rollups
from signals.models import Book, PaperTrade

EQUITY_POINTS = 400
DRAWDOWN_POINTS = 400
ZERO = Decimal(0)

CONVENTION = (
    "P&L is that of the closed paper trades after fees, counted when a trade closed; "
    "positive = money made (green), negative = money lost (red). Max drawdown is the "
    "largest fall of realised equity below its running peak, shown as a positive amount."
)


@dataclass(frozen=True)
class Trades:
    """A book's closed paper trades inside the filters: their P&L (float) and exit time
    (ms) in exit order, for the statistics and the drawdown, and the exact decimal sums
    of their P&L per UTC day of the exit (all of it, its gains and its losses)."""

    pnl: np.ndarray
    exits: np.ndarray
    by_day: dict[int, tuple[Decimal, Decimal, Decimal]]

    def __len__(self) -> int:
        return int(self.pnl.size)


def trades(book: Book, filters: Filters) -> Trades:
    """``book``'s closed paper trades inside the filters: two queries, the float columns
    in exit order (``float_columns``) and the exact sums grouped by day."""
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
    closed = PaperTrade.objects.filter(where)
    columns = float_columns(
        closed.order_by("exit_time", "id").values_list("pnl", EpochMs("exit_time")), 2
    )
    days = (
        closed.annotate(day=TruncDate("exit_time", tzinfo=UTC))
        .values("day")
        .order_by("day")
        .annotate(
            day_pnl=Sum("pnl"),
            gains=Sum("pnl", filter=Q(pnl__gt=0)),
            losses=Sum("pnl", filter=Q(pnl__lt=0)),
        )
    )
    by_day = {}
    for row in days:
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))
        start = ms_from_utc(datetime.combine(day, time(), tzinfo=UTC))
        by_day[start] = (row["day_pnl"], row["gains"] or ZERO, row["losses"] or ZERO)
    return Trades(columns[:, 0], columns[:, 1].astype(np.int64), by_day)


def exact_figures(closed: Trades) -> dict[str, Any]:
    """The headline figures (``analytics.metrics``) before rounding; totals summed exactly
    in decimals (by the database, per day)."""
    stats = trade_stats(closed.pnl, closed.exits)
    total = sum((pnl for pnl, _, _ in closed.by_day.values()), ZERO)
    gross_profit = sum((gains for _, gains, _ in closed.by_day.values()), ZERO)
    gross_loss = -sum((losses for _, _, losses in closed.by_day.values()), ZERO)
    return {
        "total_pnl": total,
        "trades": stats.trades,
        "wins": stats.wins,
        "losses": stats.losses,
        "win_rate": stats.win_rate,
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
        "profit_factor": gross_profit / gross_loss if gross_loss > 0 else None,
        "expectancy": total / len(closed) if len(closed) else None,
        "max_drawdown": stats.max_drawdown,
        "sharpe": stats.sharpe,
    }


ROUNDING: dict[str, Callable[[Any], Any]] = {
    "total_pnl": cents,
    "win_rate": rate,
    "gross_profit": cents,
    "gross_loss": cents,
    "profit_factor": ratio,
    "expectancy": cents,
    "max_drawdown": cents,
    "sharpe": ratio,
}


def figures(exact: dict[str, Any]) -> dict[str, Any]:
    """``exact_figures`` as the page shows them (``analytics.numbers``)."""
    return {key: ROUNDING[key](value) if key in ROUNDING else value for key, value in exact.items()}


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date().isoformat()


def daily(closed: Trades) -> tuple[list[str], list[Decimal]]:
    """Every UTC day from the first exit to the last with the P&L closed that day."""
    days, _ = daily_pnl(closed.pnl, closed.exits)
    totals = {int(day): closed.by_day.get(int(day), (ZERO,))[0] for day in days}
    return [_day(day) for day in totals], [cents(value) or ZERO for value in totals.values()]


def drawdown(closed: Trades) -> dict[str, Any] | None:
    """Realised equity minus its running peak after each close (0 or below), at most
    ``DRAWDOWN_POINTS`` points, each the deepest of its bucket so the worst one shows."""
    if not len(closed):
        return None
    equity = np.cumsum(closed.pnl)
    under = equity - np.maximum.accumulate(np.maximum(equity, 0.0))
    times = closed.exits
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
    """The book's paper equity marked to market at the last candle close of each UTC day
    inside the period (``shadow.equity_marks``: the marks kept with the rollups; the
    days since the book's last write and a period's partial last day computed from the
    mark before them), at most ``EQUITY_POINTS`` points (the last of each bucket)."""
    rollups.ensure_built(book.pk)
    marks = equity_marks.book_marks(
        book.pk,
        since_ms=ms_from_utc(filters.since) if filters.since is not None else None,
        until_ms=ms_from_utc(filters.until) if filters.until is not None else None,
    )
    marks = equity_marks.sampled(marks, EQUITY_POINTS)
    if len(marks) < 2:
        return None
    values = [cents(value) for _, value in marks]
    last = values[-1] or ZERO
    return {
        "last": last,
        "chart": chart_spec(
            "line",
            [f"{utc_from_ms(t):%Y-%m-%d %H:%M}" for t, _ in marks],
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


def book_part(book: Book, filters: Filters) -> tuple[dict[str, Any], Trades, dict[str, Any]]:
    """One book's figures and daily P&L, with its trades' columns and its figures before
    rounding (a comparison takes its differences from those, then rounds once)."""
    closed = trades(book, filters)
    days, totals = daily(closed)
    exact = exact_figures(closed)
    part = {
        "book": {"id": book.pk, "name": book.name, "kind": book.kind},
        "figures": figures(exact),
        "days": days,
        "daily_pnl": totals,
    }
    return part, closed, exact


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


def comparison(
    a: dict[str, Any], b: dict[str, Any], exact_a: dict[str, Any], exact_b: dict[str, Any]
) -> list[dict[str, Any]]:
    """Each figure of book A beside book B's, with A minus B (``None`` if either lacks it).

    The difference is that of the exact figures, rounded once like the figure itself: a
    difference of two rounded totals can be a cent off the same difference shown elsewhere
    (the guard page's path-dependent value is the exact paper P&L of the book minus its
    leg's, rounded once)."""
    rows = []
    for key, label, unit in FIGURES:
        left, right = a["figures"][key], b["figures"][key]
        exact_left, exact_right = exact_a[key], exact_b[key]
        difference: Any = None
        if exact_left is not None and exact_right is not None:
            if unit == "count":
                difference = exact_left - exact_right
            elif unit == "money":
                difference = cents(Decimal(str(exact_left)) - Decimal(str(exact_right)))
            else:
                difference = ROUNDING[key](exact_left - exact_right)
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
    main, closed, exact = book_part(book, filters)
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
        "drawdown_chart": drawdown(closed),
        "suggested_compare": ablation_links(book),
        "compare": None,
    }
    if filters.compare is not None:
        other, _, other_exact = book_part(filters.compare, filters)
        data["compare"] = {
            **other,
            "currency": book_quote_currency(book=filters.compare),
            "rows": comparison(main, other, exact, other_exact),
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
