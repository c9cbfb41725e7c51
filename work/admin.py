from django.contrib import admin

from work.models import WorkRequest


@admin.register(WorkRequest)
class WorkRequestAdmin(admin.ModelAdmin):
    list_display = (
        "kind",
        "requested_at",
        "sends",
        "sent_at",
        "attempts",
        "started_at",
        "finished_at",
        "outcome",
    )
    list_filter = ("kind", "outcome")
    search_fields = ("task_id", "kind")
    date_hierarchy = "requested_at"
    readonly_fields = [field.name for field in WorkRequest._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False
