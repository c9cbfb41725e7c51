"""A task that kills its own worker process every time: the fault suite's poison message.
Registered only by the test settings (CELERY_IMPORTS in config/settings_test.py)."""

import os
import signal

from celery import shared_task


@shared_task(name="faults.poison")
def poison() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
