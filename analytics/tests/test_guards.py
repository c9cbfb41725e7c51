"""The guard effectiveness page and its JSON variant."""

import pytest
from django.urls import reverse

from analytics.tests.factories import BookFactory, CandleFactory, decided_signal
from markets.models import Candle

pytestmark = pytest.mark.django_db

URL = reverse("analytics:guard-effectiveness")
JSON_URL = reverse("analytics:guard-effectiveness-json")


@pytest.fixture
def book():
    """max_open_positions blocks five losers (saves money); cooldown blocks two winners."""
    book = BookFactory(name="guards replay")
    for pnl in ("-10", "-12", "-8", "-11", "-9"):
        decided_signal(
            book, blocked_by=["max_open_positions"], passed_by=["cooldown_after_stop"], pnl=pnl
        )
    for pnl in ("4", "6"):
        decided_signal(
            book, blocked_by=["cooldown_after_stop"], passed_by=["max_open_positions"], pnl=pnl
        )
    return book


def test_anonymous_visitor_is_sent_to_the_admin_login(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_it_shows_each_guard_with_its_numbers_and_verdict(trader_client, book):
    response = trader_client.get(URL, {"book": book.pk})

    assert response.status_code == 200
    html = response.content.decode()
    assert "Reading book <strong>guards replay</strong>" in html
    effects = {effect.guard: effect for effect in response.context["effects"]}
    assert effects["max_open_positions"].blocked == 5
    assert effects["max_open_positions"].outcome.verdict == "saves money"
    assert effects["cooldown_after_stop"].outcome.too_few_samples
    # Net impact of max_open_positions: 50; CI of the mean 10 +- 1.96.
    assert "50.00" in html
    assert "[8.04, 11.96]" in html
    assert "-10.00" in html
    assert "saves money" in html
    assert "inconclusive" in html
    assert "fewer than 5 closed shadow trades" in html


def test_it_draws_the_net_impact_chart_inline(trader_client, book):
    html = trader_client.get(URL).content.decode()

    assert "<svg" in html
    assert html.count('class="bar-pos"') == 1
    assert html.count('class="bar-neg"') == 1
    assert '<script src="http' not in html, "scripts come from our own static files"
    assert "http://" not in html
    assert "https://" not in html


def test_an_unknown_book_is_not_found(trader_client, book):
    assert trader_client.get(URL, {"book": book.pk + 1000}).status_code == 404
    assert trader_client.get(JSON_URL, {"book": "x"}).status_code == 404


def test_synthetic_candles_get_a_badge(trader_client, book):
    CandleFactory(source=Candle.Source.SYNTHETIC)

    assert "synthetic data" in trader_client.get(URL).content.decode()


def test_a_book_without_decisions_says_so(trader_client):
    book = BookFactory()
    decided_signal(book, pnl="1", group="control")

    html = trader_client.get(URL, {"book": book.pk}).content.decode()

    assert "No guard decisions in this book yet" in html


def test_without_books_it_tells_how_to_replay(trader_client):
    html = trader_client.get(URL).content.decode()

    assert "python manage.py replay" in html


def test_json_has_money_as_decimal_strings(trader_client, book):
    response = trader_client.get(JSON_URL, {"book": book.pk})

    assert response.status_code == 200
    data = response.json()
    assert data["book"] == {"id": book.pk, "name": "guards replay", "kind": "replay"}
    assert data["synthetic"] is False
    by_guard = {row["guard"]: row for row in data["guards"]}
    max_open = by_guard["max_open_positions"]
    assert max_open["blocked"] == 5
    assert max_open["outcome"]["verdict"] == "saves money"
    assert max_open["outcome"]["evaluated"] == 5
    assert max_open["outcome"]["win_rate"] == 0
    assert float(max_open["outcome"]["net_impact"]) == 50
    assert float(max_open["outcome"]["ci_low"]) == pytest.approx(8.0368, abs=1e-4)
    # Money to the cent, per-trade figures to four places: never 28 digits.
    assert max_open["outcome"]["net_impact"] == "50.00"
    assert len(max_open["outcome"]["ci_low"].split(".")[1]) == 4
    assert data["currency"] == "USD"


def test_json_without_books(trader_client):
    assert trader_client.get(JSON_URL).json() == {"book": None, "synthetic": False, "guards": []}


def test_json_answers_errors_as_json(trader_client, book):
    from django.test import Client

    anonymous = Client().get(JSON_URL)
    assert anonymous.status_code == 401
    assert anonymous["Content-Type"] == "application/json"
    assert "authentication required" in anonymous.json()["error"]
    for bad in ("999999", "²", "abc"):
        missing = trader_client.get(JSON_URL, {"book": bad})
        assert missing.status_code == 404
        assert missing.json()["error"].startswith("no book with id")


def test_a_book_id_that_is_not_a_number_is_not_found(trader_client):
    assert trader_client.get(URL, {"book": "²"}).status_code == 404
