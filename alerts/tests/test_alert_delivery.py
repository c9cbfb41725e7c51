"""Alert delivery against loopback webhooks that trickle, hang, refuse and answer 500:
each attempt ends within its wall-clock deadline, a failed delivery is retried with a
doubling backoff until the channel takes it, a storm met while the channel is down is
one message with its count, and (fault suite, real workers) the pipeline's tasks never
wait on a webhook."""

import os
import re
import time
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from alerts.models import Alert, AlertChannel, AlertDelivery
from alerts.services import (
    alert_deliveries_due,
    alert_delivery_send,
    raise_alert,
    retry_delay,
)
from alerts.tests.webhooks import Webhook

DEADLINE = 2.0


@pytest.fixture
def webhook():
    server = Webhook(trickle_every=0.3)
    yield server
    server.close()


@pytest.fixture
def fast(settings):
    settings.ALERT_DELIVERY_DEADLINE_SECONDS = DEADLINE
    # Long enough that "not due yet" holds between two steps of a loaded machine; the
    # tests move a delivery's next attempt to now instead of waiting it out.
    settings.ALERT_RETRY_BASE_SECONDS = 30
    settings.ALERT_RETRY_MAX_SECONDS = 60


def _attempt(delivery: AlertDelivery) -> float:
    started = time.monotonic()
    alert_delivery_send(delivery_id=delivery.pk)
    return time.monotonic() - started


def _send_due() -> None:
    for delivery_id in alert_deliveries_due(now=timezone.now()):
        alert_delivery_send(delivery_id=delivery_id)


FAULTS = {
    # mode: (what the recorded error says, the least and the most the attempt's connection
    # may last, measured by the server; the answer the trickle would send in full takes
    # 59 x 0.3 = 18 s). The server notices a cut within its 0.3 s trickle or 0.2 s poll,
    # and a loaded machine adds its scheduling.
    "trickle": (r"deadline", DEADLINE - 0.1, DEADLINE + 1.0),
    "hang": (r"deadline|timed out", DEADLINE - 0.1, DEADLINE + 1.0),
    "refuse": (r"could not be reached \(ConnectionRefusedError", None, None),
    "500": (r"answered HTTP 500", 0.0, 1.0),
}


@pytest.mark.reliability(
    fault="an alert webhook that trickles, hangs, refuses or answers 500 (one run each)",
    expected="each attempt ends within its wall-clock deadline; retried with backoff until delivered, once",
)
@pytest.mark.django_db
@pytest.mark.parametrize("mode", list(FAULTS))
def test_each_fault_ends_within_the_deadline_and_is_retried_until_delivered(
    webhook, fast, mode, reliability
):
    webhook.mode = mode
    AlertChannel.objects.create(name="ops", kind="webhook", url=webhook.url)
    alert = raise_alert("test", "k", title="Disk on fire", message="m", severity="critical")
    delivery = AlertDelivery.objects.get(alert=alert)
    assert delivery.state == "pending" and delivery.attempts == 0

    pattern, least, most = FAULTS[mode]
    for attempt in (1, 2):
        elapsed = _attempt(delivery)
        # The whole attempt, database writes included, on a machine however loaded:
        # far below the 18 s a trickled answer takes.
        assert elapsed < 4 * DEADLINE, f"attempt {attempt} took {elapsed:.2f} s"
        if least is None:
            time.sleep(0.4)  # anything that did connect would be seen by now
            assert webhook.held == [], "nothing listened"
        else:
            # The server notices the cut within its 0.3 s trickle or 0.2 s poll; on a
            # loaded machine (four test processes on two cores) its thread may run later.
            noticed = time.monotonic() + 15
            while len(webhook.held) < attempt and time.monotonic() < noticed:
                time.sleep(0.05)
            assert len(webhook.held) == attempt
            assert least <= webhook.held[-1] <= most, webhook.held
        delivery.refresh_from_db()
        assert delivery.state == "pending" and delivery.attempts == attempt
        assert re.search(pattern, delivery.last_error), delivery.last_error
        assert "secret-token-123" not in delivery.last_error
        # Not due again before its backoff (30 s, then 60 s): a second worker (or the
        # sweep) cannot send it.
        wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
        assert 30 * attempt - 10 < wait <= 30 * attempt, wait
        assert alert_delivery_send(delivery_id=delivery.pk).startswith("not due")
        AlertDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert webhook.bodies == []

    webhook.mode = "ok"
    _send_due()
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("sent", 3)
    assert [body["title"] for body in webhook.bodies] == ["Disk on fire"]
    alert.refresh_from_db()
    assert alert.deliveries == [
        {"channel": "ops", "ok": True, "state": "sent", "attempts": 3, "detail": "sent"}
    ]
    _send_due()
    assert len(webhook.bodies) == 1, "sent once"
    reliability.observed(
        "each attempt ended within its deadline; delivered once after the webhook recovered",
        lost=0,
        duplicated=0,
    )


