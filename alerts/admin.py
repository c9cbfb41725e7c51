from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from alerts.models import Alert, AlertChannel, AlertDelivery, TaskDelivery
from alerts.services import deliver


@admin.register(AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "enabled", "min_severity", "created_at")
    list_filter = ("kind", "enabled")
    actions = ["send_test_alert"]

    @admin.action(description="Send a test alert to the selected channels")
    def send_test_alert(self, request: HttpRequest, queryset: QuerySet[AlertChannel]) -> None:
        alert = Alert(
            kind="test",
            key=f"test:{request.user}",
            severity=Alert.Severity.CRITICAL,
            title="Test alert from the signal pipeline",
            message=f"Sent from the admin by {request.user}.",
            created_at=timezone.now(),
            last_seen_at=timezone.now(),
        )
        wanted = set(queryset.values_list("name", flat=True))
        results = [result for result in deliver(alert) if result["channel"] in wanted]
        alert.deliveries = results
        alert.save()
        for result in results:
            level = messages.SUCCESS if result["ok"] else messages.ERROR
            self.message_user(request, f"{result['channel']}: {result['detail']}", level)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("created_at", "severity", "kind", "title", "repeats", "last_seen_at", "sent")
    list_filter = ("severity", "kind")
    search_fields = ("title", "message", "key")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Alert._meta.fields]

    @admin.display(description="Sent to")
    def sent(self, alert: Alert) -> str:
        parts = [f"{d['channel']} {'✓' if d['ok'] else '✗'}" for d in alert.deliveries]
        return ", ".join(parts) or "no channel"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TaskDelivery)
class TaskDeliveryAdmin(admin.ModelAdmin):
    list_display = ("task", "task_id", "deliveries", "quarantined_at", "first_at", "last_at")
    list_filter = ("task",)
    search_fields = ("task", "task_id", "arguments")
    readonly_fields = [field.name for field in TaskDelivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(admin.ModelAdmin):
    list_display = ("alert", "channel", "state", "attempts", "next_attempt_at", "sent_at")
    list_filter = ("state", "channel")
    list_select_related = ("alert", "channel")
    readonly_fields = [field.name for field in AlertDelivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
