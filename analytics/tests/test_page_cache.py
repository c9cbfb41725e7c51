"""The page frame's cost and the page cache: the frame reads a fixed number of index-backed
queries whatever the book's size; a cached payload equals a cold build; a write to the
book (the live path's revision bump, a new replay, a signal written any other way, a
configuration change) is seen by the very next request."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analytics import page_cache, stamps
from analytics.api import API_VERSION, book_meta, build_payload, page_payload
from analytics.filters import parse_filters
from analytics.pages import PAGES, load_pages
from analytics.selectors import books
from markets.services import candles_upsert
from markets.synthetic import synthetic_bars
from shadow.live import book_advance
from signals.models import Book, BookStrategy, Signal, StrategyConfig
from signals.services import book_configure, book_live, guard_configs_default
from signals.tests.factories import BookFactory, SignalFactory, StrategyConfigFactory

pytestmark = pytest.mark.django_db
load_pages()
CACHED = sorted(name for name in PAGES if name != "health")
END = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def empty_cache(settings):
    settings.PAGE_CACHE = True  # the test settings may turn it off for the other pages' tests
    cache.clear()
    yield
    cache.clear()


def frame(book_id: int) -> int:
    """The queries of everything a page reads besides its own figures."""
    with CaptureQueriesContext(connection) as captured:
        filters = parse_filters({"book": str(book_id)})
        book_meta(filters)
        books()
        page_cache.page_key("guards", filters, page_cache.DEFAULT_POLICY, version=API_VERSION)
    return len(captured.captured_queries)


def test_the_frame_reads_as_many_queries_for_a_small_and_a_large_book():
    strategy = StrategyConfigFactory()
    small, large = BookFactory(name="small"), BookFactory(name="large")
    for book in (small, large):
        book_configure(book=book, strategies=[strategy], guards=[])
    SignalFactory(book=small, strategy_config=strategy)
    for _ in range(40):
        SignalFactory(book=large, strategy_config=strategy)

    frame(small.pk)  # the picker's counts are cached from here on
    assert frame(small.pk) == frame(large.pk) <= 12
    assert {b.name: b.signal_count for b in books()} == {"small": 1, "large": 40}


def test_the_pickers_counts_follow_new_signals():
    book = BookFactory()
    SignalFactory(book=book)
    assert [b.signal_count for b in books()] == [1]
    SignalFactory(book=book)
    assert [b.signal_count for b in books()] == [2]


@pytest.mark.parametrize("name", CACHED)
def test_a_cached_payload_is_the_cold_build(trader_client, replayed_book, name):
    page = PAGES[name]
    filters = parse_filters({"book": str(replayed_book.pk)}, default_period=page.default_period)
    first = page_payload(page, filters)
    with CaptureQueriesContext(connection) as hit:
        again = page_payload(page, filters)
    assert again == first == build_payload(page, filters)
    # A hit reads the book's stamp (and, for learning, its recommendations; for summary,
    # the live health line), never the page's figures again.
    assert len(hit.captured_queries) <= 6, [q["sql"] for q in hit.captured_queries]
    # The HTML view and the twin share it: the page shows what the twin answers.
    twin = trader_client.get(
        reverse("analytics:api-page", args=[name]), {"book": replayed_book.pk}
    ).json()
    assert twin["data"] is not None or name == "summary"
    html = trader_client.get(reverse(f"analytics:{name}"), {"book": replayed_book.pk})
    assert html.status_code == 200
    assert html.context["payload"] == first


def test_filters_are_part_of_the_key(replayed_book):
    page = PAGES["trading"]
    everything = page_payload(page, parse_filters({"book": str(replayed_book.pk)}))
    shorts = page_payload(page, parse_filters({"book": str(replayed_book.pk), "side": "short"}))
    assert shorts == build_payload(
        page, parse_filters({"book": str(replayed_book.pk), "side": "short"})
    )
    assert shorts["filters"]["side"] == "short" and everything["filters"]["side"] is None


def test_the_bypass_builds_cold(replayed_book):
    page = PAGES["guards"]
    filters = parse_filters({"book": str(replayed_book.pk)})
    page_payload(page, filters)
    with CaptureQueriesContext(connection) as cached:
        page_payload(page, filters)
    with page_cache.bypass(), CaptureQueriesContext(connection) as cold:
        page_payload(page, filters)
    assert len(cold.captured_queries) > len(cached.captured_queries)


def _live_market() -> None:
    for seed, symbol in enumerate(("AAA/USD", "BBB/USD"), start=1):
        bars = synthetic_bars(timeframe=timedelta(hours=1), count=400, end=END, seed=seed)
        candles_upsert(exchange="gen", symbol=symbol, timeframe="1h", bars=bars, source="synthetic")
        StrategyConfig.objects.create(
            name=f"ema {symbol}",
            kind="ema_crossover",
            params={"max_hold": 12},
            exchange="gen",
            symbol=symbol,
            timeframe="1h",
        )
    guard_configs_default()


def test_a_live_advance_is_seen_by_the_next_request(trader_client, settings):
    settings.SIGNAL_MAX_AGE = timedelta(days=36500)
    _live_market()
    book = book_live()
    book_advance(book_id=book.pk, now=END - timedelta(hours=200))
    api = reverse("analytics:api-page", args=["trading"])
    before = trader_client.get(api, {"book": book.pk}).json()
    assert trader_client.get(api, {"book": book.pk}).json() == before  # from the cache
    signals_before = Signal.objects.filter(book=book).count()

    book_advance(book_id=book.pk, now=END)  # one transaction, BookState.revision + 1

    assert Signal.objects.filter(book=book).count() > signals_before
    after = trader_client.get(api, {"book": book.pk}).json()
    with page_cache.bypass():
        cold = trader_client.get(api, {"book": book.pk}).json()
    assert after == cold
    assert after != before
    assert after["data"]["totals"] != before["data"]["totals"]


def test_a_new_replay_of_the_same_name_is_seen_by_the_next_request(trader_client, replayed_book):

    api = reverse("analytics:api-page", args=["guards"])
    before = trader_client.get(api).json()  # the default book: the replay
    assert before["book"]["id"] == replayed_book.pk
    from analytics.tests.factories import replay_testex

    replay_testex("--until", "2024-01-20")
    after = trader_client.get(api).json()
    assert after["book"]["id"] != replayed_book.pk
    with page_cache.bypass():
        assert after == trader_client.get(api).json()


def test_a_signal_written_outside_the_engine_changes_the_stamp(replayed_book):
    """Rows written without a revision bump (fixtures, a repair in the shell) still
    change the stamp: it holds the book's newest signal id."""
    page = PAGES["leaderboard"]
    filters = parse_filters({"book": str(replayed_book.pk)})
    before = page_payload(page, filters)
    stamp = stamps.book_stamp(replayed_book)
    strategy = BookStrategy.objects.filter(book=replayed_book).first()
    SignalFactory(
        book=replayed_book,
        strategy_config=strategy.config,
        book_strategy=strategy,
        candle_time=datetime(2020, 1, 1, tzinfo=UTC),
    )
    assert stamps.book_stamp(replayed_book) != stamp
    # The next request reads the book (and its stamp) again.
    filters = parse_filters({"book": str(replayed_book.pk)})
    after = page_payload(page, filters)
    assert after == build_payload(page, filters)
    assert after != before


