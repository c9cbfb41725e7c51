"""Alerts against a real HTTP server on loopback and Django's mail outbox: delivery,
the rate limit in a failure storm, failures recorded (never raised, never the token),
every watcher, and the admin listing."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from alerts.models import Alert, AlertChannel, WatchState
from alerts.services import alert_deliveries_due, alert_delivery_send, raise_alert
from alerts.streaks import record_failure, record_success
from alerts.watchers import (
    watch_guard_verdicts,
    watch_periodic_tasks,
    watch_reports,
    watch_stuck_signals,
    watch_trading_pauses,
)
from analytics.models import Report, TaskHeartbeat
from analytics.tests.factories import GuardDecisionFactory, decided_signal
from markets.errors import ExchangeUnavailableError
from signals.models import Book, BookGuard, GuardConfig, GuardDecision, SignalState
from signals.tests.factories import BookFactory, SignalFactory

pytestmark = pytest.mark.django_db


class Receiver:
    """A webhook on 127.0.0.1 that records every POST (and answers ``status``)."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook/secret-token-123"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send_due() -> None:
    """What the ``alerts.deliver`` tasks do, here in the test's process: one attempt at
    every due delivery."""
    for delivery_id in alert_deliveries_due(now=timezone.now()):
        alert_delivery_send(delivery_id=delivery_id)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def webhook(receiver):
    return AlertChannel.objects.create(name="ops-slack", kind="webhook", url=receiver.url)


def test_an_alert_is_posted_as_json_and_emailed(receiver, webhook):
    AlertChannel.objects.create(name="ops-mail", kind="email", recipients="a@example.org, b@x.io")
    alert = raise_alert("test", "k", title="Disk on fire", message="details", severity="critical")
    assert receiver.bodies == [] and mail.outbox == [], "raising sends nothing itself"
    send_due()

    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert body["title"] == "Disk on fire" and body["severity"] == "critical"
    assert body["text"].startswith("[CRITICAL] Disk on fire")  # Slack-style relays
    assert body["content"] == body["text"]  # Discord-style relays
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["a@example.org", "b@x.io"]
    assert "Disk on fire" in mail.outbox[0].subject
    alert.refresh_from_db()
    assert [(d["channel"], d["ok"]) for d in alert.deliveries] == [
        ("ops-mail", True),
        ("ops-slack", True),
    ]


def test_a_failure_storm_sends_one_alert_and_counts_the_rest(receiver, webhook, settings):
    settings.ALERT_MIN_INTERVAL_SECONDS = 900
    for _ in range(500):
        raise_alert("exchange_errors", "kraken", title="Kraken down", message="x")
    send_due()
    assert len(receiver.bodies) == 1
    assert "Repeated 499 more time(s)" in receiver.bodies[0]["message"]
    assert receiver.bodies[0]["repeats"] == 499
    assert Alert.objects.count() == 1
    assert Alert.objects.get().repeats == 499
    # Another subject is another alert; after the window the same subject alerts again.
    raise_alert("exchange_errors", "binance", title="Binance down", message="x")
    send_due()
    assert len(receiver.bodies) == 2
    Alert.objects.filter(key="kraken").update(created_at=timezone.now() - timedelta(hours=1))
    raise_alert("exchange_errors", "kraken", title="Kraken down", message="x")
    send_due()
    assert len(receiver.bodies) == 3


def test_a_failing_channel_is_recorded_not_raised_and_hides_its_url(receiver, webhook, caplog):
    receiver.status = 500
    AlertChannel.objects.create(name="dead", kind="webhook", url="http://127.0.0.1:9/x?token=abc")
    alert = raise_alert("test", "k", title="t", message="m")
    send_due()
    alert.refresh_from_db()
    results = {d["channel"]: d for d in alert.deliveries}
    assert results["ops-slack"] == {
        "channel": "ops-slack",
        "ok": False,
        "state": "pending",
        "attempts": 1,
        "detail": "RuntimeError: the webhook answered HTTP 500",
    }
    assert results["dead"]["ok"] is False
    everything = json.dumps(alert.deliveries) + caplog.text
    assert "secret-token-123" not in everything and "token=abc" not in everything


def test_channels_below_their_minimum_severity_are_skipped(receiver, webhook):
    webhook.min_severity = "critical"
    webhook.save()
    raise_alert("report_ready", "r1", title="Report", message="m", severity="info")
    send_due()
    assert receiver.bodies == []
    raise_alert("task_failing", "t", title="Failing", message="m", severity="critical")
    send_due()
    assert len(receiver.bodies) == 1


