"""The page framework: every page renders behind the login and its JSON twin answers
the same data, with JSON errors and proper status codes."""

import pytest
from django.urls import reverse

from analytics.pages import load_pages

PAGES = sorted(load_pages())
pytestmark = pytest.mark.django_db


def test_every_page_redirects_an_anonymous_visitor_to_the_login(client):
    for name in PAGES:
        response = client.get(reverse(f"analytics:{name}"))
        assert response.status_code == 302, name
        assert response["Location"].startswith("/login/?next=")


def test_the_api_answers_an_anonymous_client_401_in_json(client):
    for url in [reverse("analytics:api-index")] + [
        reverse("analytics:api-page", args=[name]) for name in PAGES
    ]:
        response = client.get(url)
        assert response.status_code == 401, url
        assert response["Content-Type"] == "application/json"
        assert "log in" in response.json()["error"]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_and_its_twin_read_the_same_book(trader_client, replayed_book, name):
    page = trader_client.get(reverse(f"analytics:{name}"), {"book": replayed_book.pk})
    assert page.status_code == 200
    twin = trader_client.get(reverse("analytics:api-page", args=[name]), {"book": replayed_book.pk})
    assert twin.status_code == 200
    body = twin.json()
    assert body["api_version"] == 1
    assert body["page"] == name
    assert body["book"]["id"] == replayed_book.pk
    assert body["book"]["currency"] == "USD"
    assert body["book"]["synthetic"] is True  # store_walk generates its candles
    assert body["filters"]["book"] == replayed_book.pk


def test_api_errors_are_json_with_their_status(trader_client, replayed_book):
    api = reverse("analytics:api-page", args=["summary"])
    missing = trader_client.get(api, {"book": "999999"})
    assert missing.status_code == 404 and "999999" in missing.json()["error"]
    superscript = trader_client.get(api, {"book": "²"})
    assert superscript.status_code == 404
    bad_period = trader_client.get(api, {"period": "fortnight"})
    assert bad_period.status_code == 400
    assert bad_period.json()["parameter"] == "period"
    bad_date = trader_client.get(api, {"since": "2024-13-45"})
    assert bad_date.status_code == 400 and "YYYY-MM-DD" in bad_date.json()["error"]
    assert trader_client.get(api, {"side": "sideways"}).status_code == 400
    assert trader_client.get(api, {"page": "0"}).status_code == 400
    blocked = reverse("analytics:api-page", args=["blocked"])
    for name, cursor in (("after", "x1"), ("before", "-3"), ("after", "9" * 20)):
        bad_cursor = trader_client.get(blocked, {name: cursor})
        assert bad_cursor.status_code == 400, (name, cursor)
        assert bad_cursor.json()["parameter"] == name
        assert "is not a signal id" in bad_cursor.json()["error"]
    assert trader_client.get(blocked, {"after": "123456789"}).status_code == 200  # gone: by page
    assert trader_client.post(api).status_code == 405
    unknown = trader_client.get(reverse("analytics:api-page", args=["nope"]))
    assert unknown.status_code == 404 and "summary" in unknown.json()["pages"]
    stray = trader_client.get("/api/v2/summary/")
    assert stray.status_code == 404 and stray["Content-Type"] == "application/json"


def test_a_bad_filter_on_a_page_says_which_and_answers_400(trader_client, replayed_book):
    response = trader_client.get(reverse("analytics:leaderboard"), {"period": "fortnight"})
    assert response.status_code == 400
    assert b"fortnight" in response.content and b"period" in response.content
    assert trader_client.get(reverse("analytics:leaderboard"), {"book": "x"}).status_code == 404


def test_the_index_lists_every_page(trader_client):
    body = trader_client.get(reverse("analytics:api-index")).json()
    assert set(body["pages"]) == set(PAGES)
    assert body["pages"]["summary"] == "/api/v1/summary/"


def test_periods_end_at_the_books_clock(trader_client, replayed_book):
    from markets.models import Candle
    from signals.models import Signal

    last_signal = Signal.objects.filter(book=replayed_book).latest("candle_time").candle_time
    # The clock is the last candle replayed, not the last signal's (issue 12 #11).
    last = Candle.objects.latest("open_time").open_time
    assert last == replayed_book.until > last_signal
    body = trader_client.get(
        reverse("analytics:api-page", args=["leaderboard"]),
        {"book": replayed_book.pk, "period": "7d"},
    ).json()
    assert body["book"]["clock"].startswith(last.isoformat()[:19])
    assert body["filters"]["period"] == "7d"
    assert body["filters"]["since"] is not None


def test_rendered_fragments_are_keyed_by_the_payload_and_the_query():
    from analytics.api import fragment_key
    from analytics.pages import PAGES

    page = PAGES["opportunity"]
    payload = {"data": {"total": "1.00"}, "book": {"id": 1}}
    key = fragment_key(page, payload, "book=1")
    assert key == fragment_key(page, {**payload}, "book=1")
    assert key != fragment_key(page, {**payload, "data": {"total": "1.01"}}, "book=1")
    assert key != fragment_key(page, payload, "book=1&period=7d")
    assert key != fragment_key(PAGES["learning"], payload, "book=1")


def test_a_page_shows_new_figures_after_its_fragment_was_cached(trader_client, replayed_book):
    from shadow.models import ShadowTrade

    url = reverse("analytics:opportunity")
    first = trader_client.get(url, {"book": replayed_book.pk}).content.decode()
    trade = ShadowTrade.objects.filter(book=replayed_book, group="blocked", status="closed").first()
    trade.pnl += 1000
    trade.save(update_fields=["pnl"])
    second = trader_client.get(url, {"book": replayed_book.pk}).content.decode()
    assert first != second, "the rendered fragment follows the figures"
