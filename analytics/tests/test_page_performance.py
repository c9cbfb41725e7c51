"""The performance / P&L page (/performance/) and its JSON twin: the figures against a
plain reference from the PaperTrade rows, periods and filters, the charts, the compare
view and a fixed number of queries; and the marked-to-market equity curve behind it."""

import bisect
import itertools
import math
import re
import statistics
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analytics.equity import PaperPosition, equity_curve
from analytics.filters import book_clock
from analytics.numbers import cents, rate, ratio
from analytics.tests.factories import BookFactory, PaperTradeFactory, SignalFactory
from markets.bars import CandleArrays
from markets.timestamps import ms_from_utc, utc_from_ms
from shadow import equity_marks
from signals.models import Book, PaperTrade, SignalState
from signals.tests.factories import START

URL = reverse("analytics:performance")
API = reverse("analytics:api-page", args=["performance"])
HOUR = 3_600_000


def api(client, **params):
    response = client.get(API, params)
    assert response.status_code == 200, response.content
    return response.json()["data"]


def closed_trades(book, since=None, until=None, strategy="", symbol=""):
    """The closed paper trades a figure counts, in exit order, read one by one."""
    rows = []
    for trade in PaperTrade.objects.filter(book=book).select_related("signal__book_strategy"):
        if trade.status != PaperTrade.Status.CLOSED or trade.pnl is None:
            continue
        if since is not None and trade.exit_time < since:
            continue
        if until is not None and trade.exit_time >= until:
            continue
        if strategy and (
            trade.signal.book_strategy is None or trade.signal.book_strategy.name != strategy
        ):
            continue
        if symbol and trade.signal.symbol != symbol:
            continue
        rows.append(trade)
    rows.sort(key=lambda t: (t.exit_time, t.pk))
    return rows


def reference(trades):
    """Every figure with a plain loop (the definitions in analytics.metrics)."""
    pnl = [t.pnl for t in trades]
    total = sum(pnl, Decimal(0))
    wins = [p for p in pnl if p > 0]
    losses = [p for p in pnl if p < 0]
    equity, peak, worst = Decimal(0), Decimal(0), Decimal(0)
    for value in pnl:
        equity += value
        peak = max(peak, equity)
        worst = max(worst, peak - equity)
    by_day: dict = {}
    for t in trades:
        by_day[t.exit_time.date()] = by_day.get(t.exit_time.date(), 0.0) + float(t.pnl)
    sharpe = None
    if by_day:
        first, last = min(by_day), max(by_day)
        days = [by_day.get(first + timedelta(days=i), 0.0) for i in range((last - first).days + 1)]
        if len(days) >= 2 and statistics.stdev(days) > 0:
            sharpe = statistics.mean(days) / statistics.stdev(days) * math.sqrt(365)
    gross_loss = -sum(losses, Decimal(0))
    return {
        "total_pnl": cents(total),
        "trades": len(pnl),
        "wins": len(wins),
        "win_rate": rate(len(wins) / len(pnl)) if pnl else None,
        "profit_factor": ratio(sum(wins, Decimal(0)) / gross_loss) if losses else None,
        "expectancy": cents(total / len(pnl)) if pnl else None,
        "max_drawdown": cents(worst),
        "sharpe": ratio(sharpe),
    }


def check_figures(figures, expected):
    assert Decimal(figures["total_pnl"]) == expected["total_pnl"]
    assert figures["trades"] == expected["trades"]
    assert figures["wins"] == expected["wins"]
    assert figures["win_rate"] == expected["win_rate"]
    assert figures["profit_factor"] == pytest.approx(expected["profit_factor"], abs=1e-4)
    if expected["expectancy"] is None:
        assert figures["expectancy"] is None
    else:
        assert Decimal(figures["expectancy"]) == expected["expectancy"]
    assert Decimal(figures["max_drawdown"]) == expected["max_drawdown"]
    if expected["sharpe"] is None:
        assert figures["sharpe"] is None
    else:
        assert figures["sharpe"] == pytest.approx(expected["sharpe"], abs=1e-3)


