"""Live orders buy what the paper trade bought: the entry amount comes from the book's
frozen economics (its notional, converted for a quote currency other than the
reference, or by risk), never from today's settings."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from markets.models import Candle
from signals.economics import UnsizableSignalError, economics_seed, signal_notional
from signals.execution import _entry_amount
from signals.tests.factories import BookFactory, SignalFactory, StrategyConfigFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def frozen(**changes):
    economics = economics_seed()
    economics.update(
        reference_currency="USD", notional="1000", paper_balance="10000", sizing="notional"
    )
    economics.update(changes)
    return economics


def test_a_usd_market_buys_the_frozen_notional_whatever_the_settings_say_now(settings):
    book = BookFactory(economics=frozen(quotes={"USD": {"notional": "1000", "balance": "10000"}}))
    signal = SignalFactory(book=book, entry_price=Decimal(20000), stop_loss=Decimal(19000))
    settings.FILL_NOTIONAL = Decimal(5000)

    assert _entry_amount(book, signal) == Decimal("0.05")


def test_a_btc_quoted_market_converts_at_the_last_candle_closed_by_the_signal():
    config = StrategyConfigFactory(exchange="testex", symbol="ETH/BTC", timeframe="1h")
    # BTC/USD closes 25,000 on the candle that closed at the signal's close, 40,000 on
    # the next one (not known yet at the signal's close).
    for hours, close in ((0, 24000), (1, 25000), (2, 40000)):
        Candle.objects.create(
            exchange="testex",
            symbol="BTC/USD",
            timeframe="1h",
            open_time=T0 + timedelta(hours=hours),
            open=close,
            high=close,
            low=close,
            close=close,
            volume=1,
        )
    terms = {"notional": "1000", "balance": "0.4", "convert": "testex BTC/USD 1h"}
    book = BookFactory(economics=frozen(quotes={"BTC": terms}))
    signal = SignalFactory(
        book=book,
        strategy_config=config,
        candle_time=T0 + timedelta(hours=1),
        entry_price=Decimal("0.05"),
        stop_loss=Decimal("0.045"),
    )

    assert signal_notional(economics=book.economics, signal=signal) == Decimal("0.04")
    assert _entry_amount(book, signal) == Decimal("0.8")  # 0.04 BTC of ETH at 0.05


def test_risk_sizing_loses_the_fraction_of_the_balance_at_the_stop():
    book = BookFactory(
        economics=frozen(
            sizing="risk",
            risk_fraction="0.01",
            quotes={"USD": {"notional": "1000", "balance": "10000"}},
        )
    )
    signal = SignalFactory(book=book, entry_price=Decimal(100), stop_loss=Decimal(95))
    # 1 % of 10,000 = 100 lost over a 5-point stop: 20 units, 2,000 notional.
    assert _entry_amount(book, signal) == Decimal(20)


def test_a_signal_before_any_conversion_candle_cannot_be_sized():
    config = StrategyConfigFactory(exchange="testex", symbol="ETH/BTC", timeframe="1h")
    terms = {"notional": "1000", "balance": "0.4", "convert": "testex BTC/USD 1h"}
    book = BookFactory(economics=frozen(quotes={"BTC": terms}))
    signal = SignalFactory(book=book, strategy_config=config, entry_price=Decimal("0.05"))
    with pytest.raises(UnsizableSignalError, match="no testex BTC/USD 1h candle"):
        _entry_amount(book, signal)
