"""Celery tasks of the shadow engine."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from shadow.services import shadow_trades_evaluate, shadow_trades_sweep
from signals.services import book_live


@shared_task(name="shadow.evaluate_shadow_outcomes")
def evaluate_shadow_outcomes() -> dict[str, int]:
    """Open shadow trades for newly decided live signals and record finished outcomes."""
    book = book_live()
    created = shadow_trades_sweep(book=book)
    progress = shadow_trades_evaluate(book=book, until=timezone.now())
    return {"created": created, "evaluated": progress.evaluated, "closed": progress.closed}
