"""Ablation: the same history replayed once per guard with that guard removed.

A blocked signal's shadow P&L is a first-order estimate of what a guard cost or saved:
taking that trade would have changed what the book held next, and so every later
decision. An ablation leg replays the book's period with its frozen configuration less
one guard, so the difference between the two books' paper P&L is the guard's
path-dependent value. A leg trades on its book's frozen economics (fee, slippage,
sizing, paper balance), never on today's settings. Each leg is a replay book of its own (``ablation_of`` points at
the book it ablates), so legs run in parallel, one Celery task each. With no broker
configured (``make run``: ``settings.TASKS_IN_WEB_PROCESS``) they run one after the other
in a background thread of the web process instead.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from shadow.replay import ReplayResult, replay_run
from signals.models import Book, BookGuard, BookStrategy
from work.services import work_request

logger = logging.getLogger(__name__)


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
        # The leg trades exactly as the book did, whatever the settings say today.
        economics=book.economics or None,
    )


class AblationRefusedError(ValueError):
    """This book cannot be ablated; the message says why."""


# How long the page shows a requested ablation as pending: legs queue behind each other,
# each up to its task's time limit (shadow.tasks.ABLATION_LEG_TIME_LIMIT, 600 s).
PENDING_FOR_SECONDS = 1800


def _requested_key(book_id: int) -> str:
    return f"ablation-requested:{book_id}"


def ablation_refusal(*, book: Book) -> str | None:
    """Why ``book`` cannot be ablated, or ``None`` when it can."""
    if book.kind == Book.Kind.LIVE:
        return (
            "The live book cannot be ablated: an ablation replays a finished history. "
            "Replay the same period into a replay book (python manage.py replay) and ablate that."
        )
    if book.ablation_of_id is not None:
        return f"{book.name!r} is itself a leg of an ablation: ablate the book it was made from."
    if not ablation_guards(book=book):
        return f"{book.name!r} ran no guard: there is nothing to remove."
    return None


def ablation_start(*, book: Book) -> list[str]:
    """Start one ``shadow.ablation_leg`` task per guard of ``book`` (after the current
    transaction commits) and remember when, so the guard page shows the legs as pending
    until they are written. Raises ``AblationRefusedError`` for a book that cannot be
    ablated. Returns the guards removed, one leg each."""
    refusal = ablation_refusal(book=book)
    if refusal is not None:
        raise AblationRefusedError(refusal)
    guards = ablation_guards(book=book)
    cache.set(_requested_key(book.pk), timezone.now(), timeout=PENDING_FOR_SECONDS)
    if settings.TASKS_IN_WEB_PROCESS:
        transaction.on_commit(partial(_legs_in_background, book.pk, guards))
        return guards
    # Each leg is recorded in the database with the request, so a leg whose message the
    # broker loses is sent again by the sweep (work.resend_lost), never silently dropped.
    with transaction.atomic():
        for guard in guards:
            work_request(kind="shadow.ablation_leg", args=[book.pk, guard])
    return guards


def ablation_requested_at(*, book: Book) -> datetime | None:
    """When an ablation of ``book`` was last requested from the page (within the last
    ``PENDING_FOR_SECONDS``), else ``None``."""
    requested: datetime | None = cache.get(_requested_key(book.pk))
    return requested


# One ablation at a time in the web process: SQLite has one writer.
_IN_PROCESS = threading.Lock()


def _legs_in_background(book_id: int, guards: list[str]) -> None:
    """No broker (``make run``): run the legs in a thread of this process, so the request
    answers at once and the guard page shows each leg done as it is written."""
    thread = threading.Thread(
        target=_run_legs, args=(book_id, guards), name=f"ablation-{book_id}", daemon=True
    )
    thread.start()


def _run_legs(book_id: int, guards: list[str]) -> None:
    try:
        with _IN_PROCESS:
            for guard in guards:
                try:
                    ablation_leg_run(book_id=book_id, guard=guard)
                except Exception:
                    logger.exception("ablation leg of book %d without %r failed", book_id, guard)
    finally:
        connection.close()
