"""factory_boy factories for the rows analytics reads."""

from datetime import timedelta
from decimal import Decimal

import factory

from markets.models import Candle
from shadow.models import ShadowTrade
from signals.models import (
    GuardDecision,
    PaperTrade,
    SignalState,
    SignalTransition,
)
from signals.tests.factories import START, BookFactory, SignalFactory, StrategyConfigFactory

__all__ = ["BookFactory", "SignalFactory", "StrategyConfigFactory"]


class GuardDecisionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GuardDecision

    signal = factory.SubFactory(SignalFactory)
    guard = "max_open_positions"
    verdict = GuardDecision.Verdict.PASS
    reason = "test"
    observed_value = Decimal(0)
    threshold = Decimal(1)


class SignalTransitionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SignalTransition

    signal = factory.SubFactory(SignalFactory)
    name = "block"
    from_state = SignalState.GENERATED
    to_state = SignalState.BLOCKED
    actor = "test"


class ShadowTradeFactory(factory.django.DjangoModelFactory):
    """A closed shadow trade of a blocked signal; pass ``pnl=``."""

    class Meta:
        model = ShadowTrade

    signal = factory.SubFactory(SignalFactory, state=SignalState.BLOCKED)
    book = factory.SelfAttribute("signal.book")
    side = factory.SelfAttribute("signal.side")
    group = ShadowTrade.Group.BLOCKED
    status = ShadowTrade.Status.CLOSED
    exit_reason = ShadowTrade.ExitReason.TARGET
    pnl = Decimal(0)
    # As the engine writes it: a closed trade has its exit, a candle after its signal.
    exit_time = factory.LazyAttribute(
        lambda trade: (
            trade.signal.candle_time + timedelta(hours=1)
            if trade.status == ShadowTrade.Status.CLOSED
            else None
        )
    )


class PaperTradeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaperTrade

    signal = factory.SubFactory(SignalFactory, state=SignalState.CLOSED)
    book = factory.SelfAttribute("signal.book")
    side = factory.SelfAttribute("signal.side")
    status = PaperTrade.Status.CLOSED
    exit_reason = PaperTrade.ExitReason.TARGET
    pnl = Decimal(0)


class CandleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Candle

    exchange = "testex"
    symbol = "BTC/USD"
    timeframe = "1h"
    open_time = factory.Sequence(lambda n: START + timedelta(hours=n))
    open = Decimal(100)
    high = Decimal(101)
    low = Decimal(99)
    close = Decimal(100)
    volume = Decimal(10)
    source = Candle.Source.EXCHANGE


def decided_signal(
    book,
    *,
    blocked_by=(),
    passed_by=(),
    pnl=None,
    status=ShadowTrade.Status.CLOSED,
    group=ShadowTrade.Group.BLOCKED,
):
    """A signal with one decision per guard and its shadow trade."""
    state = SignalState.BLOCKED if blocked_by else SignalState.APPROVED
    signal = SignalFactory(book=book, state=state)
    for guard in blocked_by:
        GuardDecisionFactory(signal=signal, guard=guard, verdict=GuardDecision.Verdict.BLOCK)
    for guard in passed_by:
        GuardDecisionFactory(signal=signal, guard=guard, verdict=GuardDecision.Verdict.PASS)
    ShadowTradeFactory(
        signal=signal,
        group=group,
        status=status,
        pnl=Decimal(pnl) if pnl is not None else None,
        exit_reason="" if status != ShadowTrade.Status.CLOSED else "target",
    )
    return signal


def replay_testex(*options: str) -> None:
    """Replay the stored testex BTC/USD 1h candles through the real command (quietly),
    with extra ``options`` such as ``"--until", "2024-01-20"``."""
    from io import StringIO

    from django.core.management import call_command

    call_command(
        "replay",
        "--exchange",
        "testex",
        "--symbol",
        "BTC/USD",
        "--timeframe",
        "1h",
        *options,
        "--no-progress",
        stdout=StringIO(),
    )
