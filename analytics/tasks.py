"""Periodic read-side checks. Thin: the numbers come from ``analytics.selectors``."""

import logging
from typing import Any

from celery import shared_task
from django.utils import timezone

from analytics.selectors import live_books, pipeline_health

logger = logging.getLogger(__name__)


@shared_task(name="analytics.monitor_pipeline")
def monitor_pipeline() -> dict[str, Any]:
    """Log counts per state and stuck signals of every live book; return them per book name."""
    now = timezone.now()
    books: dict[str, Any] = {}
    for book in live_books():
        health = pipeline_health(book=book, now=now)
        counts = " ".join(f"{state}={count}" for state, count in health.state_counts.items())
        logger.info("[PIPELINE] book=%s %s stuck=%d", book.name, counts, health.stuck_count)
        if health.stuck_count:
            logger.warning(
                "[PIPELINE] book=%s %d stuck signal(s): %s",
                book.name,
                health.stuck_count,
                ", ".join(
                    f"#{stuck.id} {stuck.state} {stuck.symbol} {stuck.timeframe} "
                    f"for {int(stuck.age.total_seconds() // 60)} min"
                    for stuck in health.stuck
                ),
            )
        books[book.name] = {
            "book_id": book.pk,
            "state_counts": health.state_counts,
            "stuck_count": health.stuck_count,
            "stuck_ids": [stuck.id for stuck in health.stuck],
        }
    if not books:
        logger.info("[PIPELINE] no live book yet")
    return {"checked_at": now.isoformat(), "books": books}
