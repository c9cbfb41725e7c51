"""The periodic alert sweep."""

from celery import shared_task
from django.utils import timezone

from alerts.watchers import evaluate


@shared_task(name="alerts.evaluate", time_limit=120, soft_time_limit=100)
def evaluate_alerts() -> dict[str, int]:
    """Run every watcher once (beat: every minute)."""
    return evaluate(timezone.now())
