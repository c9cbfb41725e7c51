"""Paper balance running out is visible: the signals that failed for lack of it are
counted on the summary and on pipeline health (pages and JSON twins), and the guard page
says how many of each guard's passed signals it touched."""

from decimal import Decimal

import pytest
from django.urls import reverse

from analytics.paper_balance import balance_failures
from analytics.tests.factories import replay_testex
from signals.models import Book, Signal, SignalState
from signals.tests.candles import store_walk

pytestmark = pytest.mark.django_db


def api(client, page: str, book: Book, **params) -> dict:
    response = client.get(reverse("analytics:api-page", args=[page]), {"book": book.pk, **params})
    assert response.status_code == 200, response.content
    return response.json()["data"]


def html(client, name: str, book: Book) -> str:
    response = client.get(reverse(f"analytics:{name}"), {"book": book.pk})
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def short_book(settings) -> Book:
    """A replay whose paper balance (1,030 USD for 1,000 USD trades) runs out once its
    losses pass 30 USD: every approved signal after that fails."""
    settings.PAPER_BALANCE = Decimal("1030")
    store_walk(600, seed=11)
    replay_testex()
    return Book.objects.get(kind=Book.Kind.REPLAY)


def test_the_count_is_every_signal_that_failed_for_lack_of_balance(short_book):
    failed = Signal.objects.filter(book=short_book, state=SignalState.FAILED)
    assert failed.count() > 0
    total, _ = balance_failures(book=short_book)
    assert total.count == failed.count()
    times = sorted(failed.values_list("candle_time", flat=True))
    assert (total.first, total.last) == (times[0], times[-1])


def test_the_summary_and_health_show_it(trader_client, short_book):
    count = Signal.objects.filter(book=short_book, state=SignalState.FAILED).count()
    summary = api(trader_client, "summary", short_book)
    assert summary["paper_balance"]["failed"] == count
    week = next(p for p in summary["periods"] if p["period"] == "30d")
    in_window = Signal.objects.filter(
        book=short_book, state=SignalState.FAILED, candle_time__gte=week["since"]
    ).count()
    assert week["balance_failed"] == in_window
    assert f"<strong>{count}</strong> approved signals failed for lack of it" in html(
        trader_client, "summary", short_book
    )

    health = api(trader_client, "health", short_book)
    assert health["paper_balance"]["failed"] == count
    page = html(trader_client, "health", short_book)
    assert f'data-failed="{count}"' in page
    assert "failed for lack of paper balance" in page


def test_each_guard_says_how_many_of_its_passed_signals_failed(trader_client, short_book):
    count = Signal.objects.filter(book=short_book, state=SignalState.FAILED).count()
    guards = api(trader_client, "guards", short_book)["guards"]
    assert guards
    # A failed signal was approved: every guard let it through.
    assert {g["name"]: g["balance_failed"] for g in guards} == {g["name"]: count for g in guards}
    assert f"{count} passed, not paid" in html(trader_client, "guards", short_book)


def test_a_book_whose_balance_never_ran_short_shows_none(trader_client, settings):
    settings.PAPER_BALANCE = Decimal("1000000")
    store_walk(600, seed=11)
    replay_testex()
    book = Book.objects.get(kind=Book.Kind.REPLAY)
    assert api(trader_client, "summary", book)["paper_balance"]["failed"] == 0
    assert "failed for lack of it" not in html(trader_client, "summary", book)
    assert api(trader_client, "health", book)["paper_balance"]["failed"] == 0
