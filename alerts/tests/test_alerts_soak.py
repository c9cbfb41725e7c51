"""A healthy system raises no alert: real beat and worker processes for a few minutes of a
compressed schedule (tasks every 4 and 7 s and every minute by crontab, the alert sweep
every 5 s, beat writing last-run times every 3 s, a 10 s margin), a webhook listening for
anything. Then beat stops, and the same sweep must raise the late-task alert: the
watcher was live all along. ``ALERT_SOAK_SECONDS`` (default 180) lengthens the soak, e.g.
to an hour."""

import os
import re
import time
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from alerts.models import Alert, AlertChannel
from alerts.tests.webhooks import Webhook
from alerts.watchers import late_grace, next_run_after
from config.tests.test_faults import processes  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

SOAK_SECONDS = float(os.environ.get("ALERT_SOAK_SECONDS", "180"))
COMPRESSED = {"BEAT_SYNC_EVERY_SECONDS": "3", "ALERT_TASK_LATE_MARGIN_SECONDS": "10"}
PROBES = ("soak-every-4s", "soak-every-7s", "soak-cron-minutely")


@pytest.mark.reliability(
    fault="a healthy system under real beat and worker for a bounded soak, then beat stopped",
    expected="no alert while healthy; the late-task alert once beat stops",
)
@pytest.mark.timeout(SOAK_SECONDS + 300)
def test_no_alert_fires_on_a_healthy_system_and_a_stopped_beat_is_caught(
    processes,  # noqa: F811
    settings,
    reliability,
):
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    settings.BEAT_SYNC_EVERY_SECONDS = 3
    settings.ALERT_TASK_LATE_MARGIN_SECONDS = 10
    webhook = Webhook()
    AlertChannel.objects.create(name="ops", kind="webhook", url=webhook.url)
    for name, seconds in (("soak-every-4s", 4), ("soak-every-7s", 7)):
        every = IntervalSchedule.objects.create(every=seconds, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.create(name=name, task="config.noop", interval=every)
    minutely = CrontabSchedule.objects.create(minute="*", hour="*", timezone="UTC")
    PeriodicTask.objects.create(name="soak-cron-minutely", task="config.noop", crontab=minutely)
    sweep = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="soak-evaluate", task="alerts.evaluate", interval=sweep)

    worker = processes("worker", **COMPRESSED).start()
    worker.wait_for("ready")
    beat = processes("beat", **COMPRESSED).start()
    beat.wait_for("holds the single-beat lock")

    # Sample how far past its due time each probe's stored last run gets (the write lag
    # the grace must cover), while the sweep runs every 5 s.
    worst: dict[str, float] = {}
    end = time.monotonic() + SOAK_SECONDS
    try:
        while time.monotonic() < end:
            now = timezone.now()
            for task in PeriodicTask.objects.filter(name__in=PROBES).select_related(
                "interval", "crontab"
            ):
                if task.last_run_at is None:
                    continue
                due = next_run_after(task, task.last_run_at)
                assert due is not None
                overdue = (now - due).total_seconds()
                worst[task.name] = max(worst.get(task.name, overdue), overdue)
            time.sleep(1)
        sweeps = len(re.findall(r"alerts\.evaluate\[[^]]+\] succeeded", worker.text()))
        assert sweeps >= SOAK_SECONDS / 5 * 0.8, f"the sweep ran {sweeps} times"
        assert Alert.objects.count() == 0, list(Alert.objects.values_list("title", flat=True))
        assert webhook.bodies == []
        assert set(worst) == set(PROBES), "every probe ran"
        report = ", ".join(
            f"{name} {worst[name]:+.1f} s (grace "
            f"{late_grace(PeriodicTask.objects.get(name=name)).total_seconds():.0f} s)"
            for name in PROBES
        )
        print(f"\n[SOAK] {SOAK_SECONDS:.0f} s, {sweeps} sweeps, 0 alerts; worst overdue: {report}")

        # Control: beat stops; the 4 s probe is late within its grace plus two sweeps.
        beat.stop()
        stopped = timezone.now()
        deadline = time.monotonic() + 60
        while not Alert.objects.filter(kind="task_late", key="soak-every-4s").exists():
            assert time.monotonic() < deadline, worker.text()[-3000:]
            time.sleep(0.5)
            # Nothing sends the sweep without beat: send it as beat would.
            if int(time.monotonic()) % 5 == 0:
                from config.celery import app

                app.send_task("alerts.evaluate")
                time.sleep(1)
        took = (timezone.now() - stopped).total_seconds()
        print(f"[SOAK] beat stopped: the late alert came {took:.0f} s later")
        grace = late_grace(PeriodicTask.objects.get(name="soak-every-4s"))
        assert took <= (grace + timedelta(seconds=4 + 12)).total_seconds()
        deadline = time.monotonic() + 30
        while not any("soak-every-4s" in body["title"] for body in webhook.bodies):
            assert time.monotonic() < deadline, "the late alert was delivered"
            time.sleep(0.3)
    finally:
        webhook.close()
    reliability.observed(
        "no alert while healthy; the late-task alert after beat stopped", lost=0, duplicated=0
    )
