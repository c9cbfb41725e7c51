"""Paper balance running out, made visible: the approved signals that failed because the
free paper balance of their quote currency could not pay the entry.

Such a signal keeps its shadow trade (in the control group) but never holds a position,
so once a book's balance runs out, what its guards observe (open positions, closed
trades, drawdown) is no longer what trading would have made it. The pages count these
signals so a reader knows when that happened and how many signals it touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Min, Q

from signals.domain.engine import INSUFFICIENT_BALANCE
from signals.models import Book, GuardDecision, SignalState, SignalTransition


@dataclass(frozen=True, slots=True)
class BalanceFailures:
    """How many signals failed for lack of paper balance, and the first and last of them
    (by candle time)."""

    count: int
    first: datetime | None
    last: datetime | None


def _failed(prefix: str = "") -> Q:
    """Signals (through ``prefix``) whose ``fail`` transition says the balance was short."""
    return Q(
        **{
            f"{prefix}state": SignalState.FAILED,
            f"{prefix}transitions__name": "fail",
            f"{prefix}transitions__payload__reason__startswith": INSUFFICIENT_BALANCE,
        }
    )


def balance_failures(
    *, book: Book, windows: Mapping[str, tuple[datetime | None, datetime | None]] | None = None
) -> tuple[BalanceFailures, dict[str, int]]:
    """The book's signals that failed for lack of paper balance, in all its history, and
    per named window ``(since, until)`` (until exclusive, by candle time). One query."""
    windows = windows or {}

    def within(since: datetime | None, until: datetime | None) -> Q:
        where = Q()
        if since is not None:
            where &= Q(signal__candle_time__gte=since)
        if until is not None:
            where &= Q(signal__candle_time__lt=until)
        return where

    # Read from the transition log: a failed signal of the book's (book, state) index has
    # one "fail" row, so counting rows counts signals.
    row = SignalTransition.objects.filter(
        signal__book=book,
        signal__state=SignalState.FAILED,
        name="fail",
        payload__reason__startswith=INSUFFICIENT_BALANCE,
    ).aggregate(
        count=Count("id"),
        first=Min("signal__candle_time"),
        last=Max("signal__candle_time"),
        **{f"w_{key}": Count("id", filter=within(*span)) for key, span in windows.items()},
    )
    total = BalanceFailures(count=row["count"], first=row["first"], last=row["last"])
    return total, {key: row[f"w_{key}"] for key in windows}


def balance_failures_by_guard(
    *,
    book: Book,
    since: datetime | None = None,
    until: datetime | None = None,
    strategy: str = "",
    symbol: str = "",
) -> dict[int | None, int]:
    """Per guard configuration (``BookGuard`` id): how many of the signals it let through
    failed for lack of paper balance (by candle time, narrowed like the guard page)."""
    decisions = GuardDecision.objects.filter(
        _failed("signal__"), signal__book=book, verdict=GuardDecision.Verdict.PASS
    )
    if strategy:
        decisions = decisions.filter(signal__book_strategy__name=strategy)
    if symbol:
        decisions = decisions.filter(signal__symbol=symbol)
    if since is not None:
        decisions = decisions.filter(signal__candle_time__gte=since)
    if until is not None:
        decisions = decisions.filter(signal__candle_time__lt=until)
    rows = (
        decisions.values("book_guard_id")
        .order_by()
        .annotate(n=Count("signal_id", distinct=True))
        .values_list("book_guard_id", "n")
    )
    return dict(rows)
