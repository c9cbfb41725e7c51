"""Stuck-signal recovery: the task ``analytics.recover_stuck_signals``.

A signal of a live book moves only when its book advances (``shadow.advance_book``, run
for every live book each minute by beat): the engine decides new signals in the run
that makes them, and fills, expires or closes earlier ones as the next candles come in.
A generated, approved or executed signal past its state's deadline
(``analytics.stuck``) therefore means its book did not advance: the periodic run
failed, was lost with a worker, or sits behind a full queue.

Recovery finds the stuck signals of every live book and queues ``shadow.advance_book``
once per book that has any (never once per signal), then records a ``RecoveryRun`` with
what it found and did. It is safe to run twice, or alongside the periodic advance:
``advance_book`` runs only the candles not run yet and claims the book's state with an
optimistic lock, so a second advance finds nothing new or retries; it never writes a
signal twice.

Beat runs with nothing stuck are not recorded (the task heartbeat shows they ran);
runs asked for by a person always are.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import current_app, shared_task
from django.utils import timezone

from analytics.heartbeats import error_text
from analytics.models import RecoveryRun
from analytics.stuck import human_duration, overdue
from signals.models import Book

logger = logging.getLogger(__name__)

ADVANCE_TASK = "shadow.advance_book"
BEAT_ACTOR = "beat"
# Signals recorded per book in one run (the count is always complete).
MAX_RECORDED_PER_BOOK = 200


def recover(*, actor: str, now: datetime | None = None) -> RecoveryRun | None:
    """Find the stuck signals of the live books and re-queue their books' advance.

    Returns the recorded run, or ``None`` for a beat run that found nothing.
    """
    now = now or timezone.now()
    found = 0
    actions: list[dict[str, Any]] = []
    lines: list[str] = []
    for book in Book.objects.filter(kind=Book.Kind.LIVE).order_by("name"):
        stuck = overdue(book=book, now=now).order_by("since", "id")
        rows = list(
            stuck.values_list("id", "state", "symbol", "since")[: MAX_RECORDED_PER_BOOK + 1]
        )
        if not rows:
            continue
        count = len(rows) if len(rows) <= MAX_RECORDED_PER_BOOK else stuck.count()
        found += count
        try:
            result = current_app.send_task(ADVANCE_TASK, kwargs={"book_id": book.pk})
        except Exception as exc:
            action = f"could not queue {ADVANCE_TASK}: {error_text(exc)}"
            lines.append(f"book {book.name}: {count} stuck; {action}")
            logger.error("[RECOVERY] book=%s %d stuck; %s", book.name, count, action)
        else:
            action = f"queued {ADVANCE_TASK}"
            lines.append(f"book {book.name}: {count} stuck; {action} once (task {result.id})")
            logger.warning("[RECOVERY] book=%s %d stuck; %s", book.name, count, action)
        actions.extend(
            {
                "signal": signal_id,
                "book": book.pk,
                "book_name": book.name,
                "state": state,
                "symbol": symbol,
                "age": human_duration((now - since).total_seconds()),
                "action": action,
            }
            for signal_id, state, symbol, since in rows[:MAX_RECORDED_PER_BOOK]
        )
    if not found and actor == BEAT_ACTOR:
        return None
    return RecoveryRun.objects.create(
        actor=actor[:100],
        stuck_found=found,
        actions=actions,
        detail="\n".join(lines) or "No stuck signal in any live book: nothing to do.",
    )


@shared_task(name="analytics.recover_stuck_signals", time_limit=60, soft_time_limit=50)
def recover_stuck_signals(actor: str = BEAT_ACTOR) -> dict[str, Any]:
    """Re-queue the advance of every live book with stuck signals; record what was done."""
    run = recover(actor=actor)
    if run is None:
        return {"stuck_found": 0, "run": None}
    books = sorted({action["book"] for action in run.actions})
    return {"stuck_found": run.stuck_found, "run": run.pk, "books": books}
