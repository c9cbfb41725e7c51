"""The blocked signals page: a guard's blocks, reached from the guard page, each linked
to its signal page (and its chart), agreeing with the guard page's counts and its JSON twin."""

import re
from html import unescape

import pytest
from django.urls import reverse

from signals.models import GuardDecision, Signal, SignalState

pytestmark = pytest.mark.django_db


def blocked_by(book, guard):
    return Signal.objects.filter(
        book=book,
        state=SignalState.BLOCKED,
        decisions__guard=guard,
        decisions__verdict=GuardDecision.Verdict.BLOCK,
    )


def test_the_guard_page_links_each_guards_blocks_to_their_list(trader_client, replayed_book):
    html = trader_client.get(reverse("analytics:guards"), {"book": replayed_book.pk}).content
    links = {
        unescape(href): int(count)
        for href, count in re.findall(r'<a href="(/blocked/\?[^"]+)"[^>]*>(\d+)</a>', html.decode())
    }
    guards = set(
        GuardDecision.objects.filter(
            signal__book=replayed_book, verdict=GuardDecision.Verdict.BLOCK
        ).values_list("guard", flat=True)
    )
    assert guards, "the replay blocks signals"
    for guard in guards:
        href = f"/blocked/?book={replayed_book.pk}&guard={guard}"
        assert links[href] == blocked_by(replayed_book, guard).count() > 0

        page = trader_client.get(href)
        assert page.status_code == 200
        body = page.content.decode()
        shown = {int(pk) for pk in re.findall(r'<a href="/signals/(\d+)/"', body)}
        expected = set(blocked_by(replayed_book, guard).values_list("pk", flat=True))
        assert shown == expected
        assert f'<span id="blocked-count">{len(expected)}</span>' in body
        twin = trader_client.get(f"/api/v1/blocked/?book={replayed_book.pk}&guard={guard}").json()
        assert twin["data"]["count"] == len(expected)
        assert {row["signal_id"] for row in twin["data"]["signals"]} == expected
        assert all(guard in row["blocked_by"] for row in twin["data"]["signals"])


def test_without_a_guard_it_lists_every_blocked_signal_newest_first(trader_client, replayed_book):
    twin = trader_client.get(f"/api/v1/blocked/?book={replayed_book.pk}").json()["data"]

    blocked = Signal.objects.filter(book=replayed_book, state=SignalState.BLOCKED)
    assert twin["guard"] is None
    assert twin["count"] == blocked.count() > 0
    times = [row["signal_time"] for row in twin["signals"]]
    assert times == sorted(times, reverse=True)
    for row in twin["signals"]:
        shadow = blocked.get(pk=row["signal_id"]).shadow_trade
        assert row["shadow_pnl"] == (f"{shadow.pnl:.2f}" if shadow.pnl is not None else None)