@pytest.mark.reliability(
    fault="an alert storm while the webhook is down",
    expected="one message carrying the repeat count once the webhook is back; nothing dropped by the rate limit",
)
@pytest.mark.django_db
def test_a_storm_while_the_webhook_is_down_is_one_message_with_its_count(
    webhook, fast, settings, reliability
):
    settings.ALERT_RETRY_BASE_SECONDS = 0.5
    settings.ALERT_RETRY_MAX_SECONDS = 1.0
    webhook.mode = "500"
    AlertChannel.objects.create(name="ops", kind="webhook", url=webhook.url)
    for _ in range(3):
        raise_alert("exchange_errors", "kraken", title="Kraken down", message="timeouts")
        _send_due()
        time.sleep(0.6)
    for _ in range(47):
        raise_alert("exchange_errors", "kraken", title="Kraken down", message="timeouts")
    webhook.mode = "ok"
    time.sleep(1.1)
    _send_due()
    assert len(webhook.bodies) == 1, "one message for the storm"
    body = webhook.bodies[0]
    assert body["repeats"] == 49
    assert "Repeated 49 more time(s)" in body["message"]
    assert Alert.objects.count() == 1
    reliability.observed(
        "one message with its count delivered after recovery", lost=0, duplicated=0
    )


def test_the_backoff_doubles_up_to_its_cap(settings):
    settings.ALERT_RETRY_BASE_SECONDS = 15
    settings.ALERT_RETRY_MAX_SECONDS = 600
    assert [retry_delay(n).total_seconds() for n in range(1, 8)] == [
        15,
        30,
        60,
        120,
        240,
        480,
        600,
    ]


@pytest.mark.django_db
def test_a_delivery_is_given_up_only_after_its_give_up_time(webhook, fast, settings):
    webhook.mode = "refuse"
    AlertChannel.objects.create(name="ops", kind="webhook", url=webhook.url)
    alert = raise_alert("test", "k", title="t", message="m")
    delivery = AlertDelivery.objects.get(alert=alert)
    _attempt(delivery)
    delivery.refresh_from_db()
    assert delivery.state == "pending"
    settings.ALERT_DELIVERY_GIVE_UP_HOURS = 1
    AlertDelivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(hours=2), next_attempt_at=timezone.now()
    )
    _attempt(delivery)
    delivery.refresh_from_db()
    assert delivery.state == "failed"
    assert alert_deliveries_due(now=timezone.now() + timedelta(days=1)) == []


@pytest.mark.django_db
def test_a_channel_disabled_before_its_delivery_is_not_sent_to(webhook, fast):
    channel = AlertChannel.objects.create(name="ops", kind="webhook", url=webhook.url)
    alert = raise_alert("test", "k", title="t", message="m")
    channel.enabled = False
    channel.save()
    _send_due()
    assert webhook.requests == 0
    assert AlertDelivery.objects.get(alert=alert).state == "failed"


# --- End to end: real workers, the pipeline's queues apart from the alerts queue -------

PIPELINE_QUEUES = "default,market_data,signals,shadow,analytics"


