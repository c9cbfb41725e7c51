"""Celery tasks of the live pipeline: thin, each takes ids and calls one service."""

from __future__ import annotations

from functools import partial
from typing import Any

from celery import current_app, shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.task_base import DATABASE_ERRORS
from shadow.ablation import ablation_leg_run
from shadow.live import BookBusyError, book_advance
from signals.models import Book
from signals.services import book_live
from work.task_base import WorkTask

# A book's run reads, computes and writes in well under a minute; the limit stops a
# run that hangs (a lost database connection) before the next periodic one piles up.
ADVANCE_TIME_LIMIT = 300


@shared_task(name="shadow.advance_live_books", time_limit=60, soft_time_limit=50)
def advance_live_books() -> list[int]:
    """Ask the signal queue to advance every live book (creating the live book first)."""
    book_live()
    ids = list(Book.objects.filter(kind=Book.Kind.LIVE).values_list("pk", flat=True))
    for book_id in ids:
        transaction.on_commit(
            partial(current_app.send_task, "shadow.advance_book", kwargs={"book_id": book_id})
        )
    return ids


@shared_task(
    name="shadow.advance_book",
    time_limit=ADVANCE_TIME_LIMIT,
    soft_time_limit=ADVANCE_TIME_LIMIT - 30,
    # A dropped database connection (a PostgreSQL restart, raw psycopg errors from the bulk
    # COPY included) or a lost race: try again.
    autoretry_for=(*DATABASE_ERRORS, BookBusyError),
    retry_backoff=5,
    retry_backoff_max=60,
    max_retries=5,
)
def advance_book(book_id: int) -> dict[str, Any]:
    """Run the candles closed since the book's last run through the engine; in
    ``TRADING_MODE=live``, then hand the book to the execution task."""
    progress = book_advance(book_id=book_id, now=timezone.now()).as_dict()
    if settings.TRADING_MODE == "live":
        transaction.on_commit(
            partial(current_app.send_task, "signals.execute_book", kwargs={"book_id": book_id})
        )
    return progress


# A leg replays a finished period (90,000 candles take seconds): the default 600 s is
# ample, and every task must end well inside the broker's visibility timeout (900 s) or
# its message is handed to another worker and the leg runs twice (config/celery.py).
ABLATION_LEG_TIME_LIMIT = 600


@shared_task(
    name="shadow.ablation_leg",
    base=WorkTask,
    time_limit=ABLATION_LEG_TIME_LIMIT,
    soft_time_limit=ABLATION_LEG_TIME_LIMIT - 30,
)
def ablation_leg(book_id: int, guard: str) -> dict[str, Any]:
    """Replay a book's period without one of its guards, into the leg's own book."""
    result = ablation_leg_run(book_id=book_id, guard=guard)
    return {"book_id": result.book.pk, "candles": result.candles, "rows": result.written.rows}
