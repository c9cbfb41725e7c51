"""Sorting the paginated tables on the server (``analytics.sorting``): the Trading page's
trades and the blocked signals sort over every row the filters keep, page by page, on
the page and its JSON twin alike; the URL keeps the sort; a bad ``sort`` is a 400 that
names the parameter."""

from decimal import Decimal

import pytest
from django.urls import reverse

from shadow.models import ShadowTrade
from signals.models import PaperTrade, Signal, SignalState

pytestmark = pytest.mark.django_db

TRADING = reverse("analytics:trading")
TRADING_TWIN = reverse("analytics:api-page", args=["trading"])
BLOCKED = reverse("analytics:blocked")
BLOCKED_TWIN = reverse("analytics:api-page", args=["blocked"])


@pytest.fixture
def small_pages(monkeypatch, settings):
    """Pages of 4 rows, so a few dozen trades fill many pages (and no payload cached
    with the real page size is served)."""
    from analytics.pages import blocked

    settings.PAGE_CACHE = False
    monkeypatch.setattr("analytics.trades.PAGE_SIZE", 4)
    monkeypatch.setattr(blocked, "PAGE_SIZE", 4)


def walk(client, url, **params):
    """Every row id of every page of ``url``'s twin, in order, and the pages' count."""
    seen, number = [], 1
    while True:
        data = client.get(url, {**params, "page": number}).json()["data"]
        rows = data.get("trades") or data.get("signals") or []
        seen += [row["signal_id"] for row in rows]
        if data["pages"]["next"] is None:
            return seen, number
        number += 1


def by_pnl(trades, *, descending):
    """Trades ordered as documented: P&L (empty last), then id in the same direction."""
    with_pnl = [t for t in trades if t.pnl is not None]
    empty = [t for t in trades if t.pnl is None]
    with_pnl.sort(key=lambda t: (t.pnl, t.pk), reverse=descending)
    empty.sort(key=lambda t: t.pk, reverse=descending)
    return [t.signal_id for t in with_pnl + empty]


def test_it_puts_the_best_trade_of_all_pages_first_on_page_one(
    trader_client, replayed_book, small_pages
):
    trades = list(PaperTrade.objects.filter(book=replayed_book))
    best = max((t for t in trades if t.pnl is not None), key=lambda t: t.pnl)
    unsorted, _ = walk(trader_client, TRADING_TWIN, book=replayed_book.pk)
    assert unsorted.index(best.signal_id) >= 4, "the best trade is not on page 1 unsorted"

    twin = trader_client.get(TRADING_TWIN, {"book": replayed_book.pk, "sort": "-pnl"}).json()
    assert twin["filters"]["sort"] == "-pnl"
    assert twin["data"]["trades"][0]["signal_id"] == best.signal_id
    html = trader_client.get(TRADING, {"book": replayed_book.pk, "sort": "-pnl"}).content.decode()
    first_row = html.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert f"#{best.signal_id}<" in first_row


def test_it_sorts_every_row_once_across_pages_both_ways(trader_client, replayed_book, small_pages):
    trades = list(PaperTrade.objects.filter(book=replayed_book).exclude(status="expired"))
    for sort, descending in (("-pnl", True), ("pnl", False)):
        seen, pages = walk(trader_client, TRADING_TWIN, book=replayed_book.pk, sort=sort)
        assert pages > 2
        kept = [t for t in trades if t.signal_id in set(seen)]
        assert len(seen) == len(set(seen)), "no row on two pages"
        assert seen == by_pnl(kept, descending=descending), sort


def test_the_pager_and_the_headers_keep_the_sort_and_the_filters(
    trader_client, replayed_book, small_pages
):
    data = trader_client.get(
        TRADING_TWIN, {"book": replayed_book.pk, "side": "short", "sort": "-pnl"}
    ).json()["data"]
    assert data["pages"]["next"] == f"book={replayed_book.pk}&side=short&sort=-pnl&page=2"
    links = data["sort_links"]
    assert links["pnl"] == {
        "query": f"book={replayed_book.pk}&side=short&sort=pnl",  # reversed, back to page 1
        "aria_sort": "descending",
    }
    assert links["market"]["query"] == f"book={replayed_book.pk}&side=short&sort=market"
    assert links["exit"]["query"].endswith("sort=-exit")  # time: newest first at first
    html = trader_client.get(
        TRADING, {"book": replayed_book.pk, "side": "short", "sort": "-pnl"}
    ).content.decode()
    assert f'href="?book={replayed_book.pk}&amp;side=short&amp;sort=pnl"' in html
    assert 'aria-sort="descending"' in html
    assert 'class="trades"' in html and "sortable trades" not in html  # no sorting in the page