def shown(html):
    """{figure: data-value} of the figure cards on the page."""
    cards = html.split('id="figures"', 1)[1].split("</section>", 1)[0]
    return dict(re.findall(r'data-figure="(\w+)" data-value="([^"]*)"', cards))


# --- Against the replayed book ----------------------------------------------------------


@pytest.mark.django_db
def test_the_figures_equal_the_plain_reference_and_the_page_shows_the_twin(
    trader_client, replayed_book
):
    trades = closed_trades(replayed_book)
    expected = reference(trades)
    assert expected["trades"] >= 5 and expected["max_drawdown"] > 0, "a fixture worth testing"
    data = api(trader_client, book=replayed_book.pk)
    check_figures(data["figures"], expected)

    html = trader_client.get(URL, {"book": replayed_book.pk}).content.decode()
    on_page = shown(html)
    for key, value in data["figures"].items():
        if key in on_page:
            assert on_page[key] == ("" if value is None else str(value)), key
    assert set(on_page) >= {
        "total_pnl",
        "trades",
        "win_rate",
        "profit_factor",
        "expectancy",
        "max_drawdown",
        "sharpe",
    }
    from analytics.templatetags.trader import money, signed_money

    assert signed_money(Decimal(data["figures"]["total_pnl"]), "USD") in html
    assert money(Decimal(data["figures"]["max_drawdown"]), "USD") in html
    for chart in ("perf-equity", "perf-daily", "perf-drawdown"):
        assert f'id="{chart}"' in html


@pytest.mark.django_db
def test_the_charts_reconcile_with_the_figures(trader_client, replayed_book):
    from analytics.selectors import book_equity_curve

    data = api(trader_client, book=replayed_book.pk)
    figures = data["figures"]
    daily = data["daily_chart"]["series"][0]
    assert daily["tone"] == "signed"
    assert daily["values"] == [float(v) for v in data["daily_pnl"]]
    # Each day is rounded to the cent on its own: the days add up to the total within that.
    days_total = sum(Decimal(v) for v in data["daily_pnl"])
    assert abs(days_total - Decimal(figures["total_pnl"])) <= Decimal("0.005") * (
        len(daily["values"]) + 1
    )
    exact = {}
    for trade in closed_trades(replayed_book):
        exact[trade.exit_time.date().isoformat()] = (
            exact.get(trade.exit_time.date().isoformat(), 0) + trade.pnl
        )
    for day, value in zip(data["days"], data["daily_pnl"], strict=True):
        assert Decimal(value) == cents(exact.get(day, Decimal(0))), day
    drawdown = data["drawdown_chart"]["series"][0]["values"]
    assert max(drawdown) <= 0
    assert -min(drawdown) == pytest.approx(float(figures["max_drawdown"]), abs=0.01)
    curve = book_equity_curve(book=replayed_book)
    assert data["equity"]["chart"]["series"][0]["values"][-1] == float(
        cents(float(curve.equity[-1]))
    )


@pytest.mark.django_db
def test_a_trade_outside_the_7_day_window_is_not_in_it(trader_client, replayed_book):
    until = book_clock(replayed_book) + timedelta(microseconds=1)
    since = until - timedelta(days=7)
    inside = closed_trades(replayed_book, since, until)
    everything = closed_trades(replayed_book)
    assert 0 < len(inside) < len(everything), "some trades closed before the last 7 days"
    data = api(trader_client, book=replayed_book.pk, period="7d")
    check_figures(data["figures"], reference(inside))
    assert all(day >= since.date().isoformat() for day in data["days"])


