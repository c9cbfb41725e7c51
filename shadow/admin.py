"""Admin for shadow trades: read-only, written only by the shadow engine."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from shadow.models import ShadowTrade
from signals.admin import TRADE_OUTCOME_FIELDSETS, ReadOnlyAdminMixin


@admin.register(ShadowTrade)
class ShadowTradeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "signal_link",
        "group",
        "side",
        "status",
        "exit_reason",
        "pnl",
        "r_multiple",
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

    @admin.display(description="signal", ordering="signal")
    def signal_link(self, obj: ShadowTrade) -> str:
        url = reverse("admin:signals_signal_change", args=[obj.signal_id])
        return format_html('<a href="{}">{}</a>', url, obj.signal)
