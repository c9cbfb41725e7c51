"""The opportunity-cost page (/opportunity/) and its JSON twin: totals, breakdowns,
filters, the chart and a fixed number of queries."""

from decimal import Decimal

import pytest
from django.urls import reverse

from analytics.numbers import cents
from shadow.models import ShadowTrade
from signals.models import GuardDecision, Signal, SignalState

pytestmark = pytest.mark.django_db


def api(client, **params):
    response = client.get(reverse("analytics:api-page", args=["opportunity"]), params)
    assert response.status_code == 200, response.content
    return response.json()["data"]


def blocked_shadow_rows(book):
    """(signal, shadow trade) of every blocked signal of ``book``: the plain reference."""
    return [
        (signal, signal.shadow_trade)
        for signal in Signal.objects.filter(book=book, state=SignalState.BLOCKED).select_related(
            "shadow_trade", "book_strategy"
        )
        if hasattr(signal, "shadow_trade")
    ]


def is_counted(trade):
    return (
        trade.group == ShadowTrade.Group.BLOCKED
        and trade.status == ShadowTrade.Status.CLOSED
        and trade.pnl is not None
    )


def test_the_page_shows_the_opportunity_cost_with_its_sign_convention(trader_client, replayed_book):
    rows = blocked_shadow_rows(replayed_book)
    expected = sum((t.pnl for _, t in rows if is_counted(t)), Decimal(0))
    closed = sum(1 for _, t in rows if is_counted(t))
    assert closed > 0, "the fixture has closed shadow trades of blocked signals"

    data = api(trader_client, book=replayed_book.pk)
    totals = data["totals"]
    assert Decimal(totals["opportunity_cost"]) == cents(expected)
    assert Decimal(totals["net_impact"]) == -cents(expected)
    assert totals["closed"] == closed
    assert (
        totals["blocked"]
        == Signal.objects.filter(book=replayed_book, state=SignalState.BLOCKED).count()
    )
    assert totals["still_open"] == sum(
        1 for _, t in rows if t.status in (ShadowTrade.Status.PENDING, ShadowTrade.Status.OPEN)
    )

    page = trader_client.get(reverse("analytics:opportunity"), {"book": replayed_book.pk})
    html = page.content.decode()
    assert "negative means they avoided a loss" in html
    from analytics.templatetags.trader import signed_money

    assert signed_money(Decimal(totals["opportunity_cost"]), "USD") in html
    good = "pos" if expected < 0 else "neg"
    assert f'class="big {good}" id="opp-total"' in html
    assert 'id="opp-chart"' in html


def test_the_guard_breakdown_attributes_any_and_sole(trader_client, replayed_book):
    data = api(trader_client, book=replayed_book.pk)
    rows = blocked_shadow_rows(replayed_book)
    blockers: dict[int, set[str]] = {}
    for signal_id, guard in GuardDecision.objects.filter(
        signal__book=replayed_book, verdict="block"
    ).values_list("signal_id", "guard"):
        blockers.setdefault(signal_id, set()).add(guard)
    by_guard = {row["guard"]: row for row in data["guards"]}
    assert by_guard, "some guard blocked"
    for guard, row in by_guard.items():
        any_pnl = sum(
            (t.pnl for s, t in rows if is_counted(t) and guard in blockers.get(s.pk, ())),
            Decimal(0),
        )
        sole_pnl = sum(
            (t.pnl for s, t in rows if is_counted(t) and blockers.get(s.pk) == {guard}),
            Decimal(0),
        )
        assert Decimal(row["any"]["opportunity_cost"]) == cents(any_pnl), guard
        assert Decimal(row["sole"]["opportunity_cost"]) == cents(sole_pnl), guard
        assert row["any"]["blocked"] == sum(1 for s, _ in rows if guard in blockers.get(s.pk, ()))


def test_filters_narrow_every_figure(trader_client, replayed_book):
    everything = api(trader_client, book=replayed_book.pk)
    nothing = api(trader_client, book=replayed_book.pk, symbol="DOGE/USD")
    assert nothing["totals"]["closed"] == 0 and nothing["totals"]["blocked"] == 0
    assert Decimal(nothing["totals"]["opportunity_cost"]) == 0
    assert nothing["days"] == [] and nothing["chart"] is None
    name = everything["strategies"][0]["name"]
    same = api(trader_client, book=replayed_book.pk, strategy=name, symbol="BTC/USD")
    assert same["totals"] == everything["totals"]
    assert api(trader_client, book=replayed_book.pk, strategy="nope")["totals"]["blocked"] == 0

    week = api(trader_client, book=replayed_book.pk, period="7d")
    assert week["totals"]["blocked"] < everything["totals"]["blocked"]
    # Money by the exit's day: only the last week's days are in the week.
    assert [row["day"] for row in week["days"]] == [
        row["day"] for row in everything["days"] if row["day"] >= week["days"][0]["day"]
    ]


def test_the_chart_has_a_bar_per_day_and_the_running_total(trader_client, replayed_book):
    data = api(trader_client, book=replayed_book.pk)
    chart = data["chart"]
    bars, line = chart["series"]
    assert line["type"] == "line" and bars["tone"] == "cost"
    assert chart["labels"][0] == data["days"][0]["day"]
    assert chart["labels"][-1] == data["days"][-1]["day"]
    by_day = {row["day"]: float(row["opportunity_cost"]) for row in data["days"]}
    assert bars["values"] == [by_day.get(label, 0.0) for label in chart["labels"]]
    assert line["values"][-1] == float(data["totals"]["opportunity_cost"])


def test_the_page_issues_a_fixed_number_of_queries(
    trader_client, replayed_book, django_assert_max_num_queries
):
    # Session, user, the user's and their groups' permissions, book lookup and clock, book
    # metadata, then the page's reads of the rollups: whether they are built, eight sums
    # ("all": no partial day read from the rows), the strategy versions and the symbols'
    # order.
    url = reverse("analytics:opportunity")
    with django_assert_max_num_queries(21):
        assert trader_client.get(url, {"book": replayed_book.pk}).status_code == 200


def test_the_query_count_does_not_grow_with_the_signals(trader_client, replayed_book):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from analytics.tests.test_page_leaderboard import replay_three_strategies
    from signals.models import Book

    def count(book):
        with CaptureQueriesContext(connection) as queries:
            response = trader_client.get(reverse("analytics:opportunity"), {"book": book.pk})
            assert response.status_code == 200
        return len(queries)

    small, signals = count(replayed_book), replayed_book.signals.count()
    Book.objects.all().delete()
    bigger = replay_three_strategies(candles=False)
    assert bigger.signals.count() > 2 * signals
    assert count(bigger) == small