@pytest.mark.django_db
def test_the_strategy_and_symbol_filters_narrow_the_trades(trader_client, replayed_book):
    strategy = (
        PaperTrade.objects.filter(book=replayed_book)
        .values_list("signal__book_strategy__name", flat=True)
        .first()
    )
    data = api(trader_client, book=replayed_book.pk, strategy=strategy)
    check_figures(data["figures"], reference(closed_trades(replayed_book, strategy=strategy)))
    none = api(trader_client, book=replayed_book.pk, symbol="ETH/USD")
    assert none["figures"]["trades"] == 0 and none["daily_chart"] is None
    assert none["drawdown_chart"] is None
    page = trader_client.get(URL, {"book": replayed_book.pk, "symbol": "ETH/USD"})
    assert "No paper trade closed in this period" in page.content.decode()


def deepest_by_day(trades):
    """{day: realised equity below its running peak (0 at the start) at its deepest that
    day, from the day's opening level to its last close}, one trade at a time."""
    equity = peak = Decimal(0)
    out: dict = {}
    for trade in trades:
        day = trade.exit_time.date().isoformat()
        if day not in out:
            out[day] = equity - peak
        equity += trade.pnl
        peak = max(peak, equity)
        out[day] = min(out[day], equity - peak)
    return out


@pytest.mark.django_db
def test_stored_segments_and_rows_give_the_plain_reference_for_any_window(replayed_book, settings):
    """The figures, daily P&L and drawdown chart from the stored segments (a partial
    first and last day from the rows) equal the rows' own path and a plain loop, for all
    history and random windows, by strategy and by symbol. The drawdown is drawn per day
    here (as past ``PERFORMANCE_DRAWDOWN_ROW_LIMIT`` trades)."""
    settings.PERFORMANCE_DRAWDOWN_ROW_LIMIT = 0
    import random

    from analytics.filters import Filters
    from analytics.pages import performance
    from shadow import rollups

    rollups.ensure_built(replayed_book.pk)
    trades = closed_trades(replayed_book)
    strategies = sorted({t.signal.book_strategy.name for t in trades})
    assert len(trades) > 15 and strategies
    clock = book_clock(replayed_book)
    first, last = trades[0].exit_time, trades[-1].exit_time
    draw = random.Random(14)
    windows = [(None, None)]
    for index in range(30):
        a = first + (last - first) * draw.uniform(-0.05, 1.0)
        b = a + (timedelta(hours=draw.uniform(0, 30)) if index % 4 else (last - first) / 2)
        if index % 3 == 0:
            a = a.replace(hour=0, minute=0, second=0, microsecond=0)
        windows.append((a if index % 7 else None, b if index % 5 else None))
    checked = 0
    for since, until in windows:
        for strategy, symbol in [("", ""), ("", "BTC/USD"), ("", "ETH/USD")] + [
            (name, "") for name in strategies
        ]:
            filters = Filters(
                book=replayed_book,
                since=since,
                until=until,
                strategy=strategy,
                symbol=symbol,
                clock=clock,
            )
            assert performance._stored_group(replayed_book, filters)[0]
            stored = performance.trades(replayed_book, filters)
            rows = performance.trades(replayed_book, filters, stored=False)
            inside = closed_trades(replayed_book, since, until, strategy, symbol)
            where = (since, until, strategy, symbol)
            assert len(stored) == len(rows) == len(inside), where
            shown = performance.figures(performance.exact_figures(stored))
            # As shown: on SQLite the two paths sum floats in different orders.
            assert shown == performance.figures(performance.exact_figures(rows)), where
            check_figures(shown, reference(inside))
            assert performance.daily(stored) == performance.daily(rows), where
            chart = performance.drawdown(replayed_book, filters, stored)
            assert chart == performance.drawdown(replayed_book, filters, rows), where
            expected = deepest_by_day(inside)
            if chart is None:
                assert not expected
                continue
            assert chart["labels"] == list(expected), where
            values = chart["series"][0]["values"]
            assert values == [float(cents(v)) for v in expected.values()], where
            checked += 1
    assert checked > 40, "the windows hold trades"


