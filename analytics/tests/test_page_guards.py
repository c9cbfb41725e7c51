"""The guard effectiveness page (/guards/) and its JSON twin (/api/v1/guards/)."""

import json
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.urls import reverse

from analytics.templatetags.trader import signed_money
from analytics.tests.factories import BookFactory, decided_signal
from shadow.models import ShadowTrade

pytestmark = pytest.mark.django_db

URL = reverse("analytics:guards")
API = reverse("analytics:api-page", args=["guards"])
MAX_OPEN = "max_open_positions"
COOLDOWN = "cooldown_after_stop"


@pytest.fixture
def book():
    """max_open_positions blocks five losers (saves money); cooldown blocks two winners."""
    book = BookFactory(name="guards replay")
    for pnl in ("-10", "-12", "-8", "-11", "-9"):
        decided_signal(book, blocked_by=[MAX_OPEN], passed_by=[COOLDOWN], pnl=pnl)
    for pnl in ("4", "6"):
        decided_signal(book, blocked_by=[COOLDOWN], passed_by=[MAX_OPEN], pnl=pnl)
    return book


def test_it_shows_each_guard_with_its_verdict_and_interval(trader_client, book):
    response = trader_client.get(URL, {"book": book.pk})

    assert response.status_code == 200
    html = response.content.decode()
    guards = {guard["name"]: guard for guard in response.context["data"]["guards"]}
    # Five of seven signals, the five losers: 1 in C(7, 5) = 21 random blocks does as
    # well (p about 0.048), and judged beside cooldown (q = 2 p) that is not skill.
    mine = guards[MAX_OPEN]["any"]
    assert mine["verdict"] == "saves money only by trading less"
    assert mine["t_verdict"] == "saves money"
    assert mine["p_value"] == pytest.approx(1 / 21, abs=0.012)
    # Each rounded to three places on its own: q is twice p give or take that rounding.
    assert mine["q_value"] == pytest.approx(2 * mine["p_value"], abs=1.5e-3)
    assert guards[COOLDOWN]["any"]["too_few_samples"]
    assert guards[COOLDOWN]["any"]["verdict"] == "not enough data"
    # Pool of 7 closed trades, -40 in all: blocking 5 average ones saves 28.57; the
    # choice of the five losers the remaining 21.43.
    assert (mine["net_impact"], mine["volume"], mine["selection"]) == (
        Decimal("50.00"),
        Decimal("28.57"),
        Decimal("21.43"),
    )
    # Net impacts 10, 12, 8, 11, 9: mean 10, 95 % t interval 10 +- 1.963 (the reference).
    assert "+50.00 USD" in html
    assert "[+8.04, +11.96]" in html
    assert "\N{MINUS SIGN}10.00 USD" in html  # cooldown's net impact: it cost money
    assert "saves money only by trading less" in html and "not enough data" in html
    assert "The strategies lose money on average" in html
    assert "fewer than 5 closed shadow trades" in html
    assert "positive means blocking them saved money" in html
    assert 'data-chart="guard-net-impact"' in html
    assert 'style="' not in html


def test_the_twin_returns_what_the_page_shows(trader_client, replayed_book):
    page = trader_client.get(URL, {"book": replayed_book.pk})
    twin = trader_client.get(API, {"book": replayed_book.pk}).json()

    assert twin["data"] == json.loads(json.dumps(page.context["data"], cls=DjangoJSONEncoder))
    html = page.content.decode()
    currency = twin["book"]["currency"]
    for guard in twin["data"]["guards"]:
        assert signed_money(guard["any"]["net_impact"], currency) in html
        assert signed_money(guard["sole"]["net_impact"], currency) in html
        assert guard["any"]["verdict"] in html
    chart = twin["data"]["chart"]
    assert chart["kind"] == "barh"
    assert chart["series"][0]["tone"] == "signed"
    assert chart["series"][0]["values"] == [
        float(guard["any"]["net_impact"]) for guard in twin["data"]["guards"]
    ]


