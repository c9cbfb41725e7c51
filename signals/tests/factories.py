"""factory_boy factories for the signal side's models."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory

from signals.models import Book, Signal, SignalState, StrategyConfig

START = datetime(2024, 1, 1, tzinfo=UTC)


class BookFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Book

    name = factory.Sequence(lambda n: f"replay {n}")
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
    """A signal; pass ``state=`` to place it anywhere in the pipeline."""

    class Meta:
        model = Signal

    book = factory.SubFactory(BookFactory)
    strategy_config = factory.SubFactory(StrategyConfigFactory)
    exchange = factory.SelfAttribute("strategy_config.exchange")
    symbol = factory.SelfAttribute("strategy_config.symbol")
    timeframe = factory.SelfAttribute("strategy_config.timeframe")
    candle_time = factory.Sequence(lambda n: START + timedelta(hours=n))
    side = "long"
    entry_price = Decimal(100)
    stop_loss = Decimal(95)
    take_profit = Decimal(110)
    max_hold_candles = 24
    state = SignalState.GENERATED
