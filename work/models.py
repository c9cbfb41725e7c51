"""One-off work kept in the database, not only in the broker (docs/operations.md,
"Work that survives the broker").

A ``WorkRequest`` is a history table that doubles as a queue: one row per piece of
one-off work (a daily report, the threshold recommendations, an ablation leg), written
when the work is requested or its message published, stamped when it is sent, started
and finished. The unfinished rows are the queue the sweep (``work.resend_lost``) reads;
a partial index keeps that read small however long the history grows.
"""

from django.db import models
from django.db.models import Q


class WorkRequest(models.Model):
    class Outcome(models.TextChoices):
        DONE = "done", "done"
        FAILED = "failed", "failed"

    task_id = models.CharField(
        max_length=255, unique=True, help_text="The Celery task id every send reuses."
    )
    kind = models.CharField(max_length=200, help_text="The task name.")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="Last publish to the broker.")
    sends = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True, help_text="Last run's start.")
    attempts = models.PositiveIntegerField(default=0, help_text="Runs started.")
    running_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The claim of the run in progress: past this (its time limit and a "
        "margin) a run that did not finish is dead.",
    )
    worker = models.CharField(max_length=255, blank=True, help_text="host:pid of the last run.")
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [
            models.Index(
                fields=["requested_at"],
                name="work_unfinished",
                condition=Q(finished_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.kwargs or self.args or ''} ({self.task_id})"
