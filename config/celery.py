"""The Celery application: settings come from Django's, under the CELERY_ namespace."""

import os

from celery import Celery
from celery.signals import beat_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config", task_cls="config.task_base:PipelineTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="config.noop")
def noop() -> None:
    """Does nothing: the benchmarks' yardstick for the broker's per-task cost."""


@beat_init.connect
def _single_beat(**kwargs: object) -> None:
    from config.beat_lock import acquire_or_exit

    acquire_or_exit()
