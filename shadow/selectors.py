"""Reads of one book's headline numbers, shared by the replay's report and the pages."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Q, Sum

from markets.bars import CandleArrays
from markets.selectors import candle_arrays
from shadow.models import ShadowTrade
from signals.domain.engine import Market
from signals.models import Book, PaperTrade, Signal, SignalState

ZERO = Decimal(0)

# Signals that passed every guard, wherever they went afterwards.
PASSED_GUARD_STATES = (
    SignalState.APPROVED,
    SignalState.EXECUTED,
    SignalState.FAILED,
    SignalState.EXPIRED,
    SignalState.CLOSED,
)


@dataclass(frozen=True, slots=True)
class OpportunityCost:
    """Shadow P&L of the blocked signals: positive means the guards left money on the table."""

    total_pnl: Decimal
    closed: int
    open: int


@dataclass(frozen=True, slots=True)
class BookSummary:
    """Headline counts of one book; ``approved`` counts every signal that passed the guards."""

    signals: int
    generated: int
    approved: int
    blocked: int
    rejected: int
    paper_open: int
    paper_closed: int
    paper_pnl: Decimal
    shadow_open: int
    shadow_closed: int


def opportunity_cost(*, book: Book) -> OpportunityCost:
    """The blocked opportunity cost of ``book``: shadow P&L summed over its blocked signals."""
    closed = Q(status=ShadowTrade.Status.CLOSED, pnl__isnull=False)
    totals = ShadowTrade.objects.filter(book=book, group=ShadowTrade.Group.BLOCKED).aggregate(
        total_pnl=Sum("pnl", filter=closed),
        closed=Count("id", filter=closed),
        open=Count("id", filter=~Q(status=ShadowTrade.Status.CLOSED)),
    )
    return OpportunityCost(
        total_pnl=totals["total_pnl"] if totals["total_pnl"] is not None else ZERO,
        closed=totals["closed"],
        open=totals["open"],
    )


def book_summary(*, book: Book) -> BookSummary:
    """Headline numbers of ``book``: signals by outcome, paper and shadow trades."""
    signals = Signal.objects.filter(book=book).aggregate(
        signals=Count("id"),
        generated=Count("id", filter=Q(state=SignalState.GENERATED)),
        approved=Count("id", filter=Q(state__in=PASSED_GUARD_STATES)),
        blocked=Count("id", filter=Q(state=SignalState.BLOCKED)),
        rejected=Count("id", filter=Q(state=SignalState.REJECTED)),
    )
    paper_closed = Q(status=PaperTrade.Status.CLOSED)
    paper = PaperTrade.objects.filter(book=book).aggregate(
        open=Count("id", filter=~paper_closed),
        closed=Count("id", filter=paper_closed),
        pnl=Sum("pnl", filter=paper_closed),
    )
    shadow_closed = Q(status=ShadowTrade.Status.CLOSED)
    shadow = ShadowTrade.objects.filter(book=book).aggregate(
        open=Count("id", filter=~shadow_closed),
        closed=Count("id", filter=shadow_closed),
    )
    return BookSummary(
        signals=signals["signals"],
        generated=signals["generated"],
        approved=signals["approved"],
        blocked=signals["blocked"],
        rejected=signals["rejected"],
        paper_open=paper["open"],
        paper_closed=paper["closed"],
        paper_pnl=paper["pnl"] if paper["pnl"] is not None else ZERO,
        shadow_open=shadow["open"],
        shadow_closed=shadow["closed"],
    )


def market_candles(
    market: Market,
    *,
    after: datetime | None = None,
    until: datetime | None = None,
    newest: int | None = None,
) -> CandleArrays:
    """The stored candles of one of the engine's markets (``markets.selectors.candle_arrays``)."""
    return candle_arrays(
        exchange=market.exchange,
        symbol=market.symbol,
        timeframe=market.timeframe,
        after=after,
        until=until,
        newest=newest,
    )
