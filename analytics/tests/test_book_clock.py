"""The book's clock is its last closed candle, not its last signal's candle: periods and
the "last candle" label end there, so a trade that closes after the last signal is in
the last day's figures."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse

from analytics.filters import book_clock, clock_column
from analytics.stamps import with_stamp
from analytics.tests.factories import PaperTradeFactory, SignalFactory, StrategyConfigFactory
from markets.models import Candle
from signals.models import Book, SignalState
from signals.services import book_configure
from signals.tests.candles import START, store_walk
from signals.tests.factories import BookFactory

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)


def closed_trade(book, strategy, *, candle: int, exit: int, pnl: str):
    signal = SignalFactory(
        book=book,
        strategy_config=strategy,
        candle_time=START + candle * HOUR,
        state=SignalState.CLOSED,
    )
    return PaperTradeFactory(
        signal=signal,
        entry_time=START + (candle + 1) * HOUR,
        exit_time=START + exit * HOUR,
        pnl=Decimal(pnl),
    )


@pytest.fixture
def strategy():
    return StrategyConfigFactory()


def replay_book(strategy, *, until: int) -> Book:
    book = BookFactory(until=START + until * HOUR)
    book_configure(book=book, strategies=[strategy], guards=[])
    return book


def test_a_trade_closing_after_the_last_signal_is_in_the_last_day(trader_client, strategy):
    store_walk(100)
    book = replay_book(strategy, until=99)
    closed_trade(book, strategy, candle=10, exit=12, pnl="-5")
    closed_trade(book, strategy, candle=80, exit=98, pnl="25.16")  # the last signal

    body = trader_client.get(
        reverse("analytics:api-page", args=["summary"]), {"book": book.pk}
    ).json()

    assert body["book"]["clock"].startswith("2024-01-05T03:00")  # START + 99 h
    last_day = body["data"]["periods"][0]
    assert last_day["period"] == "1d"
    assert last_day["pnl"] == "25.16"
    assert last_day["trades"] == 1
    assert last_day["until"].startswith("2024-01-05T03:00:00")
    summary = trader_client.get(reverse("analytics:summary"), {"book": book.pk}).content.decode()
    assert "last candle 2024-01-05 03:00 UTC" in summary
    assert "each ending at its last closed candle (2024-01-05 03:00 UTC)" in summary
    trading = trader_client.get(reverse("analytics:trading"), {"book": book.pk}).content.decode()
    assert "all time, to 2024-01-05 03:00 UTC" in trading


def test_a_replays_clock_stops_at_its_until_though_later_candles_are_stored(strategy):
    store_walk(120)
    book = replay_book(strategy, until=99)
    closed_trade(book, strategy, candle=50, exit=60, pnl="1")

    assert book_clock(book) == START + 99 * HOUR
    assert with_stamp(Book.objects.filter(pk=book.pk)).get().frame_clock == START + 99 * HOUR


def test_the_live_books_clock_is_the_last_candle_stored_for_its_markets(strategy):
    store_walk(120)
    store_walk(200, symbol="ETH/USD")  # not a market of this book
    live = Book.objects.create(name="live", kind=Book.Kind.LIVE)
    book_configure(book=live, strategies=[strategy], guards=[])

    assert book_clock(live) == START + 119 * HOUR


def test_a_book_without_stored_candles_reads_its_last_signal(strategy):
    book = replay_book(strategy, until=99)
    closed_trade(book, strategy, candle=40, exit=45, pnl="1")

    assert book_clock(book) == START + 40 * HOUR
    assert book_clock(BookFactory()) is None


def test_the_clock_is_read_by_index_probes(strategy):
    store_walk(100)
    book = replay_book(strategy, until=99)
    query = Book.objects.filter(pk=book.pk).annotate(frame_clock=clock_column())
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        # Small tables make a sequential scan the cheaper plan; what is tested is that
        # the query can probe the indexes at all (a sargable bound on open_time).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Seq Scan on {Candle._meta.db_table}" not in plan, plan
    assert "candle_unique_open_time" in plan, plan
    assert "Index Cond" in plan and "open_time <=" in plan, plan
