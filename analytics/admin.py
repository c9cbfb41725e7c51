"""Admin for what the read side records: threshold recommendations (with the apply and
dismiss actions), task heartbeats, recovery runs and stored reports (read-only)."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from analytics.learning import RecommendationError, recommendation_apply, recommendation_dismiss
from analytics.models import RecoveryRun, Report, TaskHeartbeat, ThresholdRecommendation


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable only: tasks and services write these rows."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(ThresholdRecommendation)
class ThresholdRecommendationAdmin(ReadOnlyAdmin):
    # Nine columns that fit a 1,280 px screen: the threshold's change in one, who applied
    # it and as which version in another (each field is on the detail page).
    list_display = (
        "guard_config",
        "book",
        "threshold",
        "gain",
        "out_of_sample_gain",
        "samples",
        "status",
        "created_at",
        "applied",
    )
    list_filter = ("status", "book")
    list_select_related = ("guard_config", "book", "applied_by")
    search_fields = ("guard_config__name", "param")
    date_hierarchy = "created_at"
    actions = ("apply_selected", "dismiss_selected")
    readonly_fields = (
        "book",
        "guard_config",
        "param",
        "current_value",
        "recommended_value",
        "current_net_impact",
        "recommended_net_impact",
        "out_of_sample_gain",
        "q_value",
        "share_blocked",
        "reason",
        "samples",
        "status",
        "created_at",
        "applied_at",
        "applied_by",
        "applied_version",
        "curve",
    )

    @admin.display(description="threshold", ordering="param")
    def threshold(self, obj: ThresholdRecommendation) -> str:
        current, recommended = (
            f"{value.normalize():f}" for value in (obj.current_value, obj.recommended_value)
        )
        return f"{obj.param}: {current} → {recommended}"

    @admin.display(description="applied", ordering="applied_version")
    def applied(self, obj: ThresholdRecommendation) -> str:
        if obj.applied_version is None:
            return "not applied"
        return f"v{obj.applied_version} by {obj.applied_by or 'someone since removed'}"

    @admin.display(description="net impact gain")
    def gain(self, obj: ThresholdRecommendation) -> str:
        return f"{obj.recommended_net_impact - obj.current_net_impact:+.2f}"

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not request.user.has_perm("signals.change_guardconfig"):
            actions.pop("apply_selected", None)
            actions.pop("dismiss_selected", None)
        return actions

    @admin.action(description="Apply: save the threshold as a new guard configuration version")
    def apply_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for rec in queryset.select_related("guard_config"):
            try:
                applied = recommendation_apply(recommendation_id=rec.pk, user=request.user)
            except RecommendationError as error:
                self.message_user(request, f"{rec}: not applied: {error}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"{rec.guard_config.name}: {applied.param} applied as v{applied.applied_version}",
                messages.SUCCESS,
            )

    @admin.action(description="Dismiss the selected open recommendations")
    def dismiss_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        dismissed = sum(
            recommendation_dismiss(recommendation_id=pk)
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"{dismissed} recommendation(s) dismissed", messages.SUCCESS)


@admin.register(TaskHeartbeat)
class TaskHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("task", "last_success_at", "last_failure_at", "runs", "failures")
    search_fields = ("task",)


@admin.register(RecoveryRun)
class RecoveryRunAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor", "stuck_found")
    date_hierarchy = "created_at"


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    list_display = ("book", "period", "created_at", "created_by")
    list_filter = ("period", "book")
    list_select_related = ("book",)
    exclude = ("html", "csv")
