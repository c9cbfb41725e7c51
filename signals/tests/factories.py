"""factory_boy factories for the signal side's models."""

from datetime import UTC, datetime
from decimal import Decimal

import factory

from signals.models import Book, Signal, StrategyConfig


class BookFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Book

    name = factory.Sequence(lambda n: f"book {n}")
    kind = Book.Kind.REPLAY


class StrategyConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StrategyConfig

    name = factory.Sequence(lambda n: f"ema {n}")
    kind = "ema_crossover"
    params = factory.LazyFunction(dict)
    exchange = "testex"
    symbol = "BTC/USD"
    timeframe = "1h"


class SignalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Signal

    book = factory.SubFactory(BookFactory)
    strategy_config = factory.SubFactory(StrategyConfigFactory)
    exchange = "testex"
    symbol = "BTC/USD"
    timeframe = "1h"
    candle_time = factory.Sequence(lambda n: datetime(2024, 1, 1, n % 24, tzinfo=UTC))
    side = "long"
    entry_price = Decimal(100)
    stop_loss = Decimal(95)
    take_profit = Decimal(110)
    max_hold_candles = 24
