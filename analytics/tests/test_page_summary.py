"""The executive summary, the home page (/), and its JSON twin: the figures of the last
day, 7 days and 30 days against plain references, the windows, the health status by the
/healthz rule, the equity sparkline and a fixed number of queries."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analytics.filters import PERIODS, book_clock
from analytics.numbers import cents, rate
from analytics.tests.factories import (
    BookFactory,
    CandleFactory,
    GuardDecisionFactory,
    PaperTradeFactory,
    ShadowTradeFactory,
    SignalFactory,
    StrategyConfigFactory,
)
from markets.models import Candle
from markets.timestamps import utc_from_ms
from shadow.models import ShadowTrade
from signals.models import GuardDecision, PaperTrade, Signal, SignalState
from signals.tests.factories import START

pytestmark = pytest.mark.django_db

URL = reverse("analytics:summary")
API = reverse("analytics:api-page", args=["summary"])


def api(client, **params):
    response = client.get(API, params)
    assert response.status_code == 200, response.content
    return response.json()["data"]


def window(book, key):
    """(since, until) of a period as the plain reference reads it."""
    until = book_clock(book) + timedelta(microseconds=1)
    return until - PERIODS[key], until


def inside(moment, span):
    return moment is not None and span[0] <= moment < span[1]


def reference(book, key):
    """The period's figures from the rows, one by one, summed in Python."""
    span = window(book, key)
    closed = [
        trade
        for trade in PaperTrade.objects.filter(book=book).select_related(
            "signal__book_strategy", "signal__strategy_config"
        )
        if trade.status == PaperTrade.Status.CLOSED
        and trade.pnl is not None
        and inside(trade.exit_time, span)
    ]
    shadow = [
        trade
        for trade in ShadowTrade.objects.filter(book=book)
        if trade.group == ShadowTrade.Group.BLOCKED
        and trade.status == ShadowTrade.Status.CLOSED
        and trade.pnl is not None
        and inside(trade.exit_time, span)
    ]
    guards: dict[str, Decimal] = {}
    for decision in GuardDecision.objects.filter(signal__book=book, verdict="block"):
        trade = ShadowTrade.objects.filter(signal_id=decision.signal_id).first()
        if trade in shadow:
            guards[decision.guard] = guards.get(decision.guard, Decimal(0)) - trade.pnl
    strategies: dict[str, Decimal] = {}
    for trade in closed:
        signal = trade.signal
        name = signal.book_strategy.name if signal.book_strategy else signal.strategy_config.name
        strategies[name] = strategies.get(name, Decimal(0)) + trade.pnl
    opportunity = sum((t.pnl for t in shadow), Decimal(0))
    wins = sum(1 for t in closed if t.pnl > 0)
    return {
        "pnl": cents(sum((t.pnl for t in closed), Decimal(0))),
        "trades": len(closed),
        "wins": wins,
        "win_rate": rate(wins / len(closed)) if closed else None,
        "signals": sum(1 for s in Signal.objects.filter(book=book) if inside(s.candle_time, span)),
        "opportunity_cost": cents(opportunity),
        "net_impact": cents(-opportunity),
        "guards": guards,
        "strategies": strategies,
    }


def check_period(figures, expected):
    assert Decimal(figures["pnl"]) == expected["pnl"]
    assert figures["trades"] == expected["trades"]
    assert figures["wins"] == expected["wins"]
    assert figures["win_rate"] == expected["win_rate"]
    assert figures["signals"] == expected["signals"]
    assert Decimal(figures["opportunity_cost"]) == expected["opportunity_cost"]
    assert Decimal(figures["net_impact"]) == expected["net_impact"]
    for kind, by_name, money in (
        ("guard", expected["guards"], "net_impact"),
        ("strategy", expected["strategies"], "pnl"),
    ):
        best, worst = figures[f"best_{kind}"], figures[f"worst_{kind}"]
        if not by_name:
            assert best is None and worst is None
            continue
        assert Decimal(best[money]) == cents(max(by_name.values()))
        assert by_name[best["name"]] == max(by_name.values())
        if len(by_name) > 1:
            assert Decimal(worst[money]) == cents(min(by_name.values()))
            assert by_name[worst["name"]] == min(by_name.values())
        else:
            assert worst is None


def html_figures(html, period):
    """{figure: data-value} of one period's section of the page."""
    section = html.split(f'id="period-{period}"', 1)[1].split("</section>", 1)[0]
    return dict(re.findall(r'data-figure="(\w+)" data-value="([^"]*)"', section))


# --- Against the replayed book ----------------------------------------------------------


def test_the_home_page_is_the_summary(trader_client, replayed_book):
    assert URL == "/"
    response = trader_client.get("/")
    assert response.status_code == 200
    assert response.context["page"].name == "summary"
    assert "<h1>Summary</h1>" in response.content.decode()


def test_anonymous_visitor_is_sent_to_the_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={URL}"


