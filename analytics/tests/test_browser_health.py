"""The Pipeline health page in a real Chromium: no console error, the throughput chart
drawn, no sideways scrolling at 1,280 and 390 px, the recovery button for staff."""

from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_health_page_draws_its_chart_and_fits_both_widths(browser_session):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from analytics.models import RecoveryRun, TaskHeartbeat
    from analytics.tests.factories import BookFactory, SignalFactory, SignalTransitionFactory
    from signals.models import Book, SignalState

    live = BookFactory(name="live", kind=Book.Kind.LIVE)
    now = timezone.now()
    for seconds in (4, 9, 40):  # decided seconds after their candle closed
        candle = now - timedelta(hours=1, seconds=seconds)
        signal = SignalFactory(
            book=live, state=SignalState.BLOCKED, candle_time=candle, decided_at=candle
        )
        SignalTransitionFactory(signal=signal, from_state="generated")
    SignalFactory(
        book=live,
        state=SignalState.APPROVED,
        candle_time=now - timedelta(hours=6),
        decided_at=now - timedelta(hours=5),
        symbol="ETH/USD",
    )
    minute = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="advance-live-books", task="shadow.advance_live_books", interval=minute
    )
    TaskHeartbeat.objects.create(
        task="shadow.advance_live_books",
        last_success_at=timezone.now() - timedelta(minutes=9),
        last_failure_at=timezone.now() - timedelta(minutes=1),
        last_error="OperationalError: connection to server at 127.0.0.1 failed: timeout expired",
        runs=50,
        failures=7,
    )
    RecoveryRun.objects.create(
        actor="beat",
        stuck_found=1,
        detail="book live: 1 stuck; queued shadow.advance_book once (task 3f1c)",
    )

    page = browser_session.open(f"/health/?book={live.pk}")
    assert browser_session.charts_drawn() == 1
    body = browser_session.body()
    assert "Stuck signals" in body and "ETH/USD" in body
    assert "late" in body
    assert page.locator("button", has_text="Run recovery now").count() == 1
    browser_session.check_layout("health")

    page.locator("button", has_text="Run recovery now").click()
    page.wait_for_load_state("load")
    assert "Recovery found 1 stuck signal(s) in 1 live book(s)" in browser_session.body()
    assert RecoveryRun.objects.count() == 2