@pytest.mark.django_db
def test_a_short_period_draws_the_drawdown_after_each_close(trader_client, replayed_book):
    until = book_clock(replayed_book) + timedelta(microseconds=1)
    inside = closed_trades(replayed_book, until - timedelta(days=7), until)
    assert len(inside) >= 3
    equity = peak = Decimal(0)
    expected = []
    for trade in inside:
        equity += trade.pnl
        peak = max(peak, equity)
        expected.append(float(cents(equity - peak)))
    chart = api(trader_client, book=replayed_book.pk, period="7d")["drawdown_chart"]
    assert chart["per"] == "close"
    assert chart["series"][0]["values"] == expected
    assert chart["labels"] == [f"{t.exit_time:%Y-%m-%d %H:%M}" for t in inside]
    # All history (longer than a month) is drawn per day.
    chart = api(trader_client, book=replayed_book.pk)["drawdown_chart"]
    assert chart["per"] == "day"
    assert chart["labels"] == list(deepest_by_day(closed_trades(replayed_book)))
    html = trader_client.get(URL, {"book": replayed_book.pk}).content.decode()
    assert "at its deepest each UTC day with a close" in html
    html = trader_client.get(URL, {"book": replayed_book.pk, "period": "7d"}).content.decode()
    assert "after each close (0 = at a new peak)" in html


@pytest.mark.django_db
def test_a_strategy_name_of_several_versions_reads_the_rows(replayed_book):
    """Stored segments are per strategy version; a name with two versions (and a book
    with a trade of a signal without a version) is read from the rows, still exact."""
    from analytics.filters import Filters
    from analytics.pages import performance
    from signals.models import BookStrategy

    version = BookStrategy.objects.filter(book=replayed_book).first()
    filters = Filters(book=replayed_book, strategy=version.name, clock=book_clock(replayed_book))
    assert performance._stored_group(replayed_book, filters) == (True, version.pk)
    BookStrategy.objects.create(
        **{
            f.attname: getattr(version, f.attname)
            for f in BookStrategy._meta.concrete_fields
            if not f.primary_key
        }
        | {"config_version": version.config_version + 1}
    )
    assert performance._stored_group(replayed_book, filters) == (False, None)
    expected = reference(closed_trades(replayed_book, strategy=version.name))
    check_figures(
        performance.figures(performance.exact_figures(performance.trades(replayed_book, filters))),
        expected,
    )


@pytest.mark.django_db
def test_more_days_than_points_keep_the_deepest_of_each_run_of_days(trader_client, settings):
    settings.PERFORMANCE_DRAWDOWN_ROW_LIMIT = 100  # below the 450 trades: drawn per day
    pnls = [str((day * 37) % 23 - 11) for day in range(450)]
    book = hand_book("long", pnls)
    data = api(trader_client, book=book.pk)
    chart = data["drawdown_chart"]
    values = chart["series"][0]["values"]
    assert len(values) == 400
    expected = deepest_by_day(closed_trades(book))
    assert -min(values) == float(data["figures"]["max_drawdown"]) > 0
    # Each point is the deepest day of its run, labelled with that day.
    for label, value in zip(chart["labels"], values, strict=True):
        assert float(cents(expected[label])) == value
    days = list(expected)
    edges = np.linspace(0, len(days), 401).astype(np.int64)
    for (a, b), value in zip(itertools.pairwise(edges), values, strict=True):
        assert value == min(float(cents(expected[day])) for day in days[a:b])


# --- Compare ----------------------------------------------------------------------------


def hand_book(name, pnls, **fields):
    """A book with closed paper trades of these P&Ls, one a day from START."""
    book = BookFactory(name=name, **fields)
    for day, pnl in enumerate(pnls):
        signal = SignalFactory(
            book=book, state=SignalState.CLOSED, candle_time=START + timedelta(days=day)
        )
        PaperTradeFactory(
            signal=signal, pnl=Decimal(pnl), exit_time=START + timedelta(days=day, hours=3)
        )
    return book


