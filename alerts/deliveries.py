"""The delivery ledger of redelivered task messages (``config.task_base``): counts in
``TaskDelivery``, and the quarantine of a message that keeps killing its worker."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from alerts.models import TaskDelivery
from alerts.services import raise_alert


class TaskDeliveryLedger:
    """``config.task_base.DeliveryLedger`` on the ``TaskDelivery`` table."""

    def count(self, *, task_id: str, task: str, arguments: str) -> int:
        with transaction.atomic():
            # A redelivered message: its first delivery went uncounted, so a new row
            # starts at 2.
            row, created = TaskDelivery.objects.select_for_update().get_or_create(
                task_id=task_id,
                defaults={"task": task, "arguments": arguments, "deliveries": 2},
            )
            if not created:
                TaskDelivery.objects.filter(pk=row.pk).update(
                    deliveries=F("deliveries") + 1, last_at=timezone.now()
                )
                row.refresh_from_db(fields=["deliveries"])
        return row.deliveries

    def quarantine(self, *, task_id: str, task: str, deliveries: int, limit: int) -> None:
        # The quarantine and its alert commit together: never a quarantined task that
        # nobody was told about (nor one a reader sees before its alert).
        with transaction.atomic():
            TaskDelivery.objects.filter(task_id=task_id).update(quarantined_at=timezone.now())
            raise_alert(
                "task_quarantined",
                task,
                title=f"Task {task} quarantined",
                message=(
                    f"Task {task} id={task_id} killed its worker process {deliveries - 1} "
                    f"times (limit {limit}); not run again. It is kept in Admin → Alerts → "
                    "Task deliveries."
                ),
                severity="critical",
            )

    def forget(self, *, task_id: str) -> None:
        TaskDelivery.objects.filter(task_id=task_id, quarantined_at__isnull=True).delete()