def test_a_configuration_change_changes_the_stamp(replayed_book):
    stamp = stamps.book_stamp(replayed_book)
    BookStrategy.objects.filter(book=replayed_book).update(active=False)
    assert stamps.book_stamp(replayed_book) != stamp


def test_the_compared_book_is_part_of_the_key(replayed_book):
    other = BookFactory(name="other")
    page = PAGES["performance"]
    params = {"book": str(replayed_book.pk), "compare": str(other.pk)}
    page_payload(page, parse_filters(params))
    key = page_cache.page_key(
        "performance", parse_filters(params), page_cache.DEFAULT_POLICY, version=API_VERSION
    )
    SignalFactory(book=other)
    assert key != page_cache.page_key(
        "performance", parse_filters(params), page_cache.DEFAULT_POLICY, version=API_VERSION
    )
    assert page_payload(page, parse_filters(params)) == build_payload(page, parse_filters(params))


def test_health_is_never_cached(replayed_book):
    """Every request builds it: a heartbeat written a moment after a request (in no
    stamp: a cache would serve the payload without it) shows on the next."""
    from analytics.models import TaskHeartbeat

    filters = parse_filters({"book": str(replayed_book.pk)})
    page = PAGES["health"]
    assert not page.cache.cached
    first = page_payload(page, filters)
    TaskHeartbeat.objects.create(task="a.task", runs=1)
    second = page_payload(page, filters)
    tasks = [row["task"] for row in second["data"]["tasks"]["on_demand"]]
    assert "a.task" in tasks
    assert "a.task" not in [row["task"] for row in first["data"]["tasks"]["on_demand"]]