@pytest.mark.reliability(
    fault="a webhook trickling its answer while real workers run the pipeline",
    expected="the pipeline's tasks never wait on it; every alert delivered once when it recovers",
)
@pytest.mark.fault
@pytest.mark.django_db(transaction=True)
def test_a_trickling_webhook_never_holds_the_pipeline_and_every_alert_arrives(
    webhook, settings, tmp_path, reliability
):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from config.celery import app
    from config.tests.test_faults import Process, _database_url

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    webhook.mode = "trickle"  # the whole 200 answer would take 18 s
    AlertChannel.objects.create(name="ops", kind="webhook", url=webhook.url)
    every = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    for n in range(4):
        PeriodicTask.objects.create(
            name=f"late-{n}", task="config.noop", interval=every, last_run_at=an_hour_ago
        )

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "ALERT_DELIVERY_DEADLINE_SECONDS": str(DEADLINE),
        "ALERT_RETRY_BASE_SECONDS": "1",
        "ALERT_RETRY_MAX_SECONDS": "2",
    }
    common = ["-P", "solo", "--without-mingle", "--without-gossip", "-l", "info"]
    pipeline = Process(["worker", "-Q", PIPELINE_QUEUES, "-n", "pipeline@%h", *common],
                       tmp_path / "pipeline.log", env)  # fmt: skip
    alerts = Process(["worker", "-Q", "alerts", "-n", "alerts@%h", *common],
                     tmp_path / "alerts.log", env)  # fmt: skip
    try:
        pipeline.start().wait_for("ready")
        alerts.start().wait_for("ready")

        app.send_task("alerts.evaluate")
        pipeline.wait_for("Task alerts.evaluate[", timeout=60)
        pipeline.wait_for("succeeded in", timeout=60)
        assert Alert.objects.filter(kind="task_late").count() == 4
        (took,) = re.findall(r"alerts\.evaluate\[[^]]+\] succeeded in ([\d.]+)s", pipeline.text())
        assert float(took) < DEADLINE, f"the sweep took {took} s: it waited on the webhook"

        # While every delivery fails slowly, a pipeline task runs at once.
        started = time.monotonic()
        app.send_task("shadow.advance_live_books")
        pipeline.wait_for("shadow.advance_live_books[", timeout=30)
        pipeline.wait_for("succeeded in", count=2, timeout=30)
        assert time.monotonic() - started < 10

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            rows = list(AlertDelivery.objects.all())
            if len(rows) == 4 and all(row.attempts >= 2 for row in rows):
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"not every delivery was retried:\n{alerts.text()[-3000:]}")
        assert all(row.state == "pending" and "deadline" in row.last_error for row in rows)
        spans = [float(s) for s in re.findall(r"alerts\.deliver\[[^]]+\] succeeded in ([\d.]+)s",
                                              alerts.text())]  # fmt: skip
        # Each attempt's whole task (the cut send and its database writes), against the
        # 18 s the trickled answer would take; and each connection as the server saw it.
        assert spans and max(spans) < 4 * DEADLINE, spans
        held_by = time.monotonic() + DEADLINE + 3  # the 8th attempt may still be on the wire
        while len(webhook.held) < 8 and time.monotonic() < held_by:
            time.sleep(0.2)
        assert len(webhook.held) >= 8 and max(webhook.held) <= DEADLINE + 1.0, webhook.held
        assert webhook.bodies == []

        webhook.mode = "ok"
        deadline = time.monotonic() + 60
        while AlertDelivery.objects.filter(state="sent").count() < 4:
            assert time.monotonic() < deadline, alerts.text()[-3000:]
            time.sleep(0.3)
        time.sleep(3)  # any duplicate attempt in flight would land by now
        titles = sorted(body["title"] for body in webhook.bodies)
        assert titles == [f"Periodic task late-{n} is not running on time" for n in range(4)]
    finally:
        pipeline.stop()
        alerts.stop()
    reliability.observed(
        "the sweep raising the alerts stayed fast; every alert arrived once", lost=0, duplicated=0
    )


@pytest.mark.reliability(
    fault="an alert delivery whose message the broker lost",
    expected="the delivery sweep sends it again; delivered once",
)
@pytest.mark.fault
@pytest.mark.django_db(transaction=True)
def test_a_delivery_whose_message_was_lost_is_sent_by_the_sweep(
    webhook, settings, tmp_path, reliability
):
    from config.celery import app
    from config.tests.test_faults import Process, _database_url

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.flushdb()
    AlertChannel.objects.create(name="ops", kind="webhook", url=webhook.url)
    raise_alert("test", "k", title="Lost in Redis", message="m", severity="critical")
    assert broker.llen("alerts") == 1, "queued on its own queue at commit"
    broker.flushdb()  # Redis restarted empty: the message is gone, the row is not

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    worker = Process(["worker", "-P", "solo", "-Q", "alerts", "--without-mingle", "-l", "info"],
                     tmp_path / "alerts.log", env)  # fmt: skip
    try:
        worker.start().wait_for("ready")
        app.send_task("alerts.deliver_due")  # as beat sends it every minute
        worker.wait_for("'sent: HTTP 200'", timeout=60)
        assert [body["title"] for body in webhook.bodies] == ["Lost in Redis"]
        assert AlertDelivery.objects.get().state == "sent"
    finally:
        worker.stop()
    reliability.observed("sent by the sweep and delivered once", lost=0, duplicated=0)
