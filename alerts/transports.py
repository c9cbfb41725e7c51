"""How an alert reaches a channel, each kind within a wall-clock deadline.

A socket timeout bounds one read, not a delivery: a server that trickles one byte every
few seconds never trips it and can hold a worker for as long as it likes. So every send
runs under ``cut_at``: a timer that, at the deadline, shuts the connection's socket down
under the blocked read, which then fails at once. ``TRANSPORTS`` maps a channel kind to
its sender; each returns a short detail (``HTTP 200``) or raises.
"""

import http.client
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit

from django.core.mail import get_connection, send_mail

from alerts.models import Alert, AlertChannel


class DeliveryDeadlineError(Exception):
    """The channel did not take the alert within the delivery's deadline."""


@contextmanager
def cut_at(seconds: float, current_socket: Callable[[], Any]) -> Iterator[Callable[[], bool]]:
    """Shut down ``current_socket()`` after ``seconds``; yields ``expired()``."""
    expired = threading.Event()

    def cut() -> None:
        # Set first: a socket opened right after this read of it is caught by the
        # caller's expired() check instead.
        expired.set()
        sock = current_socket()
        if sock is not None:
            with suppress(OSError):
                # The plain socket's shutdown, also under TLS: it only touches the file
                # descriptor, which makes the other thread's read return at once.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        yield expired.is_set
    finally:
        timer.cancel()


def text(alert: Alert) -> str:
    """The alert's message with the storm it stands for: how often it repeated."""
    message = alert.message
    if alert.repeats:
        message += (
            f"\n(Repeated {alert.repeats} more time(s) since {alert.created_at:%Y-%m-%d %H:%M}"
            f" UTC, last at {alert.last_seen_at:%H:%M:%S} UTC.)"
        )
    return message


def payload(alert: Alert) -> dict[str, Any]:
    """The webhook body: ``text`` for Slack-style relays, ``content`` for Discord-style
    ones, and the fields for anything else."""
    message = text(alert)
    line = f"[{alert.severity.upper()}] {alert.title}\n{message}"
    return {
        "text": line,
        "content": line[:2000],
        "kind": alert.kind,
        "key": alert.key,
        "severity": alert.severity,
        "title": alert.title,
        "message": message,
        "repeats": alert.repeats,
        "created_at": alert.created_at.isoformat(),
    }


def send_webhook(channel: AlertChannel, alert: Alert, *, deadline: float) -> str:
    """POST the payload; a 2xx answer within ``deadline`` seconds is a delivery."""
    parts = urlsplit(channel.url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("the webhook URL is not an http(s) URL")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname, parts.port, timeout=deadline)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body = json.dumps(payload(alert)).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "signal-pipeline-alerts"}
    try:
        with cut_at(deadline, lambda: conn.sock) as expired:
            try:
                conn.connect()
                if expired():
                    raise OSError("cut at the deadline")
                conn.request("POST", path, body=body, headers=headers)
                status = conn.getresponse().status
            except (OSError, http.client.HTTPException) as exc:
                if expired():
                    raise DeliveryDeadlineError(
                        f"the webhook took longer than the {deadline:g} s deadline"
                    ) from None
                raise RuntimeError(
                    f"the webhook could not be reached ({type(exc).__name__}: {exc})"
                ) from None
    finally:
        conn.close()
    if not 200 <= status < 300:
        raise RuntimeError(f"the webhook answered HTTP {status}")
    return f"HTTP {status}"


def send_email(channel: AlertChannel, alert: Alert, *, deadline: float) -> str:
    """Mail the alert through Django's mail settings within ``deadline`` seconds."""
    recipients = channel.recipient_list()
    if not recipients:
        raise ValueError("the email channel has no recipients")
    connection = get_connection(timeout=deadline)

    def smtp_socket() -> Any:
        return getattr(getattr(connection, "connection", None), "sock", None)

    with cut_at(deadline, smtp_socket) as expired:
        try:
            sent = send_mail(
                subject=f"[signal pipeline] {alert.title}",
                message=f"{text(alert)}\n\nSeverity: {alert.severity}\n"
                f"Kind: {alert.kind} ({alert.key})",
                from_email=None,
                recipient_list=recipients,
                connection=connection,
            )
        except Exception:
            if expired():
                raise DeliveryDeadlineError(
                    f"the mail server took longer than the {deadline:g} s deadline"
                ) from None
            raise
    return f"{sent} email sent to {len(recipients)} recipient(s)"


TRANSPORTS: dict[str, Callable[..., str]] = {
    AlertChannel.Kind.WEBHOOK: send_webhook,
    AlertChannel.Kind.EMAIL: send_email,
}
