"""Admin for shadow trades: read-only, written only by the shadow engine."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from shadow.models import ShadowTrade
from signals.admin import TRADE_OUTCOME_FIELDSETS, ReadOnlyAdminMixin, TradeFiguresMixin


@admin.register(ShadowTrade)
class ShadowTradeAdmin(TradeFiguresMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "signal_link",
        "group",
        "side",
        "status",
        "exit_reason",
        "pnl_display",
        "r_display",
        "exit_time",
    )
    list_filter = ("group", "status", "exit_reason", "book")
    list_select_related = ("signal",)
    fields = (
        ("book", "signal_link", "group"),
        *TRADE_OUTCOME_FIELDSETS,
        ("created_at", "closed_at"),
    )
    readonly_fields = tuple(name for row in fields for name in row)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ShadowTrade]:
        return super().get_queryset(request).select_related("signal", "book")

    @admin.display(description="signal", ordering="signal")
    def signal_link(self, obj: ShadowTrade) -> str:
        url = reverse("admin:signals_signal_change", args=[obj.signal_id])
        return format_html('<a href="{}">{}</a>', url, obj.signal)
