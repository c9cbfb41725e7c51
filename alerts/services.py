"""Raising an alert: record it, rate-limit it, deliver it to every enabled channel.

``raise_alert(kind, key, ...)``: if an alert of the same kind and key was raised within
``ALERT_MIN_INTERVAL_SECONDS`` (default 900), the new occurrence only bumps that alert's
``repeats`` and ``last_seen_at``: nothing is sent. Otherwise a new ``Alert`` row is made
and sent. Delivery never raises: each channel's outcome is recorded on the alert.
"""

import json
import logging
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from alerts.models import Alert, AlertChannel
from markets.redaction import redact

logger = logging.getLogger(__name__)

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
WEBHOOK_TIMEOUT_SECONDS = 5


def min_interval() -> timedelta:
    return timedelta(seconds=getattr(settings, "ALERT_MIN_INTERVAL_SECONDS", 900))


def raise_alert(
    kind: str, key: str, *, title: str, message: str, severity: str = "warning"
) -> Alert:
    """Record (and, outside the rate-limit window, send) one alert. Returns the alert row:
    the new one, or the recent one whose repeat count went up."""
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
    alert.deliveries = deliver(alert)
    alert.save(update_fields=["deliveries"])
    logger.warning("[ALERT] %s %s: %s", alert.severity, alert.kind, alert.title)
    return alert


def payload(alert: Alert) -> dict[str, Any]:
    """The webhook body: ``text`` for Slack-style relays, ``content`` for Discord-style
    ones, and the fields for anything else."""
    line = f"[{alert.severity.upper()}] {alert.title}\n{alert.message}"
    return {
        "text": line,
        "content": line[:2000],
        "kind": alert.kind,
        "key": alert.key,
        "severity": alert.severity,
        "title": alert.title,
        "message": alert.message,
        "created_at": alert.created_at.isoformat(),
    }


def deliver(alert: Alert) -> list[dict[str, Any]]:
    """Send ``alert`` to every enabled channel at or below its severity; one result each."""
    results = []
    rank = SEVERITY_RANK.get(alert.severity, 0)
    for channel in AlertChannel.objects.filter(enabled=True).order_by("name"):
        if SEVERITY_RANK.get(channel.min_severity, 0) > rank:
            continue
        try:
            detail = _send(channel, alert)
            results.append({"channel": channel.name, "ok": True, "detail": detail})
        except Exception as exc:
            # Never the URL (it may carry a token), only what went wrong.
            detail = redact(f"{type(exc).__name__}: {exc}")
            if channel.url:
                detail = detail.replace(channel.url, "<webhook url>")
            logger.error("[ALERT] channel %s failed: %s", channel.name, detail)
            results.append({"channel": channel.name, "ok": False, "detail": detail})
    return results


def _send(channel: AlertChannel, alert: Alert) -> str:
    if channel.kind == AlertChannel.Kind.WEBHOOK:
        body = json.dumps(payload(alert)).encode()
        request = urllib.request.Request(
            channel.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "signal-pipeline-alerts"},
        )
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
                return f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"the webhook answered HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            raise RuntimeError(f"the webhook could not be reached ({exc.reason})") from None
    recipients = channel.recipient_list()
    if not recipients:
        raise ValueError("the email channel has no recipients")
    sent = send_mail(
        subject=f"[signal pipeline] {alert.title}",
        message=f"{alert.message}\n\nSeverity: {alert.severity}\nKind: {alert.kind} ({alert.key})",
        from_email=None,
        recipient_list=recipients,
    )
    return f"{sent} email sent to {len(recipients)} recipient(s)"
