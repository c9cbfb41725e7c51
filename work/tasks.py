"""The sweep that re-sends one-off work whose message the broker lost."""

from typing import Any

from celery import shared_task

from work.services import work_resend_lost


@shared_task(name="work.resend_lost", time_limit=120, soft_time_limit=100)
def resend_lost() -> dict[str, Any]:
    """Re-send the recorded work whose message is gone (beat, every 5 minutes)."""
    sweep = work_resend_lost()
    return {
        "resent": sweep.resent,
        "given_up": sweep.given_up,
        "failed_sends": sweep.failed_sends,
        "pruned": sweep.pruned,
    }
