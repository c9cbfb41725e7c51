"""Money, prices and ratios in the admin as a trader reads them: ``1,234.56 USD``, six
significant digits for prices, two decimals for R and %, and labels in plain words."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from analytics.tests.factories import (
    GuardDecisionFactory,
    PaperTradeFactory,
    ShadowTradeFactory,
    SignalFactory,
    StrategyConfigFactory,
)
from markets.admin_format import compact, money, price, two
from signals.models import GuardDecision, SignalState

pytestmark = pytest.mark.django_db

# Twelve decimals as the columns store them (e.g. 1234.567890000000).
RAW_DECIMAL = re.compile(r"\d\.\d{10,}")
MINUS = "\N{MINUS SIGN}"


def outcome(pnl: str) -> dict[str, Decimal]:
    return {
        "quantity": Decimal("0.016573426011"),
        "entry_price": Decimal("60337.123456789012"),
        "exit_price": Decimal("61000.987654321098"),
        "fees": Decimal("2.004567890123"),
        "pnl": Decimal(pnl),
        "return_pct": Decimal("1.234567890123"),
        "r_multiple": Decimal("-0.987654321098"),
        "mae": Decimal("-0.456789012345"),
        "mfe": Decimal("2.345678901234"),
    }


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "x")
    client.force_login(user)
    return client


@pytest.fixture
def trades():
    strategy = StrategyConfigFactory(symbol="BTC/USD")
    blocked = SignalFactory(
        strategy_config=strategy,
        state=SignalState.BLOCKED,
        entry_price=Decimal("60321.987654321098"),
        stop_loss=Decimal("59123.456789012345"),
        take_profit=Decimal("0.000123456789"),
    )
    GuardDecisionFactory(
        signal=blocked,
        guard="daily_loss_limit",
        verdict=GuardDecision.Verdict.BLOCK,
        observed_value=Decimal("151.237000000000"),
        threshold=Decimal("150.000000000000"),
    )
    shadow = ShadowTradeFactory(signal=blocked, **outcome("-1234.565000000001"))
    closed = SignalFactory(strategy_config=strategy, book=blocked.book, state=SignalState.CLOSED)
    paper = PaperTradeFactory(signal=closed, **outcome("1234.567890123456"))
    return {"signal": blocked, "shadow": shadow, "paper": paper}


def page(admin_client, url: str) -> str:
    response = admin_client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_formatting_rules():
    assert money(Decimal("1234.565")) == "1,234.57"
    assert money(Decimal("-1234.5649"), "USD") == f"{MINUS}1,234.56 USD"
    assert money(None, "USD") == "\N{EN DASH}"
    assert price(Decimal("30163.7312"), "USD") == "30,163.73 USD"
    assert price(Decimal("0.000123456789")) == "0.000123457"
    assert price(Decimal("2.5")) == "2.50000"
    assert two(Decimal("-0.987654"), "R") == f"{MINUS}0.99 R"
    assert compact(Decimal("240.000000000000"), "minutes") == "240 minutes"
    assert compact(Decimal("4.500000000000"), "%") == "4.5 %"


def test_paper_trade_changelist_and_change_page_show_dollars_to_the_cent(admin_client, trades):
    listing = page(admin_client, reverse("admin:signals_papertrade_changelist"))
    assert "1,234.57 USD" in listing
    assert "P&amp;L" in listing and "R multiple" in listing
    assert f"{MINUS}0.99 R" in listing
    assert not RAW_DECIMAL.search(listing)

    detail = page(
        admin_client, reverse("admin:signals_papertrade_change", args=[trades["paper"].pk])
    )
    for text in (
        "1,234.57 USD",  # P&L
        "2.00 USD",  # fees
        "60,337.12 USD",  # entry price: six significant digits, two decimals at least
        "61,000.99 USD",
        "0.0165734",  # quantity
        "1.23 %",
        f"{MINUS}0.46 %",
        "2.35 %",
        "Max adverse excursion",
        "Max favourable excursion",
        "Entry price",
        "P&amp;L",
    ):
        assert text in detail, text
    assert ">Pnl<" not in detail and ">Mae<" not in detail
    assert not RAW_DECIMAL.search(detail)


def test_shadow_trade_changelist_and_change_page_show_a_loss_in_dollars(admin_client, trades):
    listing = page(admin_client, reverse("admin:shadow_shadowtrade_changelist"))
    assert f"{MINUS}1,234.57 USD" in listing
    assert not RAW_DECIMAL.search(listing)
    detail = page(
        admin_client, reverse("admin:shadow_shadowtrade_change", args=[trades["shadow"].pk])
    )
    assert f"{MINUS}1,234.57 USD" in detail
    assert "Max adverse excursion" in detail
    assert not RAW_DECIMAL.search(detail)


def test_signal_pages_show_prices_decisions_and_the_paper_trade_readably(admin_client, trades):
    listing = page(admin_client, reverse("admin:signals_signal_changelist"))
    assert "60,321.99 USD" in listing
    assert not RAW_DECIMAL.search(listing)

    detail = page(admin_client, reverse("admin:signals_signal_change", args=[trades["signal"].pk]))
    assert "60,321.99 USD" in detail  # entry price
    assert "59,123.46 USD" in detail  # stop loss
    assert "0.000123457 USD" in detail  # take profit, six significant digits
    assert "151.24 USD" in detail and "150.00 USD" in detail  # a money guard's values
    assert not RAW_DECIMAL.search(detail)

    closed = trades["paper"].signal
    with_paper = page(admin_client, reverse("admin:signals_signal_change", args=[closed.pk]))
    assert "1,234.57 USD" in with_paper and "Max favourable excursion" in with_paper
    assert not RAW_DECIMAL.search(with_paper)


def test_money_columns_still_sort_by_the_stored_value(admin_client, trades):
    url = reverse("admin:signals_papertrade_changelist")
    other = PaperTradeFactory(
        signal=SignalFactory(
            strategy_config=trades["paper"].signal.strategy_config,
            book=trades["paper"].book,
            state=SignalState.CLOSED,
        ),
        **outcome("-5.000000000000"),
    )
    # list_display: id, signal, side, status, exit_reason, pnl_display (index 5)
    ascending = admin_client.get(url, {"o": "5"})
    assert ascending.status_code == 200
    pks = [row.pk for row in ascending.context["cl"].result_list]
    assert pks == [other.pk, trades["paper"].pk]
    descending = admin_client.get(url, {"o": "-5"})
    assert [row.pk for row in descending.context["cl"].result_list] == pks[::-1]