def test_every_period_equals_the_plain_reference_and_the_page_shows_the_twin(
    trader_client, replayed_book
):
    data = api(trader_client, book=replayed_book.pk)
    periods = {p["period"]: p for p in data["periods"]}
    assert list(periods) == ["1d", "7d", "30d"]
    expected = {key: reference(replayed_book, key) for key in periods}
    # The fixture is worth testing: trades and blocks in the wider windows, fewer in 7 days.
    assert expected["30d"]["trades"] > expected["7d"]["trades"] > 0
    assert expected["30d"]["guards"] and len(expected["30d"]["strategies"]) >= 1
    for key, figures in periods.items():
        check_period(figures, expected[key])

    html = trader_client.get(URL, {"book": replayed_book.pk}).content.decode()
    for key, figures in periods.items():
        shown = html_figures(html, key)
        for name in ("pnl", "signals", "net_impact", "opportunity_cost"):
            assert Decimal(shown[name]) == Decimal(str(figures[name])), (key, name)
        assert shown["win_rate"] == (
            "" if figures["win_rate"] is None else str(figures["win_rate"])
        )
    from analytics.templatetags.trader import signed_money

    assert signed_money(Decimal(periods["30d"]["pnl"]), "USD") in html
    assert "positive = the guards saved money" in html
    assert "Reports" in html, "the reports card is on the page"


def test_the_query_count_does_not_grow_with_the_signals(
    trader_client, replayed_book, django_assert_max_num_queries
):
    def count():
        with CaptureQueriesContext(connection) as queries:
            assert trader_client.get(URL, {"book": replayed_book.pk}).status_code == 200
        return len(queries)

    before = count()
    clock = book_clock(replayed_book)
    for hours in range(1, 30):
        signal = SignalFactory(
            book=replayed_book,
            state=SignalState.BLOCKED,
            candle_time=clock - timedelta(hours=hours),
        )
        GuardDecisionFactory(signal=signal, guard=f"guard {hours % 3}", verdict="block")
        ShadowTradeFactory(signal=signal, pnl=Decimal(hours), exit_time=signal.candle_time)
    # Rows written outside the engine: the first read rebuilds the book's rollups.
    count()
    assert count() == before
    with django_assert_max_num_queries(before):
        trader_client.get(URL, {"book": replayed_book.pk})


def test_the_sparkline_is_the_books_equity_curve(trader_client, replayed_book):
    from analytics.selectors import book_equity_curve

    data = api(trader_client, book=replayed_book.pk)
    curve = book_equity_curve(book=replayed_book)
    assert Decimal(data["equity"]["equity"]) == cents(float(curve.equity[-1]))
    series = data["equity"]["chart"]["series"][0]
    assert 2 <= len(series["values"]) <= 120
    assert series["values"][-1] == float(cents(float(curve.equity[-1])))
    # One point per UTC day: the curve at that day's last candle close (fewer days than
    # the sparkline's points: every day shows).
    days = curve.time // 86_400_000
    last = [i for i in range(len(curve)) if i == len(curve) - 1 or days[i + 1] != days[i]]
    assert len(last) <= 120
    assert series["values"] == [float(cents(float(curve.equity[i]))) for i in last]
    assert data["equity"]["chart"]["labels"] == [
        f"{utc_from_ms(int(curve.time[i])):%Y-%m-%d %H:%M}" for i in last
    ]
    # Without an open trade at the end, the curve ends at the realised P&L.
    if not PaperTrade.objects.filter(book=replayed_book, status="open").exists():
        realised = sum(
            t.pnl for t in PaperTrade.objects.filter(book=replayed_book, status="closed")
        )
        assert float(curve.equity[-1]) == pytest.approx(float(realised), abs=1e-6)


# --- Hand-made books --------------------------------------------------------------------


@pytest.fixture
def book():
    """Signals and trades placed around the clock (the last signal at START + 40 days)."""
    book = BookFactory(name="hand book")
    clock = START + timedelta(days=40)
    SignalFactory(book=book, candle_time=clock, state=SignalState.GENERATED)
    configs = {name: StrategyConfigFactory(name=name) for name in ("fast", "slow")}

    def paper(pnl, days_before, strategy):
        signal = SignalFactory(
            book=book,
            state=SignalState.CLOSED,
            candle_time=clock - timedelta(days=days_before, hours=1),
            strategy_config=configs[strategy],
        )
        PaperTradeFactory(
            signal=signal, pnl=Decimal(pnl), exit_time=clock - timedelta(days=days_before)
        )

    paper("10.005", 0.5, "fast")  # last day
    paper("-4", 3, "slow")  # last 7 days
    paper("100", 8, "slow")  # outside the 7 days, inside the 30
    paper("7", 45, "fast")  # outside every window

    def blocked(pnl, days_before, guards):
        signal = SignalFactory(
            book=book, state=SignalState.BLOCKED, candle_time=clock - timedelta(days=days_before)
        )
        for guard in guards:
            GuardDecisionFactory(signal=signal, guard=guard, verdict="block")
        ShadowTradeFactory(signal=signal, pnl=Decimal(pnl), exit_time=signal.candle_time)

    blocked("-20", 2, ["max_open_positions"])  # the blocks avoided a 20 loss: +20 saved
    blocked("12.5", 2, ["cooldown"])  # the blocks gave up 12.50: -12.50
    blocked("5", 9, ["cooldown", "max_open_positions"])
    return book


