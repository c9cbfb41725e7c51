"""Performance / P&L of a book's closed paper trades: total P&L, trades, win rate, profit
factor, expectancy, max drawdown and Sharpe (``analytics.metrics`` definitions), the
equity curve (paper, marked to market), daily realised P&L and the drawdown of realised
equity below its running peak.

``?compare=<book id>`` adds a second book ("B") with the same filters: both books'
figures side by side with the difference (A minus B) and their realised equity by day
overlaid, e.g. a replay beside its ablation leg without one guard.

Money is the paper trades' net P&L (after fees) in the book's quote currency, counted
when the trade closed (its exit time). A fixed number of queries per book whatever the
number of trades, each reading about one row per day: the trades' equity segments
(``analytics.segments``: one per exit day, folded exactly into every figure, the daily
P&L and the drawdown chart; a window's partial first and last day from the rows through
the segments' query) and the equity marks (``shadow.equity_marks``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Q, QuerySet

from analytics import segments
from analytics.breakdowns import EpochMs, float_columns
from analytics.charts import chart_spec
from analytics.filters import Filters
from analytics.numbers import cents, rate, ratio
from analytics.pages import Page, register
from analytics.selectors import book_quote_currency
from markets.timestamps import ms_from_utc, utc_from_ms
from shadow import equity_marks, rollups
from shadow.models import BookRollup
from signals.models import Book, BookStrategy, PaperTrade

EQUITY_POINTS = 400
DRAWDOWN_POINTS = 400
DRAWDOWN_ROW_LIMIT = 20_000
SHORT = timedelta(days=31)
ZERO = Decimal(0)

CONVENTION = (
    "P&L is that of the closed paper trades after fees, counted when a trade closed; "
    "positive = money made (green), negative = money lost (red). Max drawdown is the "
    "largest fall of realised equity below its running peak, shown as a positive amount."
)


@dataclass(frozen=True)
class Trades:
    """A book's closed paper trades inside the filters, as one equity segment per UTC
    day of their exits (``analytics.segments``: count, wins, losses, exact total, gross
    profit and loss, highest and lowest running sum and largest fall of the day's trades
    in exit order), in day order: every figure, the daily P&L and the drawdown chart fold
    from these, whatever the number of trades."""

    days: list[dict[str, Any]]

    def __len__(self) -> int:
        return sum(int(day["n"]) for day in self.days)


def _stored_group(book: Book, filters: Filters) -> tuple[bool, int | None]:
    """Whether the stored segments hold exactly the trades inside the filters, and the
    group to read (a strategy version id, ``None`` for the book's row). They hold the
    trades of signals with a strategy version, one version per row: a book with a closed
    paper trade of a signal without one (the rollups' ``paper`` fact says so), a strategy
    name with several versions or a strategy narrowed by symbol read the rows instead."""
    if BookRollup.objects.filter(
        book_id=book.pk, fact=BookRollup.Fact.PAPER, strategy_id__isnull=True
    ).exists():
        return False, None
    if not filters.strategy:
        return True, None
    if filters.symbol:
        return False, None
    versions = list(
        BookStrategy.objects.filter(book=book, name=filters.strategy).values_list("pk", flat=True)
    )
    return (True, versions[0]) if len(versions) == 1 else (False, None)


def closed_rows(book: Book, filters: Filters) -> QuerySet[PaperTrade]:
    """``book``'s closed paper trades inside the filters, as rows."""
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
    return PaperTrade.objects.filter(where)


def trades(book: Book, filters: Filters, *, stored: bool = True) -> Trades:
    """``book``'s closed paper trades inside the filters, one segment per exit day: from
    the stored segments (whole days from their day rows, a partial first and last day
    from the rows through their query) when they hold exactly these trades, else from
    the rows by the same window functions (``stored=False`` always does). The rollups
    must be built."""
    usable, strategy_id = _stored_group(book, filters) if stored else (False, None)
    if not usable:
        return Trades(segments.of_trades(closed_rows(book, filters)))
    clock = filters.clock if book == filters.book else None
    return Trades(
        segments.days(
            book.pk,
            since=filters.since,
            until=filters.until,
            strategy_id=strategy_id,
            symbol=filters.symbol,
            clock=clock,
        )
    )


def exact_figures(closed: Trades) -> dict[str, Any]:
    """The headline figures (``analytics.metrics``' definitions) before rounding, folded
    exactly from the days' segments (``analytics.segments.fold``)."""
    folded = segments.fold(closed.days)
    return {
        "total_pnl": folded.total_pnl,
        "trades": folded.trades,
        "wins": folded.wins,
        "losses": folded.losses,
        "win_rate": folded.win_rate,
        "gross_profit": folded.gross_profit,
        "gross_loss": folded.gross_loss,
        "profit_factor": folded.profit_factor,
        "expectancy": folded.total_pnl / folded.trades if folded.trades else None,
        "max_drawdown": folded.max_drawdown,
        "sharpe": folded.sharpe,
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


def daily(closed: Trades) -> tuple[list[str], list[Decimal]]:
    """Every UTC day from the first exit to the last with the P&L closed that day."""
    if not closed.days:
        return [], []
    totals = {rollups.as_date(day["day"]): segments.money(day["total"]) for day in closed.days}
    first, last = min(totals), max(totals)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [day.isoformat() for day in days], [cents(totals.get(day, ZERO)) or ZERO for day in days]


def drawdown_row_limit() -> int:
    """The most trades whose drawdown is drawn trade by trade
    (``PERFORMANCE_DRAWDOWN_ROW_LIMIT``); past it, day by day from the segments."""
    return int(getattr(settings, "PERFORMANCE_DRAWDOWN_ROW_LIMIT", DRAWDOWN_ROW_LIMIT))


def drawdown(book: Book, filters: Filters, closed: Trades) -> dict[str, Any] | None:
    """Realised equity below its running peak (0 at the start of the period), at most
    ``DRAWDOWN_POINTS`` points, each the deepest of its bucket so the worst one (the
    maximum drawdown) shows: in a period of at most ``SHORT`` with up to
    ``drawdown_row_limit()`` trades, after each close (one more query: their P&L in exit
    order, a read of the book's trades closed in the period); else for each UTC day with
    a close the deepest it went that day, from the day's opening level to its last
    close, folded exactly from the days' segments (a longer period's read would cost
    every closed trade of the book)."""
    if not closed.days:
        return None
    end = filters.until or filters.clock
    short = filters.since is not None and end is not None and end - filters.since <= SHORT
    if short and len(closed) <= drawdown_row_limit():
        return _drawdown_by_trade(closed_rows(book, filters))
    return _drawdown_by_day(closed)


def _drawdown_chart(labels: list[str], under: list[Any], per: str) -> dict[str, Any]:
    """The chart, with ``per``: "close" (a point after each close) or "day" (the deepest
    point of each UTC day), which the page's caption says."""
    return {
        **chart_spec(
            "line",
            labels,
            [
                {
                    "name": "Below the peak",
                    "values": [cents(v) for v in under],
                    "tone": "bad",
                    "fill": True,
                }
            ],
            y_label="Drawdown",
        ),
        "per": per,
    }


def _drawdown_by_trade(rows: QuerySet[PaperTrade]) -> dict[str, Any] | None:
    columns = float_columns(
        rows.order_by("exit_time", "id").values_list("pnl", EpochMs("exit_time")), 2
    )
    if not len(columns):
        return None
    equity = np.cumsum(columns[:, 0])
    under = equity - np.maximum.accumulate(np.maximum(equity, 0.0))
    times = columns[:, 1].astype(np.int64)
    if under.size > DRAWDOWN_POINTS:
        edges = np.linspace(0, under.size, DRAWDOWN_POINTS + 1).astype(np.int64)
        picks = [int(a + np.argmin(under[a:b])) for a, b in pairwise(edges)]
        under, times = under[picks], times[picks]
    return _drawdown_chart(
        [f"{utc_from_ms(int(t)):%Y-%m-%d %H:%M}" for t in times],
        [float(v) for v in under],
        "close",
    )


def _drawdown_by_day(closed: Trades) -> dict[str, Any]:
    equity = peak = ZERO
    under: list[Decimal] = []
    for day in closed.days:
        high, low, fall = (segments.money(day[key]) for key in ("high", "low", "fall"))
        under.append(-max(fall, peak - (equity + low)))
        peak = max(peak, equity + high)
        equity += segments.money(day["total"])
    labels = [rollups.as_date(day["day"]).isoformat() for day in closed.days]
    if len(under) > DRAWDOWN_POINTS:
        edges = np.linspace(0, len(under), DRAWDOWN_POINTS + 1).astype(np.int64)
        picks = [min(range(a, b), key=under.__getitem__) for a, b in pairwise(edges)]
        under, labels = [under[i] for i in picks], [labels[i] for i in picks]
    return _drawdown_chart(labels, under, "day")


def equity(book: Book, filters: Filters) -> dict[str, Any] | None:
    """The book's paper equity marked to market at the last candle close of each UTC day
    inside the period (``shadow.equity_marks``: the marks kept with the rollups; the
    days since the book's last write and a period's partial last day computed from the
    mark before them), at most ``EQUITY_POINTS`` points (the last of each bucket). The
    rollups must be built."""
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
    rounding (a comparison takes its differences from those, then rounds once). Builds
    the book's rollups if they are not current."""
    rollups.ensure_built(book.pk)
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
        "drawdown_chart": drawdown(book, filters, closed),
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
