"""The signal page: every decision of one signal, readable, with the versions that made it."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from analytics.selectors import signal_detail
from analytics.tests.factories import (
    GuardDecisionFactory,
    SignalFactory,
    SignalTransitionFactory,
    replay_testex,
)
from analytics.views import measure, payload_summary
from markets import admin_format
from markets.admin_format import quote_currency
from signals.models import Book, BookGuard, GuardConfig, GuardDecision, Signal, SignalState

pytestmark = pytest.mark.django_db

# Session, user, the user's and their groups' permissions, the signal with its book,
# strategy version and trades, its decisions, its transitions, the window of candles its
# chart shows: whatever their number.
PAGE_QUERIES = 8


def signal_url(signal_id):
    return reverse("analytics:signal", args=[signal_id])


def replay():
    replay_testex()
    return Book.objects.get(name="replay testex BTC/USD 1h")


@pytest.fixture
def book():
    """A replay of 400 synthetic hours: closed paper trades and a cooldown block."""
    from signals.tests.candles import store_walk

    store_walk(400, seed=5)
    return replay()


@pytest.fixture
def blocked(book):
    return book.signals.filter(state=SignalState.BLOCKED).first()


def test_anonymous_visitor_is_sent_to_the_login(client, blocked):
    response = client.get(signal_url(blocked.pk))

    assert response.status_code == 302
    assert response.url.startswith(f"{reverse('login')}?next=")


def test_it_shows_every_guard_verdict_with_units_and_versions(trader_client, blocked):
    response = trader_client.get(signal_url(blocked.pk))

    assert response.status_code == 200
    html = response.content.decode()
    decisions = list(blocked.decisions.select_related("book_guard"))
    assert {d.guard for d in decisions} == {"cooldown_after_stop", "max_open_positions"}
    for decision in decisions:
        assert f'<th scope="row">{decision.guard}</th>' in html
        assert f"v{decision.book_guard.config_version}" in html
        assert decision.reason in html
    cooldown = next(d for d in decisions if d.guard == "cooldown_after_stop")
    assert cooldown.verdict == GuardDecision.Verdict.BLOCK
    assert f"{cooldown.observed_value:.0f} minutes" in html
    assert "240 minutes" in html
    assert "0 positions" in html
    assert "1 position<" in html
    assert "blocks if ≥" in html
    assert "ema_crossover testex BTC/USD 1h</dd>" in html
    assert f"v{blocked.book_strategy.config_version}" in html


def test_it_shows_both_times_of_every_transition(trader_client, blocked):
    html = trader_client.get(signal_url(blocked.pk)).content.decode()

    transitions = list(blocked.transitions.all())
    assert [t.name for t in transitions] == ["generate", "block"]
    for transition in transitions:
        assert f"{transition.simulated_at:%Y-%m-%d %H:%M}" in html
        assert f"{transition.created_at:%Y-%m-%d %H:%M:%S}" in html
    assert "Market time (UTC)" in html
    assert "Written at (wall clock, UTC)" in html
    assert "blocked by cooldown_after_stop" in html


def test_a_blocked_signal_shows_what_its_shadow_trade_made(trader_client, blocked):
    shadow = blocked.shadow_trade
    html = trader_client.get(signal_url(blocked.pk)).content.decode()

    assert admin_format.money(shadow.pnl, "USD") in html
    assert admin_format.number(shadow.r_multiple, 2) in html
    word = "saved" if shadow.pnl < 0 else "cost"
    assert f"{word} {abs(shadow.pnl):.2f} USD" in html


def test_a_closed_signal_shows_its_paper_and_shadow_trades(trader_client, book):
    closed = book.signals.filter(state=SignalState.CLOSED).select_related("paper_trade").first()
    paper = closed.paper_trade

    html = trader_client.get(signal_url(closed.pk)).content.decode()

    assert '<th scope="col" class="num">Paper</th>' in html
    assert '<th scope="col" class="num">Shadow</th>' in html
    assert f"{paper.pnl:.2f} USD" in html
    assert f"{paper.exit_time:%Y-%m-%d %H:%M}" in html
    assert paper.get_exit_reason_display() in html
    assert "verdict-pass" in html
    assert "verdict-block" not in html


def test_a_missing_signal_is_not_found(trader_client, book):
    missing = (Signal.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1

    assert trader_client.get(signal_url(missing)).status_code == 404


def test_its_queries_do_not_grow_with_decisions_or_transitions(
    trader_client, blocked, django_assert_max_num_queries
):
    with django_assert_max_num_queries(PAGE_QUERIES):
        assert trader_client.get(signal_url(blocked.pk)).status_code == 200

    busy = SignalFactory(state=SignalState.BLOCKED)
    for n in range(12):
        GuardDecisionFactory(
            signal=busy,
            guard=f"guard {n:02}",
            book_guard=BookGuard.objects.create(
                book=busy.book, name=f"guard {n:02}", kind="max_drawdown", config_version=n + 1
            ),
        )
        SignalTransitionFactory(signal=busy)
    with django_assert_max_num_queries(PAGE_QUERIES):
        html = trader_client.get(signal_url(busy.pk)).content.decode()
    # Counted in the decisions table (the chart's legend repeats each verdict).
    assert html.split('<table class="decisions')[1].count("verdict-pass") == 12
    assert "v12" in html


def test_a_book_frozen_before_an_edit_still_shows_the_old_version(admin_client, blocked):
    guard = GuardConfig.objects.get(name="cooldown_after_stop")
    response = admin_client.post(
        reverse("admin:signals_guardconfig_change", args=[guard.pk]),
        {"name": guard.name, "kind": guard.kind, "params": '{"minutes": 60}', "enabled": "on"},
    )
    assert response.status_code == 302
    guard.refresh_from_db()
    assert guard.version == 2

    html = admin_client.get(signal_url(blocked.pk)).content.decode()

    history = reverse("admin:signals_guardconfig_history", args=[guard.pk])
    assert f'<a href="{history}"' in html
    assert ">v1</a>" in html
    assert ">v2</a>" not in html


def test_the_admin_signal_page_links_here_and_shows_guard_versions(admin_client, blocked):
    html = admin_client.get(
        reverse("admin:signals_signal_change", args=[blocked.pk])
    ).content.decode()

    assert f'href="{signal_url(blocked.pk)}"' in html
    guard = GuardConfig.objects.get(name="cooldown_after_stop")
    assert reverse("admin:signals_guardconfig_history", args=[guard.pk]) in html
    assert ">v1</a>" in html


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        ("1234.5", "quote", "1,234.50 USD"),
        ("-12.345", "quote", "\N{MINUS SIGN}12.35 USD"),
        ("3.14159", "%", "3.14%"),
        ("2", "positions", "2 positions"),
        ("1", "positions", "1 position"),
        ("90.000", "minutes", "90 minutes"),
        ("12.5", "minutes", "12.50 minutes"),
        ("1.5", "ratio", "1.50 : 1"),
        ("3", "stop-outs", "3 stop-outs"),
        ("1.5", "timeframes", "1.50 timeframes"),
        ("0E-12", "positions", "0 positions"),
        ("7", "", "7"),
    ],
)
def test_measures_read_with_their_unit(value, unit, text):
    assert measure(Decimal(value), unit, "USD") == text


def test_a_missing_measure_is_a_dash():
    assert measure(None, "%", "USD") == "\N{EN DASH}"


@pytest.mark.parametrize(
    ("symbol", "currency"),
    [("BTC/USD", "USD"), ("BTC/USD:USD", "USD"), ("ETH/USDT:USDT", "USDT"), ("XBTUSD", "")],
)
def test_quote_currency_of_a_symbol(symbol, currency):
    assert quote_currency(symbol) == currency


def test_payload_summary_reads_in_one_line():
    summary = payload_summary(
        {
            "exit_time": "2024-01-03T18:00:00+00:00",
            "exit_reason": "target",
            "exit_price": 28504.74221142736,
            "blocked_by": [],
        }
    )

    assert summary == (
        "exit time 2024-01-03 18:00 · exit reason target · exit price 28,504.74 · blocked by none"
    )


def test_signal_detail_of_a_missing_signal_is_none():
    assert signal_detail(signal_id=123456) is None


def chart_of(client, signal):
    response = client.get(signal_url(signal.pk))
    assert response.status_code == 200
    return response.context["chart"], response.content.decode()


def test_the_chart_shows_the_candles_around_a_closed_trade_through_its_exit(trader_client, book):
    from analytics.signal_chart import CANDLES_AFTER, CANDLES_BEFORE
    from markets.models import Candle

    closed = book.signals.filter(state=SignalState.CLOSED).select_related("paper_trade").first()
    paper = closed.paper_trade
    chart, html = chart_of(trader_client, closed)

    stored = Candle.objects.filter(symbol=closed.symbol, timeframe=closed.timeframe)
    hour = 3600
    signal_s = int(closed.candle_time.timestamp())
    exit_s = int(paper.exit_time.timestamp())
    times = [row[0] for row in chart["candles"]]
    assert times[0] == signal_s - CANDLES_BEFORE * hour
    assert times[-1] == exit_s + CANDLES_AFTER * hour
    assert times == sorted(times) and len(times) == len(set(times))
    first = stored.get(open_time=closed.candle_time)
    assert chart["candles"][CANDLES_BEFORE] == [
        signal_s,
        float(first.open),
        float(first.high),
        float(first.low),
        float(first.close),
    ]
    assert chart["signal_time"] == signal_s
    assert chart["lines"] == [
        {"name": "entry", "price": float(closed.entry_price), "tone": "neutral"},
        {"name": "stop", "price": float(closed.stop_loss), "tone": "bad"},
        {"name": "target", "price": float(closed.take_profit), "tone": "good"},
    ]
    texts = {marker["text"]: marker for marker in chart["markers"]}
    assert texts[f"{closed.side} signal"]["time"] == signal_s
    # Paper and shadow fill alike on an approved signal: one marker names both.
    entry = texts["paper + shadow entry"]
    assert entry == {
        "time": int(paper.entry_time.timestamp()),
        "position": "atPriceMiddle",
        "price": float(paper.entry_price),
        "shape": "circle",
        "tone": "paper",
        "text": "paper + shadow entry",
    }
    outcome = ", won" if paper.pnl > 0 else ", lost"
    exit_marker = texts[f"paper + shadow exit: {paper.get_exit_reason_display()}{outcome}"]
    assert exit_marker["time"] == exit_s
    assert exit_marker["price"] == float(paper.exit_price)
    assert exit_marker["tone"] == "paper"
    assert [m["time"] for m in chart["markers"]] == sorted(m["time"] for m in chart["markers"])
    if exit_s > int(paper.entry_time.timestamp()):
        assert chart["trades"] == [
            {
                "name": "paper",
                "points": [
                    [int(paper.entry_time.timestamp()), float(paper.entry_price)],
                    [exit_s, float(paper.exit_price)],
                ],
                "tone": "paper",
            }
        ]
    # The data ride in a json_script block; the drawing code is a static file. Every other
    # script is loaded from our static files: the CSP (script-src 'self') allows no more.
    assert '<script id="signal-chart-data" type="application/json">' in html
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts
    for attributes in scripts:
        assert 'src="/static/' in attributes or 'type="application/json"' in attributes
    assert "vendor/lightweight-charts/lightweight-charts.standalone.production.js" in html
    assert "js/signal-chart.js" in html


def test_a_blocked_signal_charts_the_shadow_trade_it_would_have_been(trader_client, blocked):
    shadow = blocked.shadow_trade
    chart, html = chart_of(trader_client, blocked)

    texts = [marker["text"] for marker in chart["markers"]]
    assert f"{blocked.side} blocked by cooldown_after_stop" in texts
    assert "shadow entry" in texts
    outcome = ", won" if shadow.pnl > 0 else ", lost"
    assert f"shadow exit: {shadow.get_exit_reason_display()}{outcome}" in texts
    assert not any("paper" in text for text in texts)
    assert all(trade["name"] == "shadow" for trade in chart["trades"])
    # Each guard's verdict at the signal's candle, beside the chart.
    legend = html.split('class="chart-verdicts"')[1].split("</p>")[0]
    assert 'verdict-block">block</span> cooldown_after_stop' in legend
    assert 'verdict-pass">pass</span> max_open_positions' in legend
    assert "The shadow fills show the trade it would have been." in html


def test_the_chart_reads_one_bounded_window_of_candles(blocked, django_assert_num_queries):
    from analytics.signal_chart import (
        CANDLES_AFTER,
        CANDLES_BEFORE,
        MAX_CANDLES_AFTER_SIGNAL,
        signal_chart,
    )

    detail = signal_detail(signal_id=blocked.pk)
    with django_assert_num_queries(1) as captured:
        chart = signal_chart(detail=detail)

    assert "open_time >" in captured.captured_queries[0]["sql"]
    assert "open_time <=" in captured.captured_queries[0]["sql"]
    assert chart is not None
    most = CANDLES_BEFORE + 1 + min(blocked.max_hold_candles + 1, MAX_CANDLES_AFTER_SIGNAL)
    assert len(chart["candles"]) <= most + CANDLES_AFTER
    # The book holds 400 candles; the chart reads only the signal's neighbourhood.
    assert len(chart["candles"]) < 400


def test_a_signal_without_stored_candles_says_so_instead_of_a_chart(trader_client):
    signal = SignalFactory(state=SignalState.BLOCKED)

    chart, html = chart_of(trader_client, signal)

    assert chart is None
    assert "so no chart" in html
    assert "signal-chart-data" not in html
    assert "lightweight-charts" not in html


def test_an_open_trade_is_charted_through_the_longest_it_may_be_held(
    book, django_assert_num_queries
):
    from datetime import timedelta

    from analytics.signal_chart import CANDLES_AFTER, MAX_CANDLES_AFTER_SIGNAL, signal_chart
    from signals.models import PaperTrade

    signal = book.signals.filter(state=SignalState.CLOSED).order_by("candle_time").first()
    signal.paper_trade.status = PaperTrade.Status.OPEN
    signal.paper_trade.save(update_fields=["status"])
    hour = 3600
    signal_s = int(signal.candle_time.timestamp())

    chart = signal_chart(detail=signal_detail(signal_id=signal.pk))
    last = chart["candles"][-1][0]
    assert last == signal_s + (signal.max_hold_candles + 1 + CANDLES_AFTER) * hour

    # A hold longer than the cap reads no further than the cap (and the candles after).
    Signal.objects.filter(pk=signal.pk).update(max_hold_candles=100_000)
    detail = signal_detail(signal_id=signal.pk)
    with django_assert_num_queries(1) as captured:
        signal_chart(detail=detail)
    end = signal.candle_time + timedelta(hours=MAX_CANDLES_AFTER_SIGNAL + CANDLES_AFTER)
    assert f"open_time <= '{end:%Y-%m-%d %H:%M:%S}" in captured.captured_queries[0]["sql"]
