"""Periodic read-side work. Thin: the numbers come from ``analytics.selectors``, the
threshold recommendations from ``analytics.learning``."""

import logging
from typing import Any

from celery import shared_task
from django.utils import timezone

from analytics.learning import thresholds_recommend
from analytics.selectors import live_books, pipeline_health
from work.task_base import WorkTask

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


@shared_task(name="analytics.recommend_thresholds", base=WorkTask)
def recommend_thresholds() -> dict[str, int]:
    """Recommend thresholds for every live book (a daily beat entry); changes no
    configuration. Returns how many recommendations each action produced."""
    counts: dict[str, int] = {}
    for book in live_books():
        for outcome in thresholds_recommend(book=book):
            counts[outcome.action] = counts.get(outcome.action, 0) + 1
            logger.info(
                "[LEARNING] %s %s: %s: %s", book.name, outcome.guard, outcome.action, outcome.detail
            )
    return counts
