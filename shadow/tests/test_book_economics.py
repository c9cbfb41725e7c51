"""Books freeze their whole economics (fee, slippage, sizing, paper balance per quote) at
their start: ablation legs and later live runs trade on the frozen copy, whatever the
settings say by then."""

import importlib
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.urls import reverse

from analytics.selectors import ablation_report
from shadow.live import book_advance
from shadow.selectors import book_summary
from signals.models import Book, PaperTrade, Signal
from signals.services import book_live, engine_config, strategy_config_default
from signals.tests.candles import MARKET, START, store_walk

MARKET_ARGS = [
    "--exchange",
    MARKET["exchange"],
    "--symbol",
    MARKET["symbol"],
    "--timeframe",
    MARKET["timeframe"],
]


def economy(settings, *, notional: str, slippage: str, balance: str) -> None:
    settings.FILL_NOTIONAL = Decimal(notional)
    settings.FILL_SLIPPAGE_BPS = Decimal(slippage)
    settings.PAPER_BALANCE = Decimal(balance)


def ablation_values(book: Book) -> dict[str, tuple[Decimal | None, Decimal]]:
    call_command("ablate", "--book", book.name, "--inline", "--no-progress", stdout=StringIO())
    return {
        row.guard: (row.path_dependent, book_summary(book=leg).paper_pnl)
        for row in ablation_report(book=book)
        for leg in Book.objects.filter(ablation_of=book, without_guard=row.guard)
    }


@pytest.mark.django_db
def test_an_ablation_under_other_settings_equals_the_ablation_under_the_books_own(settings):
    store_walk(900, seed=8)
    # A tight balance, so paying for entries shapes the path too.
    economy(settings, notional="1000", slippage="5", balance="2500")
    call_command("replay", *MARKET_ARGS, "--book", "base", "--no-progress", stdout=StringIO())
    book = Book.objects.get(name="base")
    frozen = dict(book.economics)
    under_own = ablation_values(book)
    Book.objects.filter(ablation_of=book).delete()

    economy(settings, notional="2000", slippage="20", balance="100000")
    under_other = ablation_values(book)

    assert under_other == under_own
    assert any(value for value, _ in under_own.values()), "the ablation must measure something"
    book.refresh_from_db()
    assert book.economics == frozen
    assert frozen["notional"] == "1000" and frozen["slippage_bps"] == "5"
    assert frozen["quotes"]["USD"] == {
        "notional": "1000",
        "balance": "2500",
        "how": "reference currency",
    }
    for leg in Book.objects.filter(ablation_of=book):
        assert leg.economics == frozen
    # Under the new settings a NEW book trades otherwise: the settings were really changed.
    call_command("replay", *MARKET_ARGS, "--book", "fresh", "--no-progress", stdout=StringIO())
    fresh = Book.objects.get(name="fresh")
    assert fresh.economics["notional"] == "2000"
    assert book_summary(book=fresh).paper_pnl != book_summary(book=book).paper_pnl


@pytest.mark.django_db
def test_later_live_runs_trade_on_the_economics_the_live_book_froze(settings):
    settings.SIGNAL_MAX_AGE = timedelta(days=36500)  # every candle's signal is fresh
    store_walk(400, seed=3)
    strategy_config_default(**MARKET)
    economy(settings, notional="1000", slippage="5", balance="10000")
    book = book_live()
    economy(settings, notional="2000", slippage="50", balance="10")

    book_advance(book_id=book.pk, now=START + timedelta(hours=400))

    config = engine_config(book=book)
    assert (config.costs.notional, config.costs.slippage_bps) == (1000.0, 5.0)
    assert config.balance_of("USD") == 10000.0
    trades = PaperTrade.objects.filter(book=book).exclude(entry_price=None)
    assert trades.exists()
    for trade in trades:
        assert trade.quantity * trade.entry_price == pytest.approx(
            Decimal(1000), rel=Decimal("1e-9")
        )
    assert not Signal.objects.filter(book=book, state="failed").exists()


@pytest.mark.django_db
def test_a_book_made_before_the_migration_gets_todays_settings_as_it_traded(settings):
    economy(settings, notional="1000", slippage="5", balance="10000")
    book = Book.objects.create(name="old", kind=Book.Kind.REPLAY)
    book.strategies.create(
        config=strategy_config_default(exchange="x", symbol="ETH/BTC", timeframe="1h"),
        config_version=1,
        name="s",
        kind="ema_crossover",
        exchange="x",
        symbol="ETH/BTC",
        timeframe="1h",
    )
    migration = importlib.import_module("signals.migrations.0011_book_economics")
    migration.freeze_existing(apps, None)

    book.refresh_from_db()
    assert book.economics["slippage_bps"] == "5"
    # It traded 1,000 BTC a trade before: it goes on doing so, as its history did.
    assert book.economics["quotes"]["BTC"]["notional"] == "1000"
    assert book.economics["quotes"]["BTC"]["balance"] == "10000"


@pytest.mark.django_db
def test_the_admin_shows_a_books_economics(admin_client, settings):
    economy(settings, notional="1000", slippage="5", balance="10000")
    store_walk(300, seed=2)
    call_command("replay", *MARKET_ARGS, "--book", "base", "--no-progress", stdout=StringIO())
    book = Book.objects.get(name="base")
    page = admin_client.get(reverse("admin:signals_book_change", args=[book.pk]))
    text = page.content.decode()
    assert "1000 USD a trade" in text
    assert "slippage: 5 bps per fill" in text
    assert "USD: balance 10000 USD" in text
