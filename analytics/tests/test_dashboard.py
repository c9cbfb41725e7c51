"""The dashboard page: one book's headline numbers."""

from decimal import Decimal

import pytest
from django.urls import reverse

from analytics.tests.factories import BookFactory, CandleFactory, SignalFactory, decided_signal
from markets.models import Candle
from shadow.models import ShadowTrade
from signals.models import SignalState

pytestmark = pytest.mark.django_db

URL = reverse("analytics:dashboard")


@pytest.fixture
def book():
    book = BookFactory(name="btc replay")
    decided_signal(book, blocked_by=["max_open_positions"], pnl="12.5")
    decided_signal(book, blocked_by=["max_open_positions"], pnl="-20")
    decided_signal(book, blocked_by=["max_open_positions"], status=ShadowTrade.Status.OPEN)
    decided_signal(book, passed_by=["max_open_positions"], pnl="3", group="control")
    SignalFactory(book=book, state=SignalState.REJECTED)
    return book


def test_anonymous_visitor_is_sent_to_the_admin_login(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert response.url == f"{reverse('admin:login')}?next={URL}"


def test_it_shows_the_numbers_of_the_default_book(trader_client, book):
    response = trader_client.get(URL)

    assert response.status_code == 200
    assert response.context["book"] == book
    assert response.context["opportunity"].total_pnl == Decimal("-7.5")
    html = response.content.decode()
    assert "Reading book <strong>btc replay</strong>" in html
    # One sign everywhere: the blocked trades lost 7.50, so the guards' net impact is +7.50.
    assert response.context["net_impact"] == Decimal("7.5")
    assert '+7.50<span class="unit"> USD</span>' in html
    assert "Guards&#x27; net impact" in html or "Guards' net impact" in html
    assert response.context["summary"].blocked == 3
    assert response.context["summary"].rejected == 1
    assert f"{reverse('analytics:guard-effectiveness')}?book={book.pk}" in html
    assert "synthetic data" not in html


def test_it_reads_the_book_asked_for(trader_client, book):
    other = BookFactory(name="eth replay")
    SignalFactory(book=other)

    default = trader_client.get(URL)
    asked = trader_client.get(URL, {"book": book.pk})

    assert default.context["book"] == other
    assert asked.context["book"] == book


@pytest.mark.parametrize("book_id", ["999999", "abc", "-1", "1.5"])
def test_an_unknown_book_is_not_found(trader_client, book, book_id):
    assert trader_client.get(URL, {"book": book_id}).status_code == 404


def test_synthetic_candles_get_a_badge(trader_client, book):
    CandleFactory(source=Candle.Source.SYNTHETIC)

    html = trader_client.get(URL).content.decode()

    assert "synthetic data" in html


def test_without_books_it_tells_how_to_replay(trader_client):
    response = trader_client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "There is no book yet" in html
    assert "python manage.py replay" in html


def test_with_only_empty_books_it_still_explains(trader_client):
    BookFactory(name="fresh")

    html = trader_client.get(URL).content.decode()

    assert "None of the books has any signals yet" in html
    assert "fresh" in html
