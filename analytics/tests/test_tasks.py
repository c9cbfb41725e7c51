"""analytics.monitor_pipeline: counts per state and stuck signals of the live books."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from analytics.tasks import monitor_pipeline
from analytics.tests.factories import BookFactory, SignalFactory
from signals.models import Book, SignalState

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def signal_created_at(moment, **kwargs):
    with time_machine.travel(moment, tick=False):
        return SignalFactory(**kwargs)


@pytest.fixture
def live():
    return BookFactory(name="live", kind=Book.Kind.LIVE)


def test_it_flags_signals_past_their_state_deadline(live, caplog):
    generated_late = signal_created_at(NOW - timedelta(minutes=11), book=live)
    signal_created_at(NOW - timedelta(minutes=9), book=live)
    approved_late = signal_created_at(
        NOW - timedelta(hours=3),
        book=live,
        state=SignalState.APPROVED,
        decided_at=NOW - timedelta(hours=2, minutes=1),
    )
    signal_created_at(
        NOW - timedelta(hours=3),
        book=live,
        state=SignalState.APPROVED,
        decided_at=NOW - timedelta(hours=1),
    )
    # Terminal states are never stuck, however old.
    signal_created_at(NOW - timedelta(days=3), book=live, state=SignalState.BLOCKED)
    # Replays are not monitored.
    signal_created_at(NOW - timedelta(days=3), book=BookFactory())

    with time_machine.travel(NOW, tick=False), caplog.at_level(logging.INFO):
        summary = monitor_pipeline()

    live_summary = summary["books"]["live"]
    assert list(summary["books"]) == ["live"]
    assert live_summary["state_counts"][SignalState.GENERATED] == 2
    assert live_summary["state_counts"][SignalState.APPROVED] == 2
    assert live_summary["state_counts"][SignalState.BLOCKED] == 1
    assert live_summary["stuck_count"] == 2
    assert live_summary["stuck_ids"] == [approved_late.pk, generated_late.pk]

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "[PIPELINE]" in warnings[0].getMessage()
    assert f"#{generated_late.pk} generated" in warnings[0].getMessage()
    assert any(
        "[PIPELINE] book=live generated=2 approved=2" in r.getMessage() for r in caplog.records
    )


def test_approved_deadline_scales_with_the_timeframe(live):
    signal_created_at(
        NOW - timedelta(hours=10),
        book=live,
        state=SignalState.APPROVED,
        decided_at=NOW - timedelta(hours=5),
        strategy_config__timeframe="4h",
    )
    daily_late = signal_created_at(
        NOW - timedelta(days=3),
        book=live,
        state=SignalState.APPROVED,
        decided_at=NOW - timedelta(days=2, minutes=1),
        strategy_config__timeframe="1d",
    )

    with time_machine.travel(NOW, tick=False):
        summary = monitor_pipeline()

    assert summary["books"]["live"]["stuck_ids"] == [daily_late.pk]


def test_a_healthy_book_logs_no_warning(live, caplog):
    signal_created_at(NOW - timedelta(minutes=1), book=live)

    with time_machine.travel(NOW, tick=False), caplog.at_level(logging.INFO):
        summary = monitor_pipeline()

    assert summary["books"]["live"]["stuck_count"] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_without_a_live_book_it_reports_nothing():
    BookFactory()

    assert monitor_pipeline()["books"] == {}


def test_it_is_registered_under_the_beat_schedule_name():
    assert monitor_pipeline.name == "analytics.monitor_pipeline"