@pytest.mark.django_db
def test_the_compare_view_shows_both_books_and_the_difference(trader_client):
    a = hand_book("with guard", ["10", "-4", "6.5"])
    b = hand_book(
        "without guard", ["10", "-30", "6.5", "2"], ablation_of=a, without_guard="cooldown"
    )

    data = api(trader_client, book=a.pk, compare=b.pk)
    check_figures(data["figures"], reference(closed_trades(a)))
    compare = data["compare"]
    assert compare["book"]["name"] == "without guard"
    check_figures(compare["figures"], reference(closed_trades(b)))
    rows = {row["key"]: row for row in compare["rows"]}
    assert Decimal(rows["total_pnl"]["a"]) == Decimal("12.50")
    assert Decimal(rows["total_pnl"]["b"]) == Decimal("-11.50")
    assert Decimal(rows["total_pnl"]["difference"]) == Decimal("24.00")
    assert rows["total_pnl"]["better"] == "a"
    assert rows["trades"]["difference"] == -1
    # A smaller drawdown is the better one: A's 4.00 against B's 30.00.
    assert Decimal(rows["max_drawdown"]["difference"]) == Decimal("-26.00")
    assert rows["max_drawdown"]["better"] == "a"
    chart = compare["chart"]
    assert [s["name"] for s in chart["series"]] == ["A: with guard", "B: without guard"]
    assert chart["labels"] == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    assert chart["series"][0]["values"] == [10.0, 6.0, 12.5, 12.5]  # carried forward
    assert chart["series"][1]["values"] == [10.0, -20.0, -13.5, -11.5]

    html = trader_client.get(URL, {"book": a.pk, "compare": b.pk}).content.decode()
    assert 'id="compare-table"' in html and 'id="perf-compare-chart"' in html
    assert '<span class="book-key key-a">A</span> with guard' in html
    assert '<span class="book-key key-b">B</span> without guard' in html
    row = html.split('<tr data-figure="total_pnl">', 1)[1].split("</tr>", 1)[0]
    assert "+12.50 USD" in row and "\N{MINUS SIGN}11.50 USD" in row and "+24.00 USD" in row
    assert 'class="num diff pos"' in row


@pytest.mark.django_db
def test_an_ablation_leg_is_offered_for_comparison(trader_client):
    a = hand_book("base", ["1"])
    leg = hand_book("base without cooldown", ["2"], ablation_of=a, without_guard="cooldown")
    data = api(trader_client, book=a.pk)
    assert data["compare"] is None
    assert [(s["id"], s["why"]) for s in data["suggested_compare"]] == [
        (leg.pk, "the same history without the guard cooldown")
    ]
    html = trader_client.get(URL, {"book": a.pk}).content.decode()
    assert f"compare={leg.pk}" in html
    back = api(trader_client, book=leg.pk)["suggested_compare"]
    assert [s["id"] for s in back] == [a.pk]


@pytest.mark.django_db
def test_an_unknown_compare_book_is_not_found(trader_client):
    a = hand_book("base", ["1"])
    assert trader_client.get(API, {"book": a.pk, "compare": "999999"}).status_code == 404
    assert trader_client.get(URL, {"book": a.pk, "compare": "x"}).status_code == 404


@pytest.mark.django_db
def test_the_query_count_does_not_grow_with_the_trades(
    trader_client, replayed_book, django_assert_max_num_queries
):
    from shadow import rollups

    other = hand_book("other", ["1", "2"])
    # Both books' rollups current (a compared book's are read too): neither count builds.
    rollups.ensure_built(other.pk)

    def count():
        with CaptureQueriesContext(connection) as queries:
            response = trader_client.get(URL, {"book": replayed_book.pk, "compare": other.pk})
            assert response.status_code == 200
        return len(queries)

    before = count()
    clock = book_clock(replayed_book)
    for hours in range(1, 25):
        signal = SignalFactory(
            book=replayed_book, state=SignalState.CLOSED, candle_time=clock - timedelta(hours=hours)
        )
        PaperTradeFactory(signal=signal, pnl=Decimal(hours), exit_time=signal.candle_time)
    for day in range(10):
        signal = SignalFactory(book=other, state=SignalState.CLOSED)
        PaperTradeFactory(signal=signal, pnl=Decimal(day), exit_time=START + timedelta(days=day))
    # The engine's writes keep the book's rollups and equity marks; these rows were written
    # around it, so they are rebuilt here rather than by the page's first read.
    rollups.rebuild(replayed_book.pk)
    rollups.rebuild(other.pk)
    assert count() == before
    with django_assert_max_num_queries(before):
        trader_client.get(API, {"book": replayed_book.pk, "compare": other.pk})


