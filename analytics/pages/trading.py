"""Trading: the book's active paper trades and the history of its closed ones, with
totals for the filtered set (computed in the database) and pages of 50 rows."""

from typing import Any

from analytics import trades as trade_queries
from analytics.filters import Filters
from analytics.pages import Page, register
from analytics.sorting import headers

# Each sortable column's first direction: money, size and time highest first.
SORT_COLUMNS = {
    "signal": "-",
    "market": "",
    "strategy": "",
    "entry": "-",
    "exit": "-",
    "quantity": "-",
    "pnl": "-",
    "r": "-",
}


def build(filters: Filters) -> dict[str, Any]:
    """Totals (one query) and one page of trades (one query), whatever the book's size."""
    trades = trade_queries.paper_trades(filters)
    totals = trade_queries.trade_totals(trades)
    size = trade_queries.PAGE_SIZE
    last = max(1, -(-totals["count"] // size))
    number = filters.page
    return {
        "totals": totals,
        "trades": trade_queries.trade_page(trades, number, filters.sort),
        "sort": filters.sort or None,
        "sort_links": headers(filters.raw, filters.sort, SORT_COLUMNS),
        "pages": {
            "number": number,
            "last": last,
            "size": size,
            "first_row": (number - 1) * size + 1,
            "previous": filters.query(page=str(number - 1)) if number > 1 else None,
            "next": filters.query(page=str(number + 1)) if number < last else None,
            "last_query": filters.query(page=str(last)),
        },
    }


PAGE = register(
    Page(
        name="trading",
        title="Trading",
        template="analytics/pages/trading.html",
        build=build,
        path="trading/",
        order=60,
        default_period="all",
        filters=("period", "strategy", "symbol", "side", "outcome"),
        sorts=trade_queries.TRADE_SORTS,
    )
)
