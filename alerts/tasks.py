"""The periodic alert sweep, and alert delivery on a queue of its own (``alerts``), so
no pipeline task ever waits on a webhook."""

from celery import shared_task
from django.utils import timezone

from alerts.services import alert_deliveries_due, alert_delivery_send, enqueue
from alerts.watchers import evaluate


@shared_task(name="alerts.evaluate", time_limit=120, soft_time_limit=100)
def evaluate_alerts() -> dict[str, int]:
    """Run every watcher once (beat: every minute). Queues deliveries, sends none."""
    return evaluate(timezone.now())


# One attempt is bounded by its own wall-clock deadline (ALERT_DELIVERY_DEADLINE_SECONDS);
# the time limits only back that up.
@shared_task(name="alerts.deliver", time_limit=120, soft_time_limit=100)
def deliver_alert(delivery_id: int) -> str:
    """One attempt at one alert delivery (``alert_delivery_send``)."""
    return alert_delivery_send(delivery_id=delivery_id)


@shared_task(name="alerts.deliver_due", time_limit=60, soft_time_limit=50)
def deliver_due_alerts() -> int:
    """Queue every due delivery (beat: every minute): the ones whose message was lost."""
    due = alert_deliveries_due(now=timezone.now())
    enqueue(due)
    return len(due)
