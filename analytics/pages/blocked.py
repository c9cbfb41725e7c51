"""Blocked signals: the signals of a book one guard blocked (``?guard=<name>``; every
blocked signal without it), newest first, each linked to its signal page and its chart,
with what its shadow trade made. Reached from the guard page's "Blocked" counts; not in
the top bar."""

from typing import Any
from urllib.parse import urlencode

from django.db.models import Prefetch, QuerySet
from django.urls import reverse

from analytics.breakdowns import scope
from analytics.filters import Filters
from analytics.numbers import cents
from analytics.pages import Page, register
from analytics.sorting import beyond, headers, keyset_columns, ordered
from analytics.trades import EXIT_REASON_WORDS, STATUS_WORDS
from markets.admin_format import quote_currency
from shadow import rollups
from shadow.models import BookRollup
from signals.models import GuardDecision, Signal, SignalState

PAGE_SIZE = 50
Fact = BookRollup.Fact
# The table's ``?sort=`` keys (``analytics.sorting``), and each column's first direction.
SORTS: dict[str, tuple[str, ...]] = {
    "signal": ("id",),
    "market": ("symbol",),
    "candle": ("candle_time",),
    "pnl": ("shadow_trade__pnl",),
}
SORT_COLUMNS = {"signal": "-", "market": "", "candle": "-", "pnl": "-"}
DEFAULT_SORT = "-candle"


def blocked_signals(filters: Filters, guard: str) -> QuerySet[Signal]:
    """The book's blocked signals (by ``guard`` when given) whose candle is in the
    filters' window, as the guard page counts them: by candle time, strategy and symbol
    (and side)."""
    signals = Signal.objects.filter(book=filters.book, state=SignalState.BLOCKED)
    if guard:
        signals = signals.filter(
            decisions__guard=guard, decisions__verdict=GuardDecision.Verdict.BLOCK
        )
    if filters.since is not None:
        signals = signals.filter(candle_time__gte=filters.since)
    if filters.until is not None:
        signals = signals.filter(candle_time__lt=filters.until)
    if filters.strategy:
        signals = signals.filter(book_strategy__name=filters.strategy)
    if filters.symbol:
        signals = signals.filter(symbol=filters.symbol)
    if filters.side:
        signals = signals.filter(side=filters.side)
    return signals


def blocked_count(filters: Filters, guard: str) -> int:
    """How many signals ``blocked_signals`` holds, from the rollups (``signals`` in state
    blocked, or ``guard_blocked`` of ``guard``: the same signals, summed per candle day,
    a period's partial first and last day from the rows) whatever the book's size; by
    counting the rows when narrowed by side, which the rollups do not keep."""
    assert filters.book is not None
    if filters.side:
        return blocked_signals(filters, guard).count()
    fact, where = (
        (Fact.GUARD_BLOCKED, {"guard": guard})
        if guard
        else (Fact.SIGNALS, {"state": SignalState.BLOCKED})
    )
    rows = rollups.totals(
        filters.book.pk,
        fact,
        since=filters.since,
        until=filters.until,
        **scope(filters),
        where=where,
        clock=filters.clock,
    )
    return sum(int(row["n"]) for row in rows)


def _cursor(filters: Filters, name: str) -> int | None:
    """``?after=``/``?before=`` (checked by ``analytics.filters``: a signal id)."""
    raw = filters.raw.get(name, "")
    return int(raw) if raw else None


