"""Raising an alert: record it, rate-limit it, queue its delivery to every channel.

``raise_alert(kind, key, ...)``: if an alert of the same kind and key was raised within
``ALERT_MIN_INTERVAL_SECONDS`` (default 900), the new occurrence only bumps that alert's
``repeats`` and ``last_seen_at``: no second message. Otherwise a new ``Alert`` row is
made with one ``AlertDelivery`` row per channel that takes its severity, and each is
handed to the ``alerts.deliver`` task on the ``alerts`` queue once the transaction
commits. Raising never touches the network beyond that hand-over, so the pipeline's
tasks never wait on a webhook.

A delivery is sent by its own task within ``ALERT_DELIVERY_DEADLINE_SECONDS`` of wall
clock (``alerts.transports``), retried with a doubling backoff (from
``ALERT_RETRY_BASE_SECONDS`` up to ``ALERT_RETRY_MAX_SECONDS``) until the channel takes
it, and carries the alert's repeat count at the moment it is sent: a storm, even one met
while the channel is down, is one message with its count, never dropped by the rate
limit. The ``alerts.deliver_due`` sweep (beat, every minute) re-sends any due delivery
whose message was lost (Redis restarted, a worker killed mid-send).
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from alerts.models import Alert, AlertChannel, AlertDelivery
from alerts.transports import TRANSPORTS
from markets.redaction import redact

logger = logging.getLogger(__name__)

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
DELIVER_TASK = "alerts.deliver"


def min_interval() -> timedelta:
    return timedelta(seconds=getattr(settings, "ALERT_MIN_INTERVAL_SECONDS", 900))


def deadline_seconds() -> float:
    return float(getattr(settings, "ALERT_DELIVERY_DEADLINE_SECONDS", 10))


def retry_delay(attempts: int) -> timedelta:
    """The wait after ``attempts`` failed attempts: doubling from the base, capped."""
    base = float(getattr(settings, "ALERT_RETRY_BASE_SECONDS", 15))
    cap = float(getattr(settings, "ALERT_RETRY_MAX_SECONDS", 600))
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))


def channels_for(severity: str) -> list[AlertChannel]:
    """The enabled channels that take alerts of ``severity``."""
    rank = SEVERITY_RANK.get(severity, 0)
    return [
        channel
        for channel in AlertChannel.objects.filter(enabled=True).order_by("name")
        if SEVERITY_RANK.get(channel.min_severity, 0) <= rank
    ]


def raise_alert(
    kind: str, key: str, *, title: str, message: str, severity: str = "warning"
) -> Alert:
    """Record one alert and queue its deliveries (outside the rate-limit window; inside
    it, count a repeat). Returns the alert row: the new one, or the recent one whose
    repeat count went up. Sends nothing itself."""
    now = timezone.now()
    with transaction.atomic():
        recent = (
            Alert.objects.select_for_update()
            .filter(kind=kind, key=key, created_at__gte=now - min_interval())
            .order_by("-created_at")
            .first()
        )
        if recent is not None:
            Alert.objects.filter(pk=recent.pk).update(repeats=F("repeats") + 1, last_seen_at=now)
            recent.refresh_from_db()
            return recent
        alert = Alert.objects.create(
            kind=kind,
            key=key[:200],
            severity=severity,
            title=title[:200],
            message=message,
            last_seen_at=now,
        )
        rows = AlertDelivery.objects.bulk_create(
            [
                AlertDelivery(alert=alert, channel=channel, next_attempt_at=now)
                for channel in channels_for(severity)
            ]
        )
        ids = [row.pk for row in rows]
        transaction.on_commit(lambda: enqueue(ids))
    logger.warning("[ALERT] %s %s: %s", alert.severity, alert.kind, alert.title)
    return alert


def enqueue(delivery_ids: list[int], *, countdown: float = 0) -> None:
    """Hand deliveries to ``alerts.deliver``. Never raises and never retries the broker:
    a message that cannot be sent now is sent by the sweep."""
    for delivery_id in delivery_ids:
        try:
            current_app.send_task(
                DELIVER_TASK, args=[delivery_id], countdown=countdown or None, retry=False
            )
        except Exception as exc:
            logger.warning(
                "[ALERT] delivery %s not queued (%s); the sweep sends it",
                delivery_id,
                type(exc).__name__,
            )


def _failure_detail(channel: AlertChannel, exc: BaseException) -> str:
    # Never the URL (it may carry a token), only what went wrong.
    detail = redact(f"{type(exc).__name__}: {exc}")
    if channel.url:
        detail = detail.replace(channel.url, "<webhook url>")
    return detail


def send(channel: AlertChannel, alert: Alert) -> dict[str, Any]:
    """One attempt at ``alert`` to ``channel`` within the deadline: ``{channel, ok,
    detail}``. Never raises."""
    try:
        detail = TRANSPORTS[channel.kind](channel, alert, deadline=deadline_seconds())
        return {"channel": channel.name, "ok": True, "detail": detail}
    except Exception as exc:
        detail = _failure_detail(channel, exc)
        logger.error("[ALERT] channel %s failed: %s", channel.name, detail)
        return {"channel": channel.name, "ok": False, "detail": detail}


def deliver(alert: Alert) -> list[dict[str, Any]]:
    """Send ``alert`` to every channel that takes its severity, now, one attempt each
    (the admin's "send a test alert"): one result per channel."""
    return [send(channel, alert) for channel in channels_for(alert.severity)]


def alert_delivery_send(*, delivery_id: int) -> str:
    """One attempt at one delivery, if it is due and no other attempt holds it: claim it
    (a conditional update only one worker can win), send within the deadline, record
    the outcome, and on failure queue the next attempt after the backoff. Returns what
    happened."""
    now = timezone.now()
    # A lease longer than any attempt: a worker killed mid-send frees it for the sweep.
    lease = now + timedelta(seconds=deadline_seconds() + 60)
    claimed = (
        AlertDelivery.objects.filter(
            pk=delivery_id,
            state=AlertDelivery.State.PENDING,
            # A countdown message may fire a little before the row's time.
            next_attempt_at__lte=now + timedelta(seconds=0.25),
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=lease, attempts=F("attempts") + 1)
    )
    if not claimed:
        return "not due: sent, given up, waiting for its backoff or in flight elsewhere"
    delivery = AlertDelivery.objects.select_related("alert", "channel").get(pk=delivery_id)
    if not delivery.channel.enabled:
        AlertDelivery.objects.filter(pk=delivery_id).update(
            state=AlertDelivery.State.FAILED, lease_until=None, last_error="channel disabled"
        )
        _summarise(delivery.alert_id)
        return "given up: the channel was disabled"
    result = send(delivery.channel, delivery.alert)
    done = timezone.now()
    if result["ok"]:
        AlertDelivery.objects.filter(pk=delivery_id).update(
            state=AlertDelivery.State.SENT, sent_at=done, lease_until=None, last_error=""
        )
        outcome = f"sent: {result['detail']}"
    else:
        give_up_after = timedelta(
            hours=float(getattr(settings, "ALERT_DELIVERY_GIVE_UP_HOURS", 24))
        )
        delay = retry_delay(delivery.attempts)
        give_up = done + delay - delivery.created_at > give_up_after
        AlertDelivery.objects.filter(pk=delivery_id).update(
            state=AlertDelivery.State.FAILED if give_up else AlertDelivery.State.PENDING,
            next_attempt_at=done + delay,
            lease_until=None,
            last_error=result["detail"],
        )
        if give_up:
            logger.error(
                "[ALERT] gave up delivering alert %s to %s after %s attempts",
                delivery.alert_id,
                delivery.channel.name,
                delivery.attempts,
            )
            outcome = f"given up: {result['detail']}"
        else:
            enqueue([delivery_id], countdown=delay.total_seconds())
            outcome = f"failed, next attempt in {delay.total_seconds():g} s: {result['detail']}"
    _summarise(delivery.alert_id)
    return outcome


def _summarise(alert_id: int) -> None:
    """Copy the deliveries' state onto the alert (the admin's "sent to" column)."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert_id)
        alert.deliveries = [
            {
                "channel": row.channel.name,
                "ok": row.state == AlertDelivery.State.SENT,
                "state": row.state,
                "attempts": row.attempts,
                "detail": row.last_error if row.state != AlertDelivery.State.SENT else "sent",
            }
            for row in alert.delivery_rows.select_related("channel").order_by("channel__name")
        ]
        alert.save(update_fields=["deliveries"])


def alert_deliveries_due(*, now: datetime) -> list[int]:
    """Pending deliveries whose next attempt is due and that no attempt holds."""
    return list(
        AlertDelivery.objects.filter(state=AlertDelivery.State.PENDING, next_attempt_at__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:1000]
    )