@pytest.mark.django_db
def test_anonymous_visitors_are_refused(client):
    assert client.get(URL).status_code == 302
    assert client.get(API).status_code == 401


# --- The marked-to-market equity curve (analytics.equity) -------------------------------


def candles(closes, start=0):
    closes = np.asarray(closes, dtype=float)
    times = start + np.arange(len(closes), dtype=np.int64) * HOUR
    return CandleArrays(times, closes, closes + 1, closes - 1, closes, np.ones(len(closes)))


def plain(candles_by_market, positions, step):
    """Equity at each close, one close at a time."""
    closes = sorted({int(t) + step for c in candles_by_market.values() for t in c.time})
    opens = {key: [int(t) for t in c.time] for key, c in candles_by_market.items()}
    out = []
    for close in closes:
        total = 0.0
        for p in positions:
            market = candles_by_market[p.market]
            # The market's last candle closed by now (its open at most close - step).
            seen = bisect.bisect_right(opens[p.market], close - step)
            if not seen:
                continue
            last = seen - 1
            if p.exit_time is not None and p.exit_time + step <= close:
                total += p.pnl
            elif p.entry_time + step <= close:
                total += p.direction * (market.close[last] - p.entry_price) * p.quantity
        out.append(total)
    return closes, out


def test_the_equity_curve_of_two_markets_equals_the_plain_loop():
    a = candles([100, 102, 104, 103, 101, 99, 100, 105])
    b = candles([50, 49, 48, 50, 51], start=2 * HOUR)
    positions = [
        PaperPosition("a", 1, 2.0, 101.0, entry_time=1 * HOUR, exit_time=4 * HOUR, pnl=-0.5),
        PaperPosition("b", -1, 10.0, 49.5, entry_time=3 * HOUR, exit_time=None),
        PaperPosition("a", -1, 1.0, 100.0, entry_time=5 * HOUR, exit_time=7 * HOUR, pnl=-5.2),
    ]
    curve = equity_curve({"a": a, "b": b}, positions, step_ms={"a": HOUR, "b": HOUR})
    times, expected = plain({"a": a, "b": b}, positions, HOUR)
    assert curve.time.tolist() == times
    assert curve.equity.tolist() == pytest.approx(expected, abs=1e-9)
    # By hand, at the close of a's third candle: the long of 2 from 101 is worth 2 * (104 - 101).
    assert curve.equity[2] == pytest.approx(2 * (104 - 101))


def test_sampling_keeps_the_last_point():
    points = [(t, float(t)) for t in range(1000)]
    shown = equity_marks.sampled(points, 10)
    assert len(shown) == 10
    assert shown[-1] == (999, 999.0)
    assert shown == [points[99 + 100 * i] for i in range(10)]  # the last of each bucket
    assert equity_marks.sampled(points[:7], 10) == points[:7]


def test_no_candles_no_curve():
    assert len(equity_curve({}, [], step_ms={})) == 0


@pytest.mark.django_db
def test_a_book_without_trades_has_no_figures_to_divide(trader_client):
    book = BookFactory(name="quiet")
    SignalFactory(book=book)
    data = api(trader_client, book=book.pk)
    figures = data["figures"]
    assert figures["trades"] == 0 and Decimal(figures["total_pnl"]) == 0
    for key in ("win_rate", "profit_factor", "expectancy", "sharpe"):
        assert figures[key] is None
    assert data["equity"] is None and data["daily_chart"] is None
    assert Book.objects.count() == 1


