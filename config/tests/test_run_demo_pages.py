"""What the demo's pages answer like production: the API's JSON 405 to a logged-in POST
or DELETE (not the CSRF check's HTML page), and a period outside the data that says why
it is empty."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from signals.models import Book
from signals.tests.candles import MARKET, store_walk


@pytest.fixture
def logged_in() -> Client:
    client = Client(enforce_csrf_checks=True)
    user = get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-Long-9931")
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/summary/", "/api/v1/guards/", "/api/v1/"])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_api_answers_json_405_to_every_writing_method_without_a_csrf_token(
    logged_in, path, method
):
    response = getattr(logged_in, method)(path)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "read-only API: use GET"


@pytest.mark.django_db
def test_an_unknown_api_address_answers_json_404_to_a_post(logged_in):
    response = logged_in.post("/api/v2/nothing/")
    assert response.status_code == 404
    assert response.json()["error"].startswith("no API endpoint")


@pytest.mark.django_db
def test_a_period_outside_the_data_says_why_it_is_empty(logged_in):
    store_walk(300, seed=4)
    call_command(
        "replay",
        "--exchange",
        MARKET["exchange"],
        "--symbol",
        MARKET["symbol"],
        "--timeframe",
        MARKET["timeframe"],
        "--book",
        "base",
        "--no-progress",
        stdout=StringIO(),
    )
    book = Book.objects.get(name="base")
    end = f"{book.until:%Y-%m-%d %H:%M}"
    for path in ("/", "/trading/", "/guards/"):
        after = logged_in.get(path, {"book": book.pk, "since": "2099-01-01"}).content.decode()
        assert f"No candles after 2099-01-01: the data end {end} UTC." in after
        before = logged_in.get(path, {"book": book.pk, "until": "2000-01-01"}).content.decode()
        assert "No candles up to 2000-01-01: the data start " in before
        inside = logged_in.get(path, {"book": book.pk}).content.decode()
        assert "No candles" not in inside
