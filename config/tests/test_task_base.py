"""The delivery count of every task (config.task_base) never stands in the way of work."""

import pytest
from django.db import OperationalError

from config.celery import noop
from config.task_base import PipelineTask

pytestmark = pytest.mark.django_db


def _deliver(task, task_id: str, retries: int = 0):
    task.push_request(id=task_id, retries=retries, is_eager=False, called_directly=False)
    try:
        return task()
    finally:
        task.pop_request()


def test_a_delivery_that_cannot_be_counted_still_runs(monkeypatch):
    def database_down(self, args, kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(PipelineTask, "_count_delivery", database_down)
    # No error from the count: the task body runs (and meets the database error itself,
    # inside its own autoretry, when it needs the database).
    assert _deliver(noop._get_current_object(), "t-down") is None


def test_a_retry_is_counted_apart_from_the_first_delivery():
    from alerts.models import TaskDelivery

    task = noop._get_current_object()
    for retries in (0, 1, 2, 3, 4):
        task.push_request(id="t-retry", retries=retries, is_eager=False, called_directly=False)
        try:
            assert task._count_delivery((), {}) == 1
        finally:
            task.pop_request()
    assert TaskDelivery.objects.filter(task_id__startswith="t-retry#").count() == 5
