"""Server-side sorting of the paginated tables: ``?sort=<key>`` or ``?sort=-<key>``.

A page that shows its rows a page at a time (Trading's trades, the blocked signals)
sorts in the database over every row the filters keep, never within the page shown:
sorting by P&L puts the best trade of the whole set first on page 1. Each such page
names its sort keys on its ``Page`` (``sorts``: key -> the model fields to order by);
``parse_filters`` refuses any other value with a 400 naming ``sort`` (HTML and JSON
alike), and the URL keeps the sort, so the pager's links and the JSON twin read the same
order. Every order ends on the row's id, so equal values keep one order and offset
pagination neither repeats nor skips a row. Empty values (open trades have no P&L yet)
come last in both directions.

Tables that show all their rows keep sorting in the browser (``static/js/sortable.js``).
"""

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from django.db.models import F, QuerySet
from django.db.models.expressions import OrderBy

SortFields = Mapping[str, tuple[str, ...]]


def sort_key(sort: str) -> tuple[str, bool]:
    """``sort`` as (key, descending): ``"-pnl"`` is ``("pnl", True)``."""
    return sort.removeprefix("-"), sort.startswith("-")


def allowed(sorts: SortFields) -> list[str]:
    """Every value ``?sort=`` may take for these keys: each key and its reverse."""
    return [value for key in sorts for value in (key, f"-{key}")]


def ordered(queryset: QuerySet[Any], sort: str, sorts: SortFields) -> QuerySet[Any]:
    """``queryset`` in the order ``sort`` names (one of ``allowed(sorts)``), its empty
    values last, then by id in the same direction (a total order, stable across pages)."""
    key, descending = sort_key(sort)
    terms: list[OrderBy] = []
    for name in (*sorts[key], "id"):
        field = F(name)
        terms.append(field.desc(nulls_last=True) if descending else field.asc(nulls_last=True))
    return queryset.order_by(*terms)


def headers(
    query: Mapping[str, str], sort: str, columns: Mapping[str, str]
) -> dict[str, dict[str, str]]:
    """For each sortable column (its key -> its default direction, ``"-"`` for highest
    first), the query string its header links to and its ``aria-sort`` now: a first click
    sorts in the column's default direction, a second click reverses it. The page number
    is dropped (a new order starts on page 1); every other filter is kept."""
    current, descending = sort_key(sort) if sort else ("", False)
    links = {}
    for key, first in columns.items():
        if key == current:
            state = "descending" if descending else "ascending"
            target = key if descending else f"-{key}"
        else:
            state = "none"
            target = f"{first}{key}"
        values = {name: value for name, value in query.items() if name not in ("page", "sort")}
        values["sort"] = target
        links[key] = {
            "query": urlencode({name: value for name, value in values.items() if value}),
            "aria_sort": state,
        }
    return links
