"""Every filter parameter of every page and its JSON twin answers 200 or a clear 4xx
(JSON for the API), whatever it holds: dates at the calendar's ends, NUL characters, huge
integers, long strings, text of any script. Property-based (Hypothesis) over the page
registry (``analytics.pages``), logged in, through Django's test client."""

from dataclasses import replace
from datetime import date

import pytest
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.filters import NAMES, OUTCOMES, PERIODS, SIDES
from analytics.pages import load_pages

PAGES = sorted(load_pages())
# Every filter the pages read (a new one is fuzzed too).
PARAMETERS = NAMES
BOOK = "<the replayed book>"  # replaced by its id: the strategies are built before the fixture

pytestmark = pytest.mark.django_db

# The values that broke pages before (issue 13): kept as regressions, drawn often too.
EDGES = [
    "9999-12-31",
    "0001-01-01",
    "9999-12-30",
    "\x00",
    "BTC/USD\x00",
    "9" * 30,
    "9" * 5000,
    "9223372036854775807",
    "9223372036854775808",
    "0" * 5000 + "1",
    "-1",
    "0",
    "1e400",
    "²",
    "x" * 10_000,
    " ",
    BOOK,
]
KNOWN = {
    "period": sorted(PERIODS),
    "side": list(SIDES),
    "outcome": list(OUTCOMES),
    "book": [BOOK],
    "compare": [BOOK],
    "symbol": ["BTC/USD"],
    "sort": ["-pnl", "pnl", "candle", "-signal"],
}

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
value = st.one_of(
    st.sampled_from(EDGES),
    st.dates(min_value=date.min, max_value=date.max).map(date.isoformat),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    text,
    st.sampled_from(sorted({v for values in KNOWN.values() for v in values})),
)
queries = st.dictionaries(st.sampled_from(PARAMETERS), value, max_size=4)


def _get(client, url: str, query: dict[str, str]):
    # Its own savepoint: a database error in one request must not abort the test's
    # transaction and fail every request after it.
    with transaction.atomic():
        return client.get(url, query)


def check(client, name: str, query: dict[str, str], book_id: int) -> None:
    query = {key: str(book_id) if v == BOOK else v for key, v in query.items()}
    html = _get(client, reverse(f"analytics:{name}"), query)
    assert html.status_code in (200, 400, 404), (name, query, html.status_code)
    twin = _get(client, reverse("analytics:api-page", args=[name]), query)
    assert twin.status_code in (200, 400, 404), (name, query, twin.status_code)
    assert twin["Content-Type"] == "application/json"
    body = twin.json()
    if twin.status_code != 200:
        assert body["error"], body
        if twin.status_code == 400:
            assert body["parameter"] in PARAMETERS
    # The page and its twin agree on whether the query is usable.
    assert html.status_code == twin.status_code, (name, query)


@pytest.fixture
def fuzz_client(trader_client):
    trader_client.raise_request_exception = False  # a 500 is an answer to check, not a crash
    return trader_client


@pytest.mark.parametrize(
    "query",
    [
        {"until": "9999-12-31"},
        {"since": "9999-12-31", "until": "9999-12-31"},
        {"since": "0001-01-01", "until": "0001-01-01"},
        {"strategy": "a\x00b"},
        {"symbol": "BTC/USD\x00"},
        {"page": "9" * 30},
        {"page": "9" * 5000},
        {"book": "9" * 30},
        {"compare": "9" * 5000},
        {"period": "x" * 10_000},
    ],
    ids=lambda query: ",".join(f"{k}={v[:12]!r}" for k, v in query.items()),
)
def test_it_answers_the_values_that_once_broke_every_page(fuzz_client, replayed_book, query):
    for name in PAGES:
        check(fuzz_client, name, query, replayed_book.pk)


def test_it_reads_until_the_calendars_last_day_as_no_end(fuzz_client, replayed_book):
    body = fuzz_client.get(
        reverse("analytics:api-page", args=["summary"]),
        {"book": replayed_book.pk, "since": "2000-01-01", "until": "9999-12-31"},
    ).json()
    assert body["filters"]["since"].startswith("2000-01-01")
    assert body["filters"]["until"] is None
    assert body["period_label"] == "chosen dates"


def test_it_says_which_parameter_holds_a_nul(fuzz_client, replayed_book):
    response = fuzz_client.get(reverse("analytics:api-page", args=["trading"]), {"symbol": "B\x00"})
    assert response.status_code == 400
    assert response.json()["parameter"] == "symbol"
    assert "NUL" in response.json()["error"]


def test_an_api_fault_answers_json_500(fuzz_client, replayed_book, monkeypatch):
    from analytics.pages import PAGES as REGISTRY

    def broken(filters):
        raise RuntimeError("a bug in a page")

    # A page whose build fails (the one place a stand-in is the point: no page of ours
    # should fail, and the twin's answer to one that does is what is tested).
    monkeypatch.setitem(REGISTRY, "opportunity", replace(REGISTRY["opportunity"], build=broken))
    response = fuzz_client.get(
        reverse("analytics:api-page", args=["opportunity"]), {"book": replayed_book.pk}
    )
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert "internal error" in response.json()["error"]


@pytest.mark.reliability(
    fault="fuzzed query parameters on every page and API twin (calendar ends, NUL bytes, huge integers, long strings)",
    expected="200 or a clear 4xx naming the parameter (JSON for the API), never a 500",
)
@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=st.sampled_from(PAGES), query=queries)
def test_every_parameter_of_every_page_answers_200_or_a_clear_4xx(
    fuzz_client, replayed_book, name, query, reliability
):
    check(fuzz_client, name, query, replayed_book.pk)
    reliability.observed("every answer 200 or a 4xx naming the parameter", lost=0, duplicated=0)
