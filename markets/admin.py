"""Candles in the admin: read-only, since candles come in through the commands and tasks."""

from django.contrib import admin
from django.http import HttpRequest

from markets.models import Candle


@admin.register(Candle)
class CandleAdmin(admin.ModelAdmin[Candle]):
    list_display = [
        "open_time",
        "exchange",
        "symbol",
        "timeframe",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "source",
    ]
    list_filter = ["exchange", "symbol", "timeframe", "source"]
    date_hierarchy = "open_time"
    search_fields = ["exchange", "symbol"]
    ordering = ["-open_time"]
    readonly_fields = [field.name for field in Candle._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Candle | None = None) -> bool:
        return False
