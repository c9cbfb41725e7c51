"""The delivery count of every task (config.task_base): free on a first delivery, counted
from the first redelivery on, and never in the way of work."""

import pytest
from django.db import OperationalError

from config.celery import noop
from config.task_base import PipelineTask

pytestmark = pytest.mark.django_db


def _deliver(task, task_id: str, retries: int = 0, redelivered: bool = False):
    task.push_request(
        id=task_id,
        retries=retries,
        is_eager=False,
        called_directly=False,
        delivery_info={"redelivered": redelivered},
    )
    try:
        result = task()
        task.after_return("SUCCESS", result, task_id, (), {}, None)
        return result
    finally:
        task.pop_request()


def test_a_first_delivery_touches_no_database(django_assert_num_queries):
    from alerts.models import TaskDelivery

    with django_assert_num_queries(0):
        assert _deliver(noop._get_current_object(), "t-first") is None
    assert not TaskDelivery.objects.exists()


def test_a_redelivered_message_is_counted_from_two_and_cleared_when_its_run_survives():
    from alerts.models import TaskDelivery

    task = noop._get_current_object()
    task.push_request(
        id="t-again",
        retries=0,
        is_eager=False,
        called_directly=False,
        delivery_info={"redelivered": True},
    )
    try:
        # The first delivery went uncounted: the first redelivery is the second.
        assert task._count_delivery((), {}) == 2
    finally:
        task.pop_request()
    assert TaskDelivery.objects.get().deliveries == 2
    # The third delivery runs (the limit is 3), survives, and its count is cleared.
    _deliver(task, "t-again", redelivered=True)
    assert not TaskDelivery.objects.exists()


def test_past_the_limit_a_redelivered_message_is_quarantined(settings):
    from celery.exceptions import Reject

    from alerts.models import Alert, TaskDelivery

    settings.TASK_MAX_DELIVERIES = 3
    task = noop._get_current_object()
    TaskDelivery.objects.create(task_id="t-poison#0", task=task.name, deliveries=3)
    task.push_request(
        id="t-poison",
        retries=0,
        is_eager=False,
        called_directly=False,
        delivery_info={"redelivered": True},
    )
    try:
        with pytest.raises(Reject):
            task()
    finally:
        task.pop_request()
    row = TaskDelivery.objects.get()
    assert row.deliveries == 4 and row.quarantined_at is not None
    assert Alert.objects.filter(kind="task_quarantined", key=task.name).count() == 1


def test_a_delivery_that_cannot_be_counted_still_runs(monkeypatch):
    def database_down(self, args, kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(PipelineTask, "_count_delivery", database_down)
    # No error from the count: the task body runs (and meets the database error itself,
    # inside its own autoretry, when it needs the database).
    assert _deliver(noop._get_current_object(), "t-down", redelivered=True) is None


def test_a_retry_is_counted_apart_from_the_first_delivery():
    from alerts.models import TaskDelivery

    task = noop._get_current_object()
    for retries in (0, 1, 2, 3, 4):
        task.push_request(
            id="t-retry",
            retries=retries,
            is_eager=False,
            called_directly=False,
            delivery_info={"redelivered": True},
        )
        try:
            assert task._count_delivery((), {}) == 2
        finally:
            task.pop_request()
    assert TaskDelivery.objects.filter(task_id__startswith="t-retry#").count() == 5