def test_a_trade_outside_the_7_day_window_is_not_in_it(trader_client, book):
    periods = {p["period"]: p for p in api(trader_client, book=book.pk)["periods"]}
    assert Decimal(periods["1d"]["pnl"]) == Decimal("10.01")  # half up, to the cent
    assert periods["1d"]["trades"] == 1
    assert Decimal(periods["7d"]["pnl"]) == Decimal("6.01")
    assert periods["7d"]["trades"] == 2 and periods["7d"]["wins"] == 1
    assert periods["7d"]["win_rate"] == 0.5
    assert Decimal(periods["30d"]["pnl"]) == Decimal("106.01")
    assert periods["30d"]["trades"] == 3
    for key in ("1d", "7d", "30d"):
        check_period(periods[key], reference(book, key))


def test_best_and_worst_guard_follow_the_sign_convention(trader_client, book):
    periods = {p["period"]: p for p in api(trader_client, book=book.pk)["periods"]}
    seven = periods["7d"]
    assert Decimal(seven["opportunity_cost"]) == Decimal("-7.50")
    assert Decimal(seven["net_impact"]) == Decimal("7.50")
    assert seven["best_guard"]["name"] == "max_open_positions"
    assert Decimal(seven["best_guard"]["net_impact"]) == Decimal("20.00")
    assert seven["worst_guard"]["name"] == "cooldown"
    assert Decimal(seven["worst_guard"]["net_impact"]) == Decimal("-12.50")
    assert seven["best_strategy"]["name"] == "fast"
    assert seven["worst_strategy"]["name"] == "slow"
    # Over 30 days the 5.00 both guards blocked counts against both ("any" attribution).
    thirty = periods["30d"]
    assert Decimal(thirty["best_guard"]["net_impact"]) == Decimal("15.00")
    assert Decimal(thirty["worst_guard"]["net_impact"]) == Decimal("-17.50")
    assert thirty["best_strategy"]["name"] == "slow"
    # The last day: no block closed, one strategy only.
    assert periods["1d"]["best_guard"] is None and periods["1d"]["worst_guard"] is None
    assert periods["1d"]["best_strategy"]["name"] == "fast"
    assert periods["1d"]["worst_strategy"] is None

    html = trader_client.get(URL, {"book": book.pk}).content.decode()
    section = html.split('id="period-7d"', 1)[1].split("</section>", 1)[0]
    assert 'class="big pos" data-figure="net_impact" data-value="7.50"' in section
    assert "+7.50 USD" in section
    assert "\N{MINUS SIGN}12.50 USD" in section


def test_the_period_filter_is_ignored(trader_client, book):
    assert api(trader_client, book=book.pk, period="all") == api(trader_client, book=book.pk)


def test_the_health_status_follows_the_healthz_rule(trader_client, book, settings):
    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    def both():
        page = api(trader_client, book=book.pk)["health"]
        gate = trader_client.get("/healthz").json()
        assert page["status"] == gate["status"]
        return page

    assert both()["status"] == "ok"
    html = trader_client.get(URL, {"book": book.pk}).content.decode()
    assert 'data-status="ok"' in html
    assert f'href="{reverse("analytics:health")}?book={book.pk}"' in html

    every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(
        name="late",
        task="x",
        interval=every,
        last_run_at=timezone.now() - timedelta(days=2),
    )
    degraded = both()
    assert degraded["status"] == "degraded" and degraded["checks"]["beat"] == "late"
    assert "celery beat" in trader_client.get(URL, {"book": book.pk}).content.decode()

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    assert both()["status"] == "down"


def test_an_unknown_book_is_not_found(trader_client, book):
    for book_id in ("999999", "abc", "-1", "1.5"):
        assert trader_client.get(URL, {"book": book_id}).status_code == 404


def test_synthetic_candles_get_a_badge(trader_client, book):
    CandleFactory(source=Candle.Source.SYNTHETIC)
    assert "synthetic data" in trader_client.get(URL).content.decode()


def test_without_books_it_tells_how_to_replay(trader_client):
    response = trader_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "There is no book yet" in html
    assert "python manage.py replay" in html


def test_a_book_without_trades_shows_zeros(trader_client):
    empty = BookFactory(name="quiet")
    SignalFactory(book=empty)
    data = api(trader_client, book=empty.pk)
    for figures in data["periods"]:
        assert figures["trades"] == 0 and Decimal(figures["pnl"]) == 0
        assert figures["win_rate"] is None and figures["best_strategy"] is None
        assert figures["signals"] == 1
    assert data["equity"] is None
    assert (
        "No paper trade has been entered yet"
        in trader_client.get(URL, {"book": empty.pk}).content.decode()
    )
