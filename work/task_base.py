"""The base class of tasks that are one-off work: each run claims its ``WorkRequest``.

A message of such a task may arrive twice: the sweep re-sends work whose message looks
lost (it may only be slow), and the broker restores a message whose worker died. So
before the work runs, the run claims the request's row with a conditional update
(``work.services.work_claim``); a run that loses finds the work done or running and
returns without doing it. The row is marked finished when the run ends (done, or failed
for good), and given back when the run will retry.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery.exceptions import Reject, Retry

from config.task_base import DATABASE_ERRORS, PipelineTask
from markets.redaction import redact
from work.models import WorkRequest
from work.services import work_claim, work_finish, work_release

logger = logging.getLogger("work")


def _error(exc: BaseException) -> str:
    message = redact(str(exc))
    return (f"{type(exc).__name__}: {message}" if message else type(exc).__name__)[:1000]


class WorkTask(PipelineTask):
    # Record every send of this task (beat's sends included), not only the sends that
    # ``work.services.work_request`` made.
    record_every_send = True

    def _lease(self) -> timedelta:
        limit = self.time_limit or self.app.conf.task_time_limit or 3600
        return timedelta(seconds=float(limit))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if not request.id or request.called_directly:
            return super().__call__(*args, **kwargs)
        try:
            claim = work_claim(
                task_id=request.id,
                kind=self.name,
                args=list(args),
                kwargs=kwargs,
                lease=self._lease(),
                # Run in-process (eagerly), a task is recorded work only when it was
                # requested as such; a delivered message always is.
                create=not request.is_eager,
            )
        except DATABASE_ERRORS as exc:
            # The claim is what keeps the work from running twice: never run without it.
            # Ask again shortly (outside the task's body, so autoretry does not see this).
            raise self.retry(exc=exc, countdown=5) from exc
        if claim is None:
            return super().__call__(*args, **kwargs)
        if not claim.run:
            logger.warning(
                "[WORK] %s (task %s) not run again: %s", self.name, request.id, claim.reason
            )
            return None
        if claim.reason:
            logger.warning("[WORK] %s (task %s) %s", self.name, request.id, claim.reason)
        try:
            result = super().__call__(*args, **kwargs)
        except Retry:
            work_release(task_id=request.id)
            raise
        except Reject as exc:
            work_finish(task_id=request.id, outcome=WorkRequest.Outcome.FAILED, error=_error(exc))
            raise
        except Exception as exc:
            work_finish(task_id=request.id, outcome=WorkRequest.Outcome.FAILED, error=_error(exc))
            raise
        work_finish(task_id=request.id, outcome=WorkRequest.Outcome.DONE)
        return result