def page_rows(signals: QuerySet[Signal], filters: Filters, count: int) -> tuple[list[Signal], bool]:
    """The signals of the page asked for, in the page's order, and whether they were read
    from a keyset. ``?after=<id>`` (``?before=<id>``): the ``PAGE_SIZE`` signals after
    (before) that signal in an order whose columns cannot be empty (the default, by
    candle, by id, by market): read from where it stands, through an index for the first
    two, whatever the page number. Otherwise page ``filters.page`` by its offset, counted
    from whichever end of the ``count`` rows is nearer (the last page is read backwards
    from the end)."""
    sort = filters.sort or DEFAULT_SORT
    blockers = GuardDecision.objects.filter(verdict=GuardDecision.Verdict.BLOCK).order_by("guard")
    rows = signals.select_related("shadow_trade").prefetch_related(
        Prefetch("decisions", queryset=blockers, to_attr="blockers")
    )
    columns = keyset_columns(Signal, sort, SORTS)
    for name, after in (("after", True), ("before", False)):
        pk = _cursor(filters, name)
        if columns is None or pk is None:
            continue
        row = signals.filter(pk=pk).values(*columns).first()
        if row is None:  # no longer in the list (or never): by the page number instead
            continue
        found = beyond(ordered(rows, sort, SORTS, reverse=not after), sort, SORTS, row, after=after)
        page = list(found[:PAGE_SIZE])
        return (page if after else page[::-1]), True
    start = (filters.page - 1) * PAGE_SIZE
    end = min(start + PAGE_SIZE, count)
    if start < count and count - end < start:
        return list(ordered(rows, sort, SORTS, reverse=True)[count - end : count - start])[
            ::-1
        ], False
    return list(ordered(rows, sort, SORTS)[start : start + PAGE_SIZE]), False


def build(filters: Filters) -> dict[str, Any]:
    """The count (from the rollups: ``blocked_count``) and one page of rows (two
    queries: the signals with their shadow trades in the page's order, read through an
    index for the default order, and the guards that blocked them; a third to place the
    keyset's signal). The pager's links carry the keyset: the next page starts after the
    last signal shown, the previous one ends before the first."""
    guard = filters.raw.get("guard", "")
    signals = blocked_signals(filters, guard)
    count = blocked_count(filters, guard)
    last = max(1, -(-count // PAGE_SIZE))
    number = filters.page
    rows, _ = page_rows(signals, filters, count)
    keyed = keyset_columns(Signal, filters.sort or DEFAULT_SORT, SORTS) is not None
    kept = {k: v for k, v in filters.raw.items() if k not in ("page", "after", "before")}

    def page_query(page: int, **cursor: int) -> str:
        return urlencode({**kept, "page": str(page), **{k: str(v) for k, v in cursor.items()}})

    previous = next_ = None
    if number > 1:
        first_keyed = keyed and rows and number > 2
        previous = (
            page_query(number - 1, before=rows[0].pk) if first_keyed else page_query(number - 1)
        )
    if number < last:
        next_ = (
            page_query(number + 1, after=rows[-1].pk) if keyed and rows else page_query(number + 1)
        )
    return {
        "guard": guard or None,
        "count": count,
        "signals": [_row(signal) for signal in rows],
        "sort": filters.sort or DEFAULT_SORT,
        "sort_links": headers(filters.raw, filters.sort or DEFAULT_SORT, SORT_COLUMNS),
        "pages": {
            "number": number,
            "last": last,
            "size": PAGE_SIZE,
            "previous": previous,
            "next": next_,
            "last_query": page_query(last),
        },
    }


def _row(signal: Signal) -> dict[str, Any]:
    shadow = getattr(signal, "shadow_trade", None)
    return {
        "signal_id": signal.pk,
        "signal_url": reverse("analytics:signal", args=[signal.pk]),
        "signal_time": signal.candle_time,
        "symbol": signal.symbol,
        "side": signal.side,
        "blocked_by": [decision.guard for decision in signal.blockers],  # type: ignore[attr-defined]
        "shadow_status": STATUS_WORDS.get(shadow.status, shadow.status) if shadow else None,
        "shadow_exit_reason": (
            EXIT_REASON_WORDS.get(shadow.exit_reason, shadow.exit_reason) or None
            if shadow
            else None
        ),
        "shadow_pnl": cents(shadow.pnl) if shadow else None,
        "currency": quote_currency(signal.symbol),
    }


PAGE = register(
    Page(
        name="blocked",
        title="Blocked signals",
        template="analytics/pages/blocked.html",
        build=build,
        path="blocked/",
        order=45,
        nav=False,
        filters=("period", "strategy", "symbol", "guard", "side"),
        sorts=SORTS,
    )
)