@pytest.mark.django_db
def test_the_equity_curve_equals_the_plain_positions_reference(replayed_book):
    """``book_equity_curve`` reads the trades as float columns and marks them in numpy;
    the reference reads each trade row and marks it close by close in a plain loop."""
    from analytics.selectors import book_equity_curve
    from markets.bars import timeframe_delta
    from markets.selectors import candle_arrays
    from markets.timestamps import ms_from_utc, utc_from_ms
    from signals.models import BookState

    positions, markets = [], {}
    for trade in PaperTrade.objects.filter(book=replayed_book).select_related("signal"):
        if trade.entry_time is None or trade.quantity is None or trade.entry_price is None:
            continue
        signal = trade.signal
        key = f"{signal.exchange} {signal.symbol} {signal.timeframe}"
        markets[key] = (signal.exchange, signal.symbol, signal.timeframe)
        closed = trade.status == PaperTrade.Status.CLOSED
        positions.append(
            PaperPosition(
                market=key,
                direction=1 if trade.side == "long" else -1,
                quantity=float(trade.quantity),
                entry_price=float(trade.entry_price),
                entry_time=ms_from_utc(trade.entry_time),
                exit_time=ms_from_utc(trade.exit_time) if closed and trade.exit_time else None,
                pnl=float(trade.pnl) if closed and trade.pnl is not None else 0.0,
            )
        )
    assert positions
    state = BookState.objects.get(book=replayed_book).state
    first = min(p.entry_time for p in positions)
    candles = {
        key: candle_arrays(
            exchange=e,
            symbol=s,
            timeframe=t,
            after=utc_from_ms(first - 1),
            until=utc_from_ms(state["last_time"][key]) if key in state["last_time"] else None,
        )
        for key, (e, s, t) in markets.items()
    }
    steps = {int(timeframe_delta(m[2]).total_seconds() * 1000) for m in markets.values()}
    assert len(steps) == 1
    times, expected = plain(candles, positions, steps.pop())
    curve = book_equity_curve(book=replayed_book)
    assert len(expected) > 100
    assert curve.time.tolist() == times
    # The loop adds in another order than numpy: equal to far below a cent.
    assert curve.equity.tolist() == pytest.approx(expected, abs=1e-6)


@pytest.mark.django_db
def test_no_candles_no_curve_and_no_trade_read(replayed_book):
    """Without candles to mark on, the curve is empty: the trades are not read."""
    from analytics.selectors import book_equity_curve
    from markets.models import Candle

    Candle.objects.all().delete()
    with CaptureQueriesContext(connection) as queries:
        curve = book_equity_curve(book=replayed_book)
    assert len(curve) == 0
    # The trades' columns are the only read with a CASE (their market, side, status).
    assert queries.captured_queries
    assert not any("CASE WHEN" in q["sql"] for q in queries.captured_queries)


@pytest.mark.django_db
def test_the_equity_chart_is_the_curve_at_each_days_last_close_in_the_period(
    trader_client, replayed_book
):
    """The period's equity: one point per UTC day, the per-candle curve at that day's last
    close inside the period (its last day cut at the period's end)."""
    from analytics.selectors import book_equity_curve

    curve = book_equity_curve(book=replayed_book)
    until = book_clock(replayed_book) + timedelta(microseconds=1)
    since = until - timedelta(days=7)
    keep = (curve.time >= ms_from_utc(since)) & (curve.time < ms_from_utc(until))
    times, values = curve.time[keep], curve.equity[keep]
    days = times // 86_400_000
    last = [i for i in range(len(times)) if i == len(times) - 1 or days[i + 1] != days[i]]
    assert 6 <= len(last) <= 8
    data = api(trader_client, book=replayed_book.pk, period="7d")
    chart = data["equity"]["chart"]
    assert chart["series"][0]["values"] == [float(cents(float(values[i]))) for i in last]
    assert chart["labels"] == [f"{utc_from_ms(int(times[i])):%Y-%m-%d %H:%M}" for i in last]
