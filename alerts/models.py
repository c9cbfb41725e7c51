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
