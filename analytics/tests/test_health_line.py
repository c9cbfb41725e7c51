"""The health line of the summary and of the health page says what each ``/healthz``
check saw, and never "fine" about what no check saw: with no celery beat run (none runs
under ``make run``) the scheduler reads "no run seen yet", not fine."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics.tests.test_number_text import visible_text

pytestmark = pytest.mark.django_db


def lines(client, book):
    """The summary's health line and the health page's, as a reader sees them."""
    summary = client.get(reverse("analytics:summary"), {"book": book.pk}).content.decode()
    health = client.get(reverse("analytics:health"), {"book": book.pk}).content.decode()
    first = summary.split('id="health"', 1)[1].split("</p>", 1)[0]
    second = health.split('id="system-health"', 1)[1].split("</p>", 1)[0]
    return visible_text(">" + first.split(">", 1)[1]), visible_text(">" + second.split(">", 1)[1])


def twin_health(client, book):
    return client.get(reverse("analytics:api-page", args=["summary"]), {"book": book.pk}).json()[
        "data"
    ]["health"]


def test_an_unseen_scheduler_is_never_called_fine(trader_client, replayed_book):
    gate = trader_client.get("/healthz").json()
    assert gate["checks"]["beat"]["status"] == "unknown"
    for line in lines(trader_client, replayed_book):
        assert "scheduler: no run seen yet" in line
        assert "fine" not in line
        assert "database reachable" in line and "broker reachable" in line
    parts = {part["check"]: part for part in twin_health(trader_client, replayed_book)["parts"]}
    assert parts["beat"] == {
        "check": "beat",
        "status": "unknown",
        "words": "scheduler: no run seen yet",
    }


def test_the_line_follows_each_check(trader_client, replayed_book, settings):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    task = PeriodicTask.objects.create(
        name="recent", task="x", interval=every, last_run_at=timezone.now()
    )
    for line in lines(trader_client, replayed_book):
        assert "scheduler running" in line and "no run seen" not in line

    task.last_run_at = timezone.now() - timedelta(days=2)
    task.save()
    for line in lines(trader_client, replayed_book):
        assert "scheduler (celery beat) late" in line and "scheduler running" not in line
    assert twin_health(trader_client, replayed_book)["status"] == "degraded"

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    for line in lines(trader_client, replayed_book):
        assert "broker cannot be reached" in line and "broker reachable" not in line
    assert twin_health(trader_client, replayed_book)["status"] == "down"
