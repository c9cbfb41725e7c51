"""Alert channels (configured in the admin), every alert raised, and the small pieces of
state the watchers keep between runs."""

from django.db import models


class AlertChannel(models.Model):
    """Where alerts go: a generic JSON webhook (Slack, Discord and Telegram relays take
    it) or email through Django's mail settings."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "JSON webhook"
        EMAIL = "email", "email"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    url = models.URLField(
        max_length=500,
        blank=True,
        help_text="Webhook: the URL that receives a POST with a JSON body. It may hold a "
        "token: it is never shown in logs or alerts.",
    )
    recipients = models.TextField(
        blank=True, help_text="Email: addresses separated by commas or new lines."
    )
    enabled = models.BooleanField(default=True)
    min_severity = models.CharField(
        max_length=10,
        choices=[("info", "info"), ("warning", "warning"), ("critical", "critical")],
        default="info",
        help_text="Send only alerts of this severity or higher.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def recipient_list(self) -> list[str]:
        return [
            part.strip() for part in self.recipients.replace("\n", ",").split(",") if part.strip()
        ]


class Alert(models.Model):
    """One alert: what happened, whether it was sent, and how often it repeated inside the
    rate-limit window (a failure storm is one alert with a repeat count, not thousands)."""

    class Severity(models.TextChoices):
        INFO = "info", "info"
        WARNING = "warning", "warning"
        CRITICAL = "critical", "critical"

    kind = models.CharField(max_length=40)
    key = models.CharField(max_length=200, help_text="What it is about (a book, a task, a guard).")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    title = models.CharField(max_length=200)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()
    repeats = models.PositiveIntegerField(
        default=0, help_text="Further occurrences inside the rate-limit window (not sent)."
    )
    deliveries = models.JSONField(
        default=list, blank=True, help_text="[{channel, ok, detail}] per channel."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "key", "-created_at"])]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.title}"


class AlertDelivery(models.Model):
    """One alert to one channel: a queue row that lives until the channel took it.

    ``alerts.deliver`` (its own task, on its own ``alerts`` queue) claims a due row, sends
    within ``ALERT_DELIVERY_DEADLINE_SECONDS`` of wall-clock time and either marks it sent
    or schedules the next attempt with a doubling backoff; the ``alerts.deliver_due``
    sweep re-sends rows whose message was lost. A row is given up (``failed``) only after
    ``ALERT_DELIVERY_GIVE_UP_HOURS`` of failed attempts."""

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        SENT = "sent", "sent"
        FAILED = "failed", "given up"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="delivery_rows")
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="An attempt is in flight until then."
    )
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "channel"], name="one_delivery_per_channel")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="alert_delivery_due",
                condition=models.Q(state="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"alert {self.alert_id} -> {self.channel_id}: {self.state}"


class WatchState(models.Model):
    """What a watcher remembers between runs (last verdicts, streaks, cursors)."""

    name = models.CharField(max_length=200, unique=True)
    value = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class TaskDelivery(models.Model):
    """How many times the broker delivered one task message. A row lives while its task
    runs; one whose process died (SIGKILL, out of memory, a crash) stays and counts up at
    each redelivery, and past ``TASK_MAX_DELIVERIES`` the message is quarantined: not run
    again, kept here and alerted on (``config.task_base``)."""

    task_id = models.CharField(max_length=255, unique=True)
    task = models.CharField(max_length=200)
    arguments = models.TextField(blank=True)
    deliveries = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField(auto_now_add=True)
    last_at = models.DateTimeField(auto_now=True)
    quarantined_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_at"]
        verbose_name_plural = "task deliveries (quarantine)"

    def __str__(self) -> str:
        return f"{self.task} {self.task_id} ({self.deliveries} deliveries)"