def test_it_pages_and_keeps_the_filters(trader_client, replayed_book, monkeypatch, settings):
    from analytics.pages import blocked

    settings.PAGE_CACHE = False  # the page size is patched: no payload kept from before
    monkeypatch.setattr(blocked, "PAGE_SIZE", 4)
    total = Signal.objects.filter(book=replayed_book, state=SignalState.BLOCKED).count()
    assert total > 4
    url = f"/api/v1/blocked/?book={replayed_book.pk}&side="
    first = trader_client.get(url).json()["data"]
    assert len(first["signals"]) == 4
    assert first["pages"]["last"] == -(-total // 4)
    assert first["pages"]["previous"] is None
    # The next page starts after the last signal shown (keyset pagination).
    last_shown = first["signals"][-1]["signal_id"]
    assert first["pages"]["next"] == f"book={replayed_book.pk}&page=2&after={last_shown}"
    second = trader_client.get(f"{url}&page=2").json()["data"]
    assert not {r["signal_id"] for r in first["signals"]} & {
        r["signal_id"] for r in second["signals"]
    }
    html = trader_client.get(f"/blocked/?book={replayed_book.pk}&page=2").content.decode()
    assert f'href="?book={replayed_book.pk}&amp;page=1"' in html


def test_the_count_from_the_rollups_equals_the_rows_for_any_window(replayed_book):
    """The count is summed from the rollups (a partial first and last day from the rows):
    the same as counting the signals, for every guard and none, random windows, by
    strategy, symbol and side, and after signals written outside the engine."""
    import random
    from datetime import timedelta

    from analytics.filters import Filters, book_clock
    from analytics.pages import blocked
    from analytics.tests.factories import SignalFactory
    from signals.models import BookStrategy

    guards = sorted(
        set(
            GuardDecision.objects.filter(
                signal__book=replayed_book, verdict=GuardDecision.Verdict.BLOCK
            ).values_list("guard", flat=True)
        )
    )
    names = sorted(
        set(BookStrategy.objects.filter(book=replayed_book).values_list("name", flat=True))
    )
    times = sorted(Signal.objects.filter(book=replayed_book).values_list("candle_time", flat=True))
    clock = book_clock(replayed_book)
    draw = random.Random(14)
    windows = [(None, None)]
    for _ in range(12):
        a = times[0] + (times[-1] - times[0]) * draw.uniform(-0.05, 1.0)
        windows.append((a, a + timedelta(hours=draw.uniform(1, 200))))
    checked = 0
    for since, until in windows:
        for guard in ["", *guards]:
            for strategy, symbol, side in [
                ("", "", ""),
                ("", "BTC/USD", ""),
                ("", "ETH/USD", ""),
                ("", "", "long"),
                *((name, "", "") for name in names),
                ("no such strategy", "", ""),
            ]:
                filters = Filters(
                    book=replayed_book,
                    since=since,
                    until=until,
                    strategy=strategy,
                    symbol=symbol,
                    side=side,
                    clock=clock,
                )
                expected = blocked.blocked_signals(filters, guard).count()
                found = blocked.blocked_count(filters, guard)
                assert found == expected, (since, until, guard, strategy, symbol, side)
                checked += expected > 0
    assert checked > 50, "the windows hold blocked signals"
    # A blocked signal written outside the engine: the rollups are rebuilt before the sum.
    SignalFactory(book=replayed_book, state=SignalState.BLOCKED, candle_time=times[-1])
    filters = Filters(book=replayed_book, clock=clock)
    assert blocked.blocked_count(filters, "") == blocked.blocked_signals(filters, "").count()


@pytest.mark.parametrize("sort", ["", "candle", "-signal", "signal", "market", "-pnl", "pnl"])
def test_the_pager_walks_every_blocked_signal_once_both_ways(
    trader_client, replayed_book, monkeypatch, settings, sort
):
    """Following the next links from page 1 shows every blocked signal once, in the order
    of one query over all of them; the previous links walk back through the same pages;
    each page asked for by number alone (read from the nearer end) is the same page. The
    orders whose columns cannot be empty follow a keyset, with no OFFSET."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from analytics.filters import Filters
    from analytics.pages import blocked
    from analytics.sorting import ordered

    settings.PAGE_CACHE = False
    monkeypatch.setattr(blocked, "PAGE_SIZE", 2)
    everything = Signal.objects.filter(book=replayed_book, state=SignalState.BLOCKED)
    expected = list(
        ordered(everything, sort or blocked.DEFAULT_SORT, blocked.SORTS).values_list(
            "pk", flat=True
        )
    )
    assert len(expected) > 6, "several pages"
    keyed = sort in ("", "candle", "-signal", "signal", "market")
    base = f"/api/v1/blocked/?book={replayed_book.pk}" + (f"&sort={sort}" if sort else "")

    def get(query):
        with CaptureQueriesContext(connection) as queries:
            data = trader_client.get(f"/api/v1/blocked/?{query}").json()["data"]
        if keyed and ("after=" in query or "before=" in query):
            assert not any("OFFSET" in q["sql"] for q in queries.captured_queries), query
        return data

    pages, query = [], base.split("?", 1)[1]
    while query:
        data = get(query)
        pages.append([row["signal_id"] for row in data["signals"]])
        assert data["pages"]["number"] == len(pages)
        query = data["pages"]["next"]
    assert [pk for page in pages for pk in page] == expected
    assert len(pages) == -(-len(expected) // 2)
    if keyed:
        assert "after=" in get(base.split("?", 1)[1])["pages"]["next"]
    # Back from the last page by the previous links.
    data = get(data["pages"]["last_query"])
    back = [[row["signal_id"] for row in data["signals"]]]
    while data["pages"]["previous"]:
        data = get(data["pages"]["previous"])
        back.append([row["signal_id"] for row in data["signals"]])
    assert back[::-1] == pages
    # Each page by its number alone.
    for number, page in enumerate(pages, start=1):
        shown = get(f"{base.split('?', 1)[1]}&page={number}")["signals"]
        assert [row["signal_id"] for row in shown] == page, number
    # A keyset signal no longer in the list: the page number decides.
    filters = Filters(book=replayed_book, page=2, raw={"after": "999999999"}, sort=sort)
    rows, from_keyset = blocked.page_rows(everything, filters, len(expected))
    assert [s.pk for s in rows] == pages[1] and not from_keyset
