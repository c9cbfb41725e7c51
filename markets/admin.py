"""Candles in the admin: read-only, since candles come in through the commands and tasks."""

from django.contrib import admin
from django.http import HttpRequest

from markets.admin_format import price, quote_currency
from markets.models import Candle


@admin.register(Candle)
class CandleAdmin(admin.ModelAdmin[Candle]):
    list_display = [
        "open_time",
        "exchange",
        "symbol",
        "timeframe",
        "open_display",
        "high_display",
        "low_display",
        "close_display",
        "volume_display",
        "source",
    ]
    list_filter = ["exchange", "symbol", "timeframe", "source"]
    date_hierarchy = "open_time"
    search_fields = ["exchange", "symbol"]
    ordering = ["-open_time"]
    fields = (
        "exchange",
        "symbol",
        "timeframe",
        "open_time",
        "open_display",
        "high_display",
        "low_display",
        "close_display",
        "volume_display",
        "source",
        "created_at",
    )
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="Open", ordering="open")
    def open_display(self, obj: Candle) -> str:
        return price(obj.open, quote_currency(obj.symbol))

    @admin.display(description="High", ordering="high")
    def high_display(self, obj: Candle) -> str:
        return price(obj.high, quote_currency(obj.symbol))

    @admin.display(description="Low", ordering="low")
    def low_display(self, obj: Candle) -> str:
        return price(obj.low, quote_currency(obj.symbol))

    @admin.display(description="Close", ordering="close")
    def close_display(self, obj: Candle) -> str:
        return price(obj.close, quote_currency(obj.symbol))

    @admin.display(description="Volume (base currency)", ordering="volume")
    def volume_display(self, obj: Candle) -> str:
        return price(obj.volume)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Candle | None = None) -> bool:
        return False
