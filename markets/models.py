"""Market data tables."""

from typing import Any

from django.db import models


def decimal_field(**options: Any) -> models.DecimalField:
    """A price, quantity or money column: exact, 30 digits with 12 after the point."""
    return models.DecimalField(max_digits=30, decimal_places=12, **options)


class Candle(models.Model):
    """One closed OHLCV candle; ``open_time`` is the candle's open, in UTC."""

    class Source(models.TextChoices):
        EXCHANGE = "exchange", "exchange"
        FILE = "file", "file"
        SYNTHETIC = "synthetic", "synthetic"

    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=8)
    open_time = models.DateTimeField()
    open = decimal_field()
    high = decimal_field()
    low = decimal_field()
    close = decimal_field()
    volume = models.DecimalField(max_digits=38, decimal_places=12)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.EXCHANGE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["exchange", "symbol", "timeframe", "open_time"]
        constraints = [
            models.UniqueConstraint(
                fields=["exchange", "symbol", "timeframe", "open_time"],
                name="candle_unique_open_time",
            )
        ]

    def __str__(self) -> str:
        return f"{self.exchange} {self.symbol} {self.timeframe} {self.open_time:%Y-%m-%d %H:%M}"
