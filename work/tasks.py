"""The sweep that re-sends one-off work whose message the broker lost, and says so."""

import logging
from typing import Any

from celery import shared_task

# The sweep is the one place that learns the broker lost work: it raises the alerts
# itself (alerts sits above every app; nothing imports this module but Celery).
from alerts.services import raise_alert
from work.models import WorkRequest
from work.services import Sweep, resend_after, work_resend_lost

logger = logging.getLogger("work")


@shared_task(name="work.resend_lost", time_limit=120, soft_time_limit=100)
def resend_lost() -> dict[str, Any]:
    """Re-send the recorded work whose message is gone (beat, every 5 minutes); alert on
    what was re-sent and on what was given up."""
    sweep = work_resend_lost()
    try:
        alert_lost_work(sweep)
    except Exception:
        logger.exception("[WORK] the lost-work alert could not be raised")
    return {
        "resent": sweep.resent,
        "given_up": sweep.given_up,
        "failed_sends": sweep.failed_sends,
        "pruned": sweep.pruned,
    }


def alert_lost_work(sweep: Sweep) -> None:
    """One warning per kind of work re-sent (the broker lost its message: was Redis
    restarted empty?), one critical alert per piece of work given up."""
    rows = WorkRequest.objects.filter(task_id__in=[*sweep.resent, *sweep.given_up])
    by_id = {row.task_id: row for row in rows}
    resent: dict[str, list[WorkRequest]] = {}
    for task_id in sweep.resent:
        if task_id in by_id:
            resent.setdefault(by_id[task_id].kind, []).append(by_id[task_id])
    for kind, lost in resent.items():
        raise_alert(
            "work_resent",
            kind,
            title=f"Work lost by the broker and sent again: {kind}",
            message=f"{len(lost)} request(s) of {kind} were not started within "
            f"{resend_after().total_seconds():.0f} s of being sent (was Redis restarted "
            "empty?) and were sent again: "
            + ", ".join(f"{row.kwargs or row.args} (task {row.task_id})" for row in lost)
            + ". Each runs once. Admin → Requested work → Work requests lists them.",
            severity="warning",
        )
    for task_id in sweep.given_up:
        row = by_id.get(task_id)
        if row is None:
            continue
        raise_alert(
            "work_given_up",
            task_id,
            title=f"Work given up: {row.kind}",
            message=f"{row.kind} {row.kwargs or row.args} (task {task_id}, requested "
            f"{row.requested_at:%Y-%m-%d %H:%M} UTC): {row.error}. Run it again by hand "
            "if it is still wanted.",
            severity="critical",
        )
