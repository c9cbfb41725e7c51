"""Pipeline health of a book (the health page and ``/healthz``): signals per state and the stuck ones."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from analytics.stuck import overdue
from shadow import rollups
from shadow.models import BookRollup
from signals.models import (
    Book,
    SignalState,
)


@dataclass(frozen=True, slots=True)
class StuckSignal:
    """A signal past its state's deadline; ``since`` is when it entered that state."""

    id: int
    state: str
    symbol: str
    timeframe: str
    since: datetime
    age: timedelta


@dataclass(frozen=True, slots=True)
class PipelineHealth:
    """Counts per state and the stuck signals (the oldest first, at most a page of them)."""

    book: Book
    state_counts: dict[str, int]
    stuck_count: int
    stuck: list[StuckSignal]


def signal_state_counts(*, book: Book) -> dict[str, int]:
    """Signals of ``book`` per state, every state present (zero when empty), in pipeline
    order: the book's ``signals`` rollups summed by state (``shadow.rollups``), a read of
    the rollups whatever the number of signals."""
    found: dict[str, int] = {}
    for row in rollups.totals(book.pk, BookRollup.Fact.SIGNALS, by=("state",)):
        found[row["state"]] = found.get(row["state"], 0) + row["n"]
    return {state.value: found.get(state.value, 0) for state in SignalState}


def stuck_signals(*, book: Book, now: datetime, limit: int = 100) -> list[StuckSignal]:
    """Signals of ``book`` past their state's deadline at ``now``, the oldest first.

    The deadlines per state are ``settings.STUCK_SIGNAL_DEADLINES`` (``analytics.stuck``):
    by default generated 10 minutes after creation, approved 2 candles of its timeframe
    after its decision, executed 2 candles past its maximum hold. Signals whose timeframe
    cannot be read are never flagged.
    """
    rows = (
        overdue(book=book, now=now)
        .order_by("since", "id")
        .values_list("id", "state", "symbol", "timeframe", "since")[:limit]
    )
    return [
        StuckSignal(
            id=signal_id,
            state=state,
            symbol=symbol,
            timeframe=timeframe,
            since=entered,
            age=now - entered,
        )
        for signal_id, state, symbol, timeframe, entered in rows
    ]


def pipeline_health(*, book: Book, now: datetime, limit: int = 100) -> PipelineHealth:
    """Counts per state and the stuck signals of ``book`` at ``now``."""
    return PipelineHealth(
        book=book,
        state_counts=signal_state_counts(book=book),
        stuck_count=overdue(book=book, now=now).count(),
        stuck=stuck_signals(book=book, now=now, limit=limit),
    )
