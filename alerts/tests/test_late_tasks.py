"""The late-task alert allows for beat's write lag: interval and crontab tasks, each at
the edges of its grace (beat writes last-run times every BEAT_SYNC_EVERY_SECONDS)."""

from datetime import UTC, datetime, timedelta

import pytest
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from alerts.models import Alert
from alerts.watchers import watch_periodic_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def lag(settings):
    settings.BEAT_SYNC_EVERY_SECONDS = 30
    settings.ALERT_TASK_LATE_MARGIN_SECONDS = 120


def _late_titles(now: datetime) -> list[str]:
    watch_periodic_tasks(now)
    return sorted(Alert.objects.filter(kind="task_late").values_list("key", flat=True))


def test_an_interval_task_is_late_only_past_its_write_lag_and_margin():
    every = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    last = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    PeriodicTask.objects.create(name="minutely", task="x.y", interval=every, last_run_at=last)
    # 200 s: the stored age that raised a false alert with beat's 180 s write interval.
    assert _late_titles(last + timedelta(seconds=200)) == []
    # Due at +60 s; late after 30 s of write lag and 120 s of margin: +210 s.
    assert _late_titles(last + timedelta(seconds=210)) == []
    assert _late_titles(last + timedelta(seconds=211)) == ["minutely"]


def test_a_long_interval_gets_one_whole_interval_of_margin():
    every = IntervalSchedule.objects.create(every=300, period=IntervalSchedule.SECONDS)
    last = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    PeriodicTask.objects.create(name="five-min", task="x.y", interval=every, last_run_at=last)
    assert _late_titles(last + timedelta(seconds=300 + 30 + 300)) == []
    assert _late_titles(last + timedelta(seconds=300 + 30 + 301)) == ["five-min"]


def test_a_crontab_task_is_watched_from_its_slot():
    daily = CrontabSchedule.objects.create(minute="5", hour="0", timezone="UTC")
    last = datetime(2026, 3, 1, 0, 5, 1, tzinfo=UTC)
    PeriodicTask.objects.create(name="daily-report", task="x.r", crontab=daily, last_run_at=last)
    slot = datetime(2026, 3, 2, 0, 5, tzinfo=UTC)
    assert _late_titles(slot - timedelta(minutes=1)) == [], "not due yet"
    assert _late_titles(slot + timedelta(seconds=150)) == [], "within the write lag and margin"
    assert _late_titles(slot + timedelta(seconds=151)) == ["daily-report"]
    message = Alert.objects.get(key="daily-report").message
    assert "on crontab 5 0 * * *" in message and "2026-03-02 00:05:00" in message


def test_one_off_and_never_run_tasks_are_not_watched():
    every = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    last = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    PeriodicTask.objects.create(
        name="once", task="x.y", interval=every, last_run_at=last, one_off=True
    )
    PeriodicTask.objects.create(name="new", task="x.y", interval=every, last_run_at=None)
    assert _late_titles(last + timedelta(days=1)) == []
