"""Honest verdicts of a large pool, read from the rollups (ADR 0023): the same money as
reading every trade, to the cent; intervals clustered by UTC exit day equal to a plain
computation in this file; a randomisation p-value equal to the normal approximation
computed by hand; and intervals that cover the truth when trades of a day move together
(where Student t, which assumes independent trades, does not)."""

import math
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from statistics import NormalDist

import numpy as np
import pytest
from django.urls import reverse

from analytics import skill
from analytics.confidence import t_critical
from analytics.filters import parse_filters
from shadow.models import ShadowTrade
from signals.models import GuardDecision

API = reverse("analytics:api-page", args=["guards"])
CENT = Decimal("0.01")
Z = NormalDist().inv_cdf(0.975)


def guards(client, book, period):
    data = client.get(API, {"book": book.pk, "period": period}).json()["data"]
    return data, {guard["label"]: guard for guard in data["guards"]}


def cent(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(CENT, ROUND_HALF_UP)


@pytest.mark.django_db
@pytest.mark.parametrize("period", ["all", "7d"])
def test_a_large_pool_shows_the_same_money_as_reading_every_trade(
    trader_client, replayed_book, settings, period
):
    rows, by_rows = guards(trader_client, replayed_book, period)
    settings.GUARD_STATS_ROW_LIMIT = 0
    rolled, by_rollups = guards(trader_client, replayed_book, period)
    assert rows["interval"] == "stationary bootstrap"
    assert rolled["interval"] == "clustered by UTC day" != rows["interval"]
    assert rolled["pool"] == rows["pool"] > 0
    assert rolled["expectancy"]["mean_pnl"] == rows["expectancy"]["mean_pnl"]
    assert rolled["expectancy"]["trades"] == rows["expectancy"]["trades"]
    assert [s["mean_pnl"] for s in rolled["strategies"]] == [
        s["mean_pnl"] for s in rows["strategies"]
    ]
    assert by_rollups.keys() == by_rows.keys()
    same = (
        "evaluated", "wins", "shadow_pnl", "net_impact", "volume", "selection",
        "mean_net_impact", "blocked_mean_pnl", "passed_mean_pnl", "difference", "t_verdict",
    )  # fmt: skip
    for label, guard in by_rollups.items():
        for family in ("any", "sole"):
            assert {k: guard[family][k] for k in same} == {
                k: by_rows[label][family][k] for k in same
            }
            # Student t from the rollups' float sum of squares: the same to the cent.
            for bound in ("t_low", "t_high"):
                mine, theirs = guard[family][bound], by_rows[label][family][bound]
                assert (mine is None) == (theirs is None)
                if mine is not None:
                    assert abs(Decimal(mine) - Decimal(theirs)) <= CENT


def plain_pool(book, since, until):
    """The pool by the simplest reading: every closed shadow trade exiting in the window,
    with its exit day, P&L and blocking guards."""
    blockers = defaultdict(list)
    for decision in GuardDecision.objects.filter(signal__book=book, verdict="block"):
        blockers[decision.signal_id].append((decision.guard, decision.book_guard_id))
    pool = []
    for trade in ShadowTrade.objects.filter(book=book, status="closed", pnl__isnull=False):
        if (since is None or trade.exit_time >= since) and (
            until is None or trade.exit_time < until
        ):
            pool.append((trade.exit_time.date(), float(trade.pnl), blockers[trade.signal_id]))
    return pool


def clustered(trades):
    """Plain cluster-robust interval of the mean of (day, value) pairs."""
    days = defaultdict(lambda: [0, 0.0])
    for day, value in trades:
        days[day][0] += 1
        days[day][1] += value
    n = sum(c for c, _ in days.values())
    g = len(days)
    if n < 2 or g < 2:
        return None
    mean = sum(s for _, s in days.values()) / n
    variance = g / (g - 1) * sum((s - c * mean) ** 2 for c, s in days.values()) / n**2
    return mean - Z * math.sqrt(variance), mean + Z * math.sqrt(variance)


def student(values):
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_critical(n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


@pytest.mark.django_db
@pytest.mark.parametrize("period", ["all", "7d"])
def test_clustered_intervals_and_the_p_value_equal_a_plain_computation(
    trader_client, replayed_book, settings, period
):
    settings.GUARD_STATS_ROW_LIMIT = 0
    data, _ = guards(trader_client, replayed_book, period)
    filters = parse_filters({"book": str(replayed_book.pk), "period": period})
    pool = plain_pool(replayed_book, filters.since, filters.until)
    values = [value for _, value, _ in pool]
    n, mean = len(values), sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / n
    checked = 0
    for guard in data["guards"]:
        key = (guard["name"], None)
        for family, keep in (("any", lambda b: True), ("sole", lambda b: len(b) == 1)):
            mine = [
                (day, value)
                for day, value, blockers in pool
                if any(k[0] == key[0] for k in blockers) and keep(blockers)
            ]
            figures = guard[family]
            assert figures["evaluated"] == len(mine)
            if len(mine) < 2:
                continue
            net = clustered([(day, -value) for day, value in mine])
            t = student([-value for _, value in mine])
            if net is not None:
                assert Decimal(figures["ci_low"]) == cent(min(net[0], t[0]))
                assert Decimal(figures["ci_high"]) == cent(max(net[1], t[1]))
            k = len(mine)
            if 0 < k < n:
                observed = -sum(value for _, value in mine)
                sd = math.sqrt(k * variance * (n - k) / (n - 1))
                z = (observed + k * mean) / sd
                p = 0.5 * math.erfc(z / math.sqrt(2))
                assert figures["p_value"] == pytest.approx(p, abs=5e-4)
                assert figures["test"] == "normal approximation"
            checked += 1
    assert checked >= 2
    # The strategies' expectancy: the same clustered interval over the whole pool.
    book = clustered([(day, value) for day, value, _ in pool])
    assert Decimal(data["expectancy"]["low"]) == cent(book[0])
    assert Decimal(data["expectancy"]["high"]) == cent(book[1])


def day_clustered_trades(rng, days=200, per_day=20, shock=1.0, noise=1.0):
    """Trades whose P&L shares a random effect within each day (true mean 0)."""
    counts = rng.integers(1, 2 * per_day, size=days)
    effects = rng.normal(0.0, shock, size=days)
    day = np.repeat(np.arange(days), counts)
    return day, effects[day] + rng.normal(0.0, noise, size=len(day))


def test_the_clustered_interval_covers_the_mean_when_a_day_moves_together():
    rng = np.random.default_rng(23)
    clustered_hits = t_hits = 0
    runs = 400
    for _ in range(runs):
        day, value = day_clustered_trades(rng)
        count = np.bincount(day)
        sums = np.bincount(day, weights=value)
        interval = skill.clustered_mean_interval(count, sums)
        clustered_hits += interval.low <= 0.0 <= interval.high
        half = 1.96 * value.std(ddof=1) / math.sqrt(len(value))
        t_hits += abs(value.mean()) <= half
    assert clustered_hits / runs >= 0.92
    assert t_hits / runs < 0.5  # independent trades assumed: far too narrow


def test_the_clustered_difference_keeps_the_covariance_within_a_day():
    rng = np.random.default_rng(29)
    hits = 0
    runs = 400
    for _ in range(runs):
        day, value = day_clustered_trades(rng)
        blocked = rng.random(len(value)) < 0.3  # random blocking: the true difference is 0
        days = day.max() + 1
        interval = skill.clustered_difference_interval(
            np.bincount(day[~blocked], minlength=days),
            np.bincount(day[~blocked], weights=value[~blocked], minlength=days),
            np.bincount(day[blocked], minlength=days),
            np.bincount(day[blocked], weights=value[blocked], minlength=days),
        )
        hits += interval.low <= 0.0 <= interval.high
    assert 0.92 <= hits / runs <= 0.99


def test_one_day_or_one_trade_gives_no_clustered_interval():
    assert skill.clustered_mean_interval(np.array([5]), np.array([3.0])).low is None
    assert skill.clustered_mean_interval(np.array([1, 0]), np.array([3.0, 0.0])).low is None
    assert (
        skill.clustered_difference_interval(
            np.array([3, 0]), np.array([1.0, 0]), np.array([1, 0]), np.array([2.0, 0])
        ).low
        is None
    )