def test_money_is_rounded_for_readers(trader_client, book):
    guards = {
        g["name"]: g for g in trader_client.get(API, {"book": book.pk}).json()["data"]["guards"]
    }

    outcome = guards[MAX_OPEN]["any"]
    assert outcome["net_impact"] == "50.00"
    # Per-trade money to the cent too (it read 8.0368 when per-trade figures had four places).
    assert outcome["t_low"] == "8.04"
    # Five trades: the bootstrap alone would be too narrow (ADR 0012); the verdict's
    # interval is never narrower than Student t.
    assert Decimal(outcome["ci_low"]) <= Decimal(outcome["t_low"])
    assert Decimal(outcome["ci_high"]) >= Decimal(outcome["t_high"])
    assert outcome["win_rate"] == 0


def test_the_same_page_twice_gives_the_same_interval(trader_client, replayed_book):
    first = trader_client.get(API, {"book": replayed_book.pk}).json()["data"]["guards"]
    second = trader_client.get(API, {"book": replayed_book.pk}).json()["data"]["guards"]

    assert [(g["any"]["ci_low"], g["any"]["ci_high"]) for g in first] == [
        (g["any"]["ci_low"], g["any"]["ci_high"]) for g in second
    ]


def test_filters_narrow_the_figures(trader_client, replayed_book):
    def blocked(**params):
        data = trader_client.get(API, {"book": replayed_book.pk, **params}).json()["data"]
        return sum(guard["blocked"] for guard in data["guards"])

    everything = blocked()
    assert everything > 0
    assert 0 < blocked(period="7d") < everything
    assert blocked(symbol="BTC/USD") == everything
    assert blocked(symbol="ETH/USD") == 0
    assert blocked(strategy="no such strategy") == 0


def test_the_page_form_offers_period_strategy_and_symbol(trader_client, book):
    html = trader_client.get(URL, {"book": book.pk}).content.decode()

    assert 'name="period"' in html and 'name="strategy"' in html and 'name="symbol"' in html
    assert 'name="side"' not in html


def grow(book, n):
    for i in range(n):
        decided_signal(
            book,
            blocked_by=[MAX_OPEN] if i % 3 else [MAX_OPEN, COOLDOWN],
            passed_by=[] if i % 3 == 0 else [COOLDOWN],
            pnl=str(i - 5),
            status=ShadowTrade.Status.CLOSED if i % 4 else ShadowTrade.Status.OPEN,
        )


def test_the_page_issues_a_fixed_number_of_queries(
    trader_client, django_assert_num_queries, settings
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from shadow import rollups

    book = BookFactory()
    grow(book, 3)
    # Rows written outside the engine: rebuild the rollups, as the first read would.
    rollups.ensure_built(book.pk)
    with CaptureQueriesContext(connection) as small:
        assert trader_client.get(URL, {"book": book.pk}).status_code == 200
    grow(book, 30)
    rollups.ensure_built(book.pk)
    with django_assert_num_queries(len(small)):
        assert trader_client.get(URL, {"book": book.pk}).status_code == 200
    # 26, and 2 for the reader's permissions (the user's own and their groups').
    assert len(small) <= 28


def test_a_book_without_decisions_says_so(trader_client):
    book = BookFactory()
    decided_signal(book, pnl="1", group="control")

    html = trader_client.get(URL, {"book": book.pk}).content.decode()

    assert "No guard decisions in this book yet" in html


def test_without_books_it_tells_how_to_replay(trader_client):
    assert "python manage.py replay" in trader_client.get(URL).content.decode()


def test_the_old_json_address_redirects_to_the_twin_keeping_the_query(trader_client, book):
    response = trader_client.get("/guards.json", {"book": book.pk})

    assert response.status_code == 301
    assert response["Location"] == f"/api/v1/guards/?book={book.pk}"


def test_an_unknown_book_is_not_found(trader_client, book):
    assert trader_client.get(URL, {"book": book.pk + 1000}).status_code == 404
    assert trader_client.get(API, {"book": "x"}).status_code == 404