@pytest.mark.parametrize("url", [TRADING, TRADING_TWIN, BLOCKED, BLOCKED_TWIN])
@pytest.mark.parametrize("bad", ["profit", "--pnl", "pnl;drop", "-", "signal__book__id"])
def test_a_bad_sort_is_a_400_that_names_it(trader_client, replayed_book, url, bad):
    response = trader_client.get(url, {"book": replayed_book.pk, "sort": bad})
    assert response.status_code == 400
    if url.startswith("/api/"):
        body = response.json()
        assert body["parameter"] == "sort"
        assert "sort:" in body["error"] and "-pnl" in body["error"]
    else:
        text = response.content.decode()
        assert "<strong>sort</strong>:" in text and "is not one of" in text


def test_a_page_that_sorts_in_the_browser_ignores_sort(trader_client, replayed_book):
    response = trader_client.get(
        reverse("analytics:api-page", args=["guards"]), {"book": replayed_book.pk, "sort": "x"}
    )
    assert response.status_code == 200
    assert response.json()["filters"]["sort"] is None


def test_the_blocked_signals_sort_by_shadow_pnl_over_all_pages(
    trader_client, replayed_book, small_pages
):
    blocked = Signal.objects.filter(book=replayed_book, state=SignalState.BLOCKED)
    shadows = {
        s.signal_id: s.pnl
        for s in ShadowTrade.objects.filter(signal__in=blocked).only("signal_id", "pnl")
    }
    default, _ = walk(trader_client, BLOCKED_TWIN, book=replayed_book.pk)
    seen, pages = walk(trader_client, BLOCKED_TWIN, book=replayed_book.pk, sort="-pnl")
    assert pages > 2 and sorted(seen) == sorted(default)
    pnls = [shadows.get(i) for i in seen]
    known = [p for p in pnls if p is not None]
    assert known == sorted(known, reverse=True)
    assert pnls[: len(known)] == known, "signals without a shadow P&L come last"
    best = max(known)
    html = trader_client.get(BLOCKED, {"book": replayed_book.pk, "sort": "-pnl"}).content.decode()
    assert f"#{seen[0]}<" in html.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert shadows[seen[0]] == best and best > Decimal(0)


def test_a_list_cut_short_is_not_sorted_in_the_browser(trader_client, monkeypatch, settings):
    """The health page's stuck signals sort in the browser only when all are listed: a
    sort of the oldest 50 of 80 would put a wrong "first" on top."""
    from analytics.tests.factories import BookFactory
    from analytics.tests.test_page_health import HEALTH, get, populate
    from signals.models import Book

    settings.PAGE_CACHE = False
    live = BookFactory(name="live", kind=Book.Kind.LIVE)
    populate(live)  # four stuck signals
    whole = get(trader_client, HEALTH, live).content.decode()
    assert '<table class="sortable health-stuck">' in whole
    monkeypatch.setattr("analytics.pages.health.STUCK_SHOWN", 2)
    cut = get(trader_client, HEALTH, live).content.decode()
    assert "2 of 4 shown" in cut
    assert '<table class="health-stuck">' in cut


def test_the_learning_history_sorts_in_the_browser_only_when_whole(
    trader_client, replayed_book, monkeypatch, settings
):
    from analytics.models import ThresholdRecommendation
    from signals.models import GuardConfig

    settings.PAGE_CACHE = False
    config = GuardConfig.objects.order_by("id").first()
    for value in (4, 5, 6):
        ThresholdRecommendation.objects.create(
            book=replayed_book,
            guard_config=config,
            param="max_open",
            current_value=Decimal(3),
            recommended_value=Decimal(value),
            current_net_impact=Decimal(0),
            recommended_net_impact=Decimal(1),
            samples=100,
            status=ThresholdRecommendation.Status.DISMISSED,
        )
    url = reverse("analytics:learning")
    whole = trader_client.get(url, {"book": replayed_book.pk}).content.decode()
    assert '<table class="sortable learning-history">' in whole
    monkeypatch.setattr("analytics.pages.learning.HISTORY_LIMIT", 2)
    twin = trader_client.get(
        reverse("analytics:api-page", args=["learning"]), {"book": replayed_book.pk}
    ).json()["data"]
    assert len(twin["history"]) == 2 and twin["history_complete"] is False
    cut = trader_client.get(url, {"book": replayed_book.pk}).content.decode()
    assert '<table class="learning-history">' in cut


def test_only_a_column_that_may_be_empty_says_where_its_empty_values_go():
    """``NULLS LAST`` on a column that cannot be NULL would keep PostgreSQL from reading
    the order from an index (the blocked signals' first page sorted every one of them)."""
    from analytics.pages.blocked import SORTS
    from analytics.sorting import ordered

    for sort in ("candle", "-candle", "signal", "-signal", "market"):
        assert "NULLS" not in str(ordered(Signal.objects.all(), sort, SORTS).query), sort
    # The shadow trade's P&L may be empty (an open trade, a signal without one); the id
    # after it may not.
    assert str(ordered(Signal.objects.all(), "-pnl", SORTS).query).count("NULLS LAST") == 1
