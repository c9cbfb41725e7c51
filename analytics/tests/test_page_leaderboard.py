"""The strategy leaderboard (/leaderboard/) and its JSON twin: one row per strategy
configuration of the book, guarded and unguarded figures, filters and a fixed number of
queries whatever the number of strategies and signals."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analytics.metrics import trade_stats
from analytics.numbers import rate, ratio
from analytics.tests.factories import replay_testex
from markets.timestamps import ms_from_utc
from shadow.models import ShadowTrade
from signals.models import Book, PaperTrade, StrategyConfig
from signals.tests.candles import store_walk

pytestmark = pytest.mark.django_db

KINDS = ("ema_crossover", "macd_crossover", "donchian_breakout")


def replay_three_strategies(*, candles: bool = True) -> Book:
    """A replay of 600 generated hourly candles with three strategies on the market."""
    if candles:
        store_walk(600, seed=11)
    market = {"exchange": "testex", "symbol": "BTC/USD", "timeframe": "1h"}
    for kind in KINDS:
        StrategyConfig.objects.create(name=kind, kind=kind, params={}, **market)
    replay_testex()
    return Book.objects.get(kind=Book.Kind.REPLAY)


@pytest.fixture
def three_strategies(db):
    return replay_three_strategies()


def api(client, **params):
    response = client.get(reverse("analytics:api-page", args=["leaderboard"]), params)
    assert response.status_code == 200, response.content
    return response.json()["data"]


def test_one_row_per_strategy_best_first_with_guarded_and_unguarded(
    trader_client, three_strategies
):
    data = api(trader_client, book=three_strategies.pk)
    rows = data["strategies"]
    assert sorted(row["kind"] for row in rows) == sorted(KINDS)
    assert [row["rank"] for row in rows] == [1, 2, 3]
    pnls = [Decimal(row["guarded"]["total_pnl"]) for row in rows]
    assert pnls == sorted(pnls, reverse=True)
    for row in rows:
        paper = PaperTrade.objects.filter(
            book=three_strategies, status="closed", signal__book_strategy_id=row["id"]
        )
        shadow = ShadowTrade.objects.filter(
            book=three_strategies,
            group="blocked",
            status="closed",
            signal__book_strategy_id=row["id"],
        )
        pnl = [float(t.pnl) for t in paper] + [float(t.pnl) for t in shadow]
        ms = [ms_from_utc(t.exit_time) for t in paper] + [ms_from_utc(t.exit_time) for t in shadow]
        guarded = trade_stats(pnl[: paper.count()], ms[: paper.count()])
        unguarded = trade_stats(pnl, ms)
        for shown, stats in ((row["guarded"], guarded), (row["unguarded"], unguarded)):
            assert shown["trades"] == stats.trades
            assert shown["win_rate"] == (rate(stats.win_rate) if stats.trades else None)
            assert shown["sharpe"] == ratio(stats.sharpe)
            assert shown["profit_factor"] == ratio(stats.profit_factor)
        assert row["unguarded"]["trades"] == row["guarded"]["trades"] + row["blocked_closed"]
        assert row["approval_rate"] == rate(row["approved"] / row["decided"])

    html = trader_client.get(reverse("analytics:leaderboard"), {"book": three_strategies.pk})
    text = html.content.decode()
    assert '<table class="sortable lb-table"' in text
    assert "positive = the guards saved this strategy money" in text
    for row in rows:
        assert f'data-strategy="{row["id"]}"' in text


def test_the_symbol_and_period_filters(trader_client, three_strategies):
    everything = api(trader_client, book=three_strategies.pk)
    assert api(trader_client, book=three_strategies.pk, symbol="DOGE/USD")["strategies"] == []
    same = api(trader_client, book=three_strategies.pk, symbol="BTC/USD")
    assert same == everything
    week = api(trader_client, book=three_strategies.pk, period="7d")
    assert sum(r["signals"] for r in week["strategies"]) < sum(
        r["signals"] for r in everything["strategies"]
    )
    assert week["book"]["guarded"]["trades"] < everything["book"]["guarded"]["trades"]


def page_queries(client, book) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("analytics:leaderboard"), {"book": book.pk}).status_code == 200
    return len(queries)


def test_a_fixed_number_of_queries_whatever_the_strategies(
    trader_client, replayed_book, django_assert_max_num_queries
):
    # 9, 2 for the reader's permissions (the user's own and their groups'), and the
    # rollups: whether they are built, then three sums (signals, paper, shadow).
    with django_assert_max_num_queries(17):
        one = page_queries(trader_client, replayed_book)
    Book.objects.all().delete()
    more = replay_three_strategies(candles=False)
    assert more.strategies.count() == 4  # the replayed book's strategy and three more
    assert page_queries(trader_client, more) == one, "no query per strategy"


def test_trades_closing_at_the_same_time_come_paper_first_then_by_id(db):
    """Max drawdown depends on the order of trades that close at the same instant: the
    equity segments put them in one order whatever the query plan (exit time, then paper
    before shadow, then id). Here only that order gives a drawdown of 55."""
    from datetime import timedelta

    from analytics import segments
    from analytics.tests.factories import PaperTradeFactory, ShadowTradeFactory
    from shadow import rollups
    from signals.models import BookStrategy
    from signals.tests.factories import START, BookFactory, StrategyConfigFactory

    book = BookFactory()
    config = StrategyConfigFactory(name="ties")
    version = BookStrategy.objects.create(
        book=book, config=config, config_version=1, name="ties", kind=config.kind,
        exchange=config.exchange, symbol=config.symbol, timeframe=config.timeframe,
    )  # fmt: skip
    mine = {"signal__book": book, "signal__strategy_config": config}
    mine["signal__book_strategy"] = version
    moment = START + timedelta(days=3, microseconds=123_456)
    later = moment + timedelta(hours=1)
    made = [
        ShadowTradeFactory(**mine, exit_time=moment, pnl=Decimal("-30")),
        PaperTradeFactory(**mine, exit_time=later, pnl=Decimal("-5")),
        PaperTradeFactory(**mine, exit_time=moment, pnl=Decimal("10")),
        PaperTradeFactory(**mine, exit_time=moment, pnl=Decimal("-20")),
    ]
    rollups.ensure_built(book.pk)
    paper = sorted((t for t in made if isinstance(t, PaperTrade)), key=lambda t: t.pk)
    # At ``moment``: the two paper trades by id, then the shadow one; then the later one.
    expected = [paper[1], paper[2], made[0], paper[0]]
    equity, peak, drawdown = Decimal(0), Decimal(0), Decimal(0)
    for trade in expected:
        equity += trade.pnl
        peak = max(peak, equity)
        drawdown = max(drawdown, peak - equity)
    assert drawdown == Decimal("55")
    folded = segments.figures(book.pk)
    assert folded[("unguarded", None)].max_drawdown == drawdown
    assert folded[("guarded", None)].max_drawdown == Decimal("25")