def test_stuck_signals_of_a_live_book_alert(receiver, webhook):
    live = BookFactory(name="live", kind=Book.Kind.LIVE)
    signal = SignalFactory(book=live, state=SignalState.GENERATED)
    SignalFactory(book=BookFactory(kind=Book.Kind.REPLAY), state=SignalState.GENERATED)
    later = timezone.now() + timedelta(hours=2)
    assert len(watch_stuck_signals(later)) == 1
    send_due()
    assert f"#{signal.pk} generated" in receiver.bodies[0]["message"]
    assert watch_stuck_signals(timezone.now() - timedelta(hours=1)) == []


def test_periodic_tasks_late_or_failing_alert(receiver, webhook):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    now = timezone.now()
    PeriodicTask.objects.create(
        name="sync-candles", task="x.sync", interval=every, last_run_at=now - timedelta(minutes=9)
    )
    PeriodicTask.objects.create(
        name="fresh", task="x.fresh", interval=every, last_run_at=now - timedelta(seconds=30)
    )
    TaskHeartbeat.objects.create(
        task="shadow.advance_live_books",
        last_success_at=now - timedelta(hours=1),
        last_failure_at=now,
        last_error="OperationalError: server closed the connection",
        failures=3,
    )
    TaskHeartbeat.objects.create(
        task="fine", last_success_at=now, last_failure_at=now - timedelta(1)
    )
    watch_periodic_tasks(now)
    send_due()
    titles = sorted(body["title"] for body in receiver.bodies)
    assert titles == [
        "Periodic task sync-candles is not running on time",
        "Task shadow.advance_live_books is failing",
    ]


def test_a_drawdown_guard_pausing_a_live_book_alerts_once(receiver, webhook):
    live = BookFactory(name="live", kind=Book.Kind.LIVE)
    config = GuardConfig.objects.create(name="dd", kind="max_drawdown", params={})
    frozen = BookGuard.objects.create(
        book=live, config=config, config_version=1, name="dd", kind="max_drawdown", params={}
    )
    assert watch_trading_pauses() == []  # the first run starts from now
    for _ in range(3):
        signal = SignalFactory(book=live, state=SignalState.BLOCKED)
        GuardDecisionFactory(
            signal=signal, guard="dd", book_guard=frozen, verdict=GuardDecision.Verdict.BLOCK
        )
    watch_trading_pauses()
    send_due()
    assert [body["title"] for body in receiver.bodies] == [
        "Guard dd is pausing trading in book live"
    ]
    watch_trading_pauses()
    send_due()
    assert len(receiver.bodies) == 1, "nothing new, nothing sent"


def test_a_verdict_flip_alerts(receiver, webhook):
    live = BookFactory(name="live", kind=Book.Kind.LIVE)
    for _ in range(6):
        decided_signal(live, blocked_by=["cooldown"], pnl="-10")  # blocks saved money
    assert watch_guard_verdicts() == []
    assert WatchState.objects.get(name=f"verdicts:{live.pk}").value == {"cooldown": "saves money"}
    for _ in range(30):
        decided_signal(live, blocked_by=["cooldown"], pnl="25")  # now they cost money
    watch_guard_verdicts()
    send_due()
    assert [body["title"] for body in receiver.bodies] == [
        "Guard cooldown now costs money (was: saves money)"
    ]


def test_a_new_report_alerts_with_its_link(receiver, webhook):
    book = BookFactory(name="live", kind=Book.Kind.LIVE)
    report = Report.objects.create(book=book, period="1d", created_by="daily task")
    watch_reports()
    watch_reports()
    send_due()
    assert len(receiver.bodies) == 1
    assert f"/reports/{report.pk}.html" in receiver.bodies[0]["message"]


def test_repeated_exchange_errors_alert_after_the_streak(receiver, webhook, settings):
    settings.ALERT_EXCHANGE_ERROR_STREAK = 3
    error = ExchangeUnavailableError("kraken timed out after 5 attempts")
    assert record_failure("markets.sync_candles", "kraken", error) == 1
    record_success("markets.sync_candles", "kraken")  # a success ends the streak
    for _ in range(2):
        record_failure("markets.sync_candles", "kraken", error)
    send_due()
    assert receiver.bodies == []
    record_failure("markets.sync_candles", "kraken", error)
    send_due()
    assert len(receiver.bodies) == 1
    assert "failed 3 times in a row" in receiver.bodies[0]["message"]


def test_the_admin_lists_alerts(client, django_user_model, webhook):
    admin = django_user_model.objects.create_superuser("ops", "o@example.org", "x-Pass-1234")
    client.force_login(admin)
    raise_alert("test", "k", title="Listed alert", message="m", severity="warning")
    send_due()
    page = client.get(reverse("admin:alerts_alert_changelist"))
    assert page.status_code == 200
    assert b"Listed alert" in page.content and b"ops-slack" in page.content
    assert client.get(reverse("admin:alerts_alertchannel_changelist")).status_code == 200
    deliveries = client.get(reverse("admin:alerts_alertdelivery_changelist"))
    assert deliveries.status_code == 200 and b"sent" in deliveries.content
