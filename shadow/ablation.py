"""Ablation: the same history replayed once per guard with that guard removed.

A blocked signal's shadow P&L is a first-order estimate of what a guard cost or saved:
taking that trade would have changed what the book held next, and so every later
decision. An ablation leg replays the book's period with its frozen configuration less
one guard, so the difference between the two books' paper P&L is the guard's
path-dependent value. Each leg is a replay book of its own (``ablation_of`` points at
the book it ablates), so legs run in parallel, one Celery task each.
"""

from __future__ import annotations

from shadow.replay import ReplayResult, replay_run
from signals.models import Book, BookGuard, BookStrategy


def ablation_guards(*, book: Book) -> list[str]:
    """The guards an ablation of ``book`` removes, one leg each."""
    return list(
        BookGuard.objects.filter(book=book, active=True)
        .order_by("name")
        .values_list("name", flat=True)
    )


def ablation_leg_name(book: Book, guard: str) -> str:
    return f"{book.name} without {guard}"[:100]


def ablation_leg_run(*, book_id: int, guard: str) -> ReplayResult:
    """Replay ``book``'s period with its frozen strategies and guards less ``guard``, into
    the leg's own replay book (replacing an earlier run of the same leg)."""
    book = Book.objects.get(pk=book_id)
    strategies = list(BookStrategy.objects.filter(book=book, active=True))
    every = list(BookGuard.objects.filter(book=book, active=True))
    guards = [g for g in every if g.name != guard]
    if len(guards) == len(every):
        raise ValueError(f"book {book.name!r} has no guard named {guard!r}")
    return replay_run(
        name=ablation_leg_name(book, guard),
        description=f"{book.name} replayed without the guard {guard!r}",
        strategies=strategies,
        guards=guards,
        since=book.since,
        until=book.until,
        ablation_of=book,
        without_guard=guard,
    )