def test_concurrent_requests_wait_for_the_one_building():
    built = []

    def build():
        built.append(1)
        return {"data": len(built)}

    key = "pages:test:1:abc"
    cache.add(f"{key}:lock", 1, timeout=30)  # someone else is building

    def finish():
        cache.set(key, {"data": "theirs"})
        cache.delete(f"{key}:lock")

    timer = threading.Timer(0.2, finish)
    timer.start()
    try:
        assert page_cache.fill(key, build) == {"data": "theirs"}
    finally:
        timer.join()
    assert built == []
    # A builder that gave up (lock gone, nothing kept): the waiter builds it itself.
    cache.add(f"{key}2:lock", 1, timeout=30)
    threading.Timer(0.1, lambda: cache.delete(f"{key}2:lock")).start()
    assert page_cache.fill(f"{key}2", build) == {"data": 1}


def test_a_deleted_book_is_a_404_not_a_cached_page(trader_client, replayed_book):
    api = reverse("analytics:api-page", args=["guards"])
    assert trader_client.get(api, {"book": replayed_book.pk}).status_code == 200
    Book.objects.filter(pk=replayed_book.pk).delete()
    assert trader_client.get(api, {"book": replayed_book.pk}).status_code == 404


def test_a_revision_bump_alone_changes_the_stamp(replayed_book):
    """What the live path commits with every run (``shadow.live.book_advance``)."""
    from django.db.models import F

    from signals.models import BookState

    stamp = stamps.book_stamp(replayed_book)
    assert BookState.objects.filter(book=replayed_book).update(revision=F("revision") + 1) == 1
    assert stamps.book_stamp(replayed_book) != stamp


def test_a_page_still_answers_when_the_cache_is_down(trader_client, replayed_book):
    from django.test import override_settings

    down = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    with override_settings(CACHES=down):
        for name in ("leaderboard", "trading"):
            response = trader_client.get(
                reverse("analytics:api-page", args=[name]), {"book": replayed_book.pk}
            )
            assert response.status_code == 200
        assert (
            trader_client.get(reverse("analytics:trading"), {"book": replayed_book.pk}).status_code
            == 200
        )


def test_the_raw_query_string_is_part_of_the_key(replayed_book):
    """The pages build links from it (``Filters.query``)."""
    a = parse_filters({"book": str(replayed_book.pk)})
    b = parse_filters({"book": str(replayed_book.pk), "period": "all"})
    assert a.as_json() == b.as_json()
    policy = page_cache.DEFAULT_POLICY
    assert page_cache.page_key("trading", a, policy, version=API_VERSION) != page_cache.page_key(
        "trading", b, policy, version=API_VERSION
    )


def test_ablation_legs_and_requests_change_the_guards_key(replayed_book):
    """The guards page shows the book's ablation legs (their own books) and a pending
    request (kept in the cache by ``shadow.ablation``)."""
    from django.utils import timezone

    from shadow import ablation

    policy = PAGES["guards"].cache

    def key():
        filters = parse_filters({"book": str(replayed_book.pk)})
        return page_cache.page_key("guards", filters, policy, version=API_VERSION)

    before = key()
    cache.set(ablation._requested_key(replayed_book.pk), timezone.now())
    requested = key()
    assert requested != before
    BookFactory(name="leg", ablation_of=replayed_book, without_guard="cooldown")
    assert key() != requested


@pytest.mark.django_db
def test_the_pickers_counts_are_every_books_signals_built_stale_or_never_built(replayed_book):
    """A book with current rollups is counted from their month rows, one without (never
    built, or a signal written since outside the engine) from its rows: both exact."""
    from analytics.page_cache import _count
    from analytics.tests.factories import BookFactory, SignalFactory
    from shadow import rollups
    from signals.models import Signal

    never = BookFactory(name="never built")
    SignalFactory(book=never)
    SignalFactory(book=never)
    empty = BookFactory(name="empty")
    assert rollups.is_built(replayed_book.pk)
    books = [replayed_book.pk, never.pk, empty.pk]

    def truth() -> dict[int, int]:
        return {pk: Signal.objects.filter(book_id=pk).count() for pk in books}

    assert _count(books) == truth()
    assert truth()[replayed_book.pk] > 10
    SignalFactory(book=replayed_book)  # outside the engine: the rollups are stale
    assert not rollups.is_built(replayed_book.pk)
    assert _count(books) == truth()
