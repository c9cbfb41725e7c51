"""Sizing a trader would use, through a replay into the database: a BTC-quoted book trades
1,000 USD worth of BTC (converted from stored BTC/USD candles) against a BTC balance, or
the per-quote notional of NOTIONAL_BY_QUOTE, or a fraction of its balance at risk."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from markets.bars import timeframe_delta
from markets.models import Candle
from shadow.live import book_advance
from signals.models import Book, PaperTrade
from signals.services import book_live, strategy_config_default
from signals.tests.candles import START, store, walk

ETH_BTC = {"exchange": "testex", "symbol": "ETH/BTC", "timeframe": "1h"}


def store_markets(count: int = 700) -> None:
    # ETH around 0.05 BTC, BTC around 30,000 USD.
    store(
        [(t, o / 6e5, h / 6e5, lo / 6e5, c / 6e5) for t, o, h, lo, c in walk(count, seed=4)],
        **ETH_BTC,
    )
    store(walk(count, seed=5), symbol="BTC/USD")


def replay(name: str) -> Book:
    call_command(
        "replay",
        "--exchange",
        ETH_BTC["exchange"],
        "--symbol",
        ETH_BTC["symbol"],
        "--timeframe",
        ETH_BTC["timeframe"],
        "--book",
        name,
        "--no-progress",
        stdout=StringIO(),
    )
    return Book.objects.get(name=name)


def usd_per_btc_at(moment) -> Decimal:
    """The close of the BTC/USD candle that closed at ``moment``."""
    step = timeframe_delta("1h")
    return Candle.objects.get(symbol="BTC/USD", open_time=moment - step).close


@pytest.mark.django_db
def test_a_btc_quoted_book_trades_1000_usd_of_btc_and_keeps_its_balance_in_btc(settings):
    settings.FILL_NOTIONAL = Decimal("1000")
    settings.PAPER_BALANCE = Decimal("10000")
    store_markets()
    book = replay("eth")

    terms = book.economics["quotes"]["BTC"]
    assert terms["convert"] == "testex BTC/USD 1h" and terms["invert"] is False
    first_rate = Candle.objects.filter(symbol="BTC/USD").order_by("open_time").first().close
    assert Decimal(terms["balance"]) == pytest.approx(
        Decimal(10000) / first_rate, rel=Decimal("1e-9")
    )
    assert 0.2 < float(terms["balance"]) < 0.5  # BTC, not 10,000 BTC

    trades = PaperTrade.objects.filter(book=book).exclude(entry_price=None).select_related("signal")
    assert trades.count() > 5
    step = timeframe_delta("1h")
    for trade in trades:
        value = trade.quantity * trade.entry_price
        rate = usd_per_btc_at(trade.signal.candle_time + step)
        assert value == pytest.approx(Decimal(1000) / rate, rel=Decimal("1e-9"))


@pytest.mark.django_db
def test_notional_by_quote_sets_the_btc_amount_and_scales_the_balance(settings):
    settings.FILL_NOTIONAL = Decimal("1000")
    settings.PAPER_BALANCE = Decimal("10000")
    settings.NOTIONAL_BY_QUOTE = {"BTC": Decimal("0.02")}
    store_markets()
    book = replay("eth")
    terms = book.economics["quotes"]["BTC"]
    assert (terms["notional"], Decimal(terms["balance"])) == ("0.02", Decimal("0.2"))
    trades = PaperTrade.objects.filter(book=book).exclude(entry_price=None)
    assert trades.exists()
    for trade in trades:
        assert trade.quantity * trade.entry_price == pytest.approx(
            Decimal("0.02"), rel=Decimal("1e-9")
        )


@pytest.mark.django_db
def test_sizing_by_risk_puts_the_fraction_of_the_btc_balance_at_the_stop(settings):
    settings.FILL_SIZING = "risk"
    settings.FILL_RISK_FRACTION = Decimal("0.02")
    settings.PAPER_BALANCE_BY_QUOTE = {"BTC": Decimal("1.5")}
    store_markets()
    book = replay("eth")
    assert book.economics["sizing"] == "risk"
    trades = PaperTrade.objects.filter(book=book).exclude(entry_price=None).select_related("signal")
    assert trades.count() > 5
    for trade in trades:
        signal = trade.signal
        # Sized on the signal's close: the notional it fixed loses the fraction there.
        notional = trade.quantity * trade.entry_price
        at_risk = notional / signal.entry_price * abs(signal.entry_price - signal.stop_loss)
        assert at_risk == pytest.approx(Decimal("0.03"), rel=Decimal("1e-9"))


@pytest.mark.django_db
def test_a_usd_book_keeps_its_figures(settings):
    """The reference currency trades FILL_NOTIONAL as before: 1,000 USD a trade."""
    settings.FILL_NOTIONAL = Decimal("1000")
    store(walk(400, seed=6))
    market = ["--exchange", "testex", "--symbol", "BTC/USD", "--timeframe", "1h"]
    call_command("replay", *market, "--book", "usd", "--no-progress", stdout=StringIO())
    book = Book.objects.get(name="usd")
    assert book.economics["quotes"]["USD"]["how"] == "reference currency"
    trades = PaperTrade.objects.filter(book=book).exclude(entry_price=None)
    assert trades.exists()
    for trade in trades:
        assert trade.quantity * trade.entry_price == pytest.approx(
            Decimal(1000), rel=Decimal("1e-9")
        )


@pytest.mark.django_db
def test_the_live_book_sizes_btc_trades_by_the_conversion_market_too(settings):
    settings.SIGNAL_MAX_AGE = timedelta(days=36500)  # every candle's signal is fresh
    settings.FILL_NOTIONAL = Decimal("1000")
    settings.PAPER_BALANCE = Decimal("10000")
    store_markets(500)
    strategy_config_default(**ETH_BTC)
    book = book_live()
    now = START + timedelta(hours=300)
    book_advance(book_id=book.pk, now=now)
    book_advance(book_id=book.pk, now=now + timedelta(hours=200))

    book.refresh_from_db()
    terms = book.economics["quotes"]["BTC"]
    # Settled at the first run: the BTC/USD candle that closed by then.
    rate = usd_per_btc_at(now)
    assert Decimal(terms["balance"]) == pytest.approx(Decimal(10000) / rate, rel=Decimal("1e-9"))
    trades = PaperTrade.objects.filter(book=book).exclude(entry_price=None).select_related("signal")
    assert trades.filter(signal__candle_time__gte=now).exists()
    step = timeframe_delta("1h")
    for trade in trades:
        value = trade.quantity * trade.entry_price
        at_close = usd_per_btc_at(trade.signal.candle_time + step)
        assert value == pytest.approx(Decimal(1000) / at_close, rel=Decimal("1e-9"))
