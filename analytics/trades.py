"""Paper trades of a book as the Trading page reads them: the filtered set, its totals
computed in the database, and one page of rows.

Which trades a filter keeps:

- a closed trade counts in a period by its exit time (money by when it closed);
- an open trade (or one still waiting for its entry candle) is active at the end of any
  window that ends after its signal's candle, so it shows whenever the window's end is
  after its signal; expired trades (never entered) are left out;
- ``strategy`` is the strategy configuration's name in the book, ``symbol`` the signal's
  market, ``side`` long or short;
- ``outcome``: ``win`` a closed trade with P&L > 0, ``loss`` one with P&L < 0 (the
  definitions of ``analytics.metrics``), ``open`` the active ones.
"""

from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet, Sum
from django.urls import reverse

from analytics.filters import Filters
from analytics.numbers import cents, fine, rate
from analytics.sorting import ordered
from markets.admin_format import price_places, quote_currency
from signals.models import PaperTrade

PAGE_SIZE = 50
# The trades table's ``?sort=`` keys (``analytics.sorting``): entry and exit by their time.
TRADE_SORTS: dict[str, tuple[str, ...]] = {
    "signal": ("signal_id",),
    "market": ("signal__symbol",),
    "strategy": ("signal__book_strategy__name",),
    "entry": ("entry_time",),
    "exit": ("exit_time",),
    "quantity": ("quantity",),
    "pnl": ("pnl",),
    "r": ("r_multiple",),
}

ACTIVE = (PaperTrade.Status.OPEN, PaperTrade.Status.PENDING)
CLOSED = PaperTrade.Status.CLOSED

EXIT_REASON_WORDS = {
    "stop": "stop-loss hit",
    "target": "take-profit hit",
    "timeout": "max hold reached",
    "gap": "gapped past the stop",
}
STATUS_WORDS: dict[str, str] = {
    PaperTrade.Status.OPEN: "open",
    PaperTrade.Status.PENDING: "awaiting entry",
    PaperTrade.Status.CLOSED: "closed",
}


def significant(value: Decimal | None) -> Decimal | None:
    """``value`` to six significant digits, at least two decimals (30,163.73;
    0.000123457): the precision a trader reads a price or a quantity in
    (``markets.admin_format.price_places``)."""
    if value is None:
        return None
    return value.quantize(Decimal(1).scaleb(-price_places(value)))


def window(queryset: QuerySet[Any], filters: Filters, prefix: str = "") -> QuerySet[Any]:
    """``queryset`` of trades (or of rows reaching them through ``prefix``) narrowed by
    ``filters``' strategy, symbol and side."""
    if filters.strategy:
        queryset = queryset.filter(**{f"{prefix}signal__book_strategy__name": filters.strategy})
    if filters.symbol:
        queryset = queryset.filter(**{f"{prefix}signal__symbol": filters.symbol})
    if filters.side:
        queryset = queryset.filter(**{f"{prefix}side": filters.side})
    return queryset


def paper_trades(filters: Filters) -> QuerySet[PaperTrade]:
    """The book's paper trades the filters keep (see the module's docstring)."""
    closed = Q(status=CLOSED)
    if filters.since is not None:
        closed &= Q(exit_time__gte=filters.since)
    if filters.until is not None:
        closed &= Q(exit_time__lt=filters.until)
    active = Q(status__in=ACTIVE)
    if filters.until is not None:
        active &= Q(signal__candle_time__lt=filters.until)
    if filters.outcome == "win":
        wanted = closed & Q(pnl__gt=0)
    elif filters.outcome == "loss":
        wanted = closed & Q(pnl__lt=0)
    elif filters.outcome == "open":
        wanted = active
    else:
        wanted = closed | active
    return window(PaperTrade.objects.filter(book=filters.book), filters).filter(wanted)


def trade_totals(trades: QuerySet[PaperTrade]) -> dict[str, Any]:
    """Count, open, closed, wins, losses, win rate, total and average P&L of ``trades``
    in one query. P&L figures are of the closed trades (open ones have none yet)."""
    closed = Q(status=CLOSED)
    row = trades.aggregate(
        count=Count("id"),
        open=Count("id", filter=Q(status__in=ACTIVE)),
        closed=Count("id", filter=closed),
        wins=Count("id", filter=closed & Q(pnl__gt=0)),
        losses=Count("id", filter=closed & Q(pnl__lt=0)),
        total_pnl=Sum("pnl", filter=closed),
        average_pnl=Avg("pnl", filter=closed),
    )
    return {
        "count": row["count"],
        "open": row["open"],
        "closed": row["closed"],
        "wins": row["wins"],
        "losses": row["losses"],
        "win_rate": rate(row["wins"] / row["closed"]) if row["closed"] else None,
        "total_pnl": cents(row["total_pnl"] or 0),
        "average_pnl": cents(row["average_pnl"]),
    }


def trade_page(trades: QuerySet[PaperTrade], number: int, sort: str = "") -> list[dict[str, Any]]:
    """Page ``number`` (1-based, ``PAGE_SIZE`` rows) of ``trades`` in one query, in the
    order ``sort`` names (a ``TRADE_SORTS`` key, ``-`` for descending; over all of
    ``trades``, then by id); without one the active ones first (newest signal first),
    then the closed ones, latest exit first."""
    start = (number - 1) * PAGE_SIZE
    trades = trades.select_related("signal", "signal__book_strategy", "signal__strategy_config")
    if sort:
        trades = ordered(trades, sort, TRADE_SORTS)
    else:
        trades = trades.order_by("-status", "-exit_time", "-signal__candle_time", "-id")
    rows = trades[start : start + PAGE_SIZE]
    return [trade_row(trade) for trade in rows]


def strategy_label(trade: PaperTrade) -> str:
    strategy = trade.signal.book_strategy
    if strategy is not None:
        return f"{strategy.name} v{strategy.config_version}"
    return trade.signal.strategy_config.name


def trade_row(trade: PaperTrade) -> dict[str, Any]:
    """One trade as plain data: prices to six significant digits, money to the cent."""
    signal = trade.signal
    return {
        "signal_id": signal.pk,
        "signal_url": reverse("analytics:signal", args=[signal.pk]),
        "symbol": signal.symbol,
        "side": trade.side,
        "strategy": strategy_label(trade),
        "status": trade.status,
        "status_words": STATUS_WORDS.get(trade.status, trade.status),
        "signal_time": signal.candle_time,
        "entry_time": trade.entry_time,
        "entry_price": significant(trade.entry_price),
        "exit_time": trade.exit_time,
        "exit_price": significant(trade.exit_price),
        "exit_reason": trade.exit_reason or None,
        "exit_reason_words": EXIT_REASON_WORDS.get(trade.exit_reason, trade.exit_reason) or None,
        "quantity": significant(trade.quantity),
        "pnl": cents(trade.pnl),
        "currency": quote_currency(signal.symbol),
        "r_multiple": fine(trade.r_multiple, 2),
        "return_pct": fine(trade.return_pct, 2),
    }
