"""Honest verdicts of a large pool, read from the rollups (ADR 0023): the same money as
reading every trade, to the cent; intervals clustered by UTC exit day equal to a plain
computation in this file; a randomisation p-value equal to the normal approximation
computed by hand; and intervals that cover the truth when trades of a day move together
(where Student t, which assumes independent trades, does not)."""

import math
from collections import defaultdict
from datetime import UTC, timedelta
from decimal import ROUND_HALF_UP, Decimal
from statistics import NormalDist

import numpy as np
import pytest
from django.db import connection
from django.urls import reverse

from analytics import guard_skill, skill
from analytics.confidence import t_critical
from analytics.filters import book_clock, parse_filters
from shadow import rollups
from shadow.models import ShadowTrade
from signals.models import BookStrategy, GuardDecision, Signal

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


def plain_day_sums(book, since, until, strategies=None, symbol=""):
    """Per series of the large-pool path, every closed shadow trade exiting in the
    window summed per UTC exit day by the simplest reading: {key: {day: [count, exact
    P&L]}} and {key: sum of squares}. Keys as ``_Window.day_sums``: the pool per strategy
    version, per guard that blocked alone, per blocking guard, and the whole pool."""
    blockers = defaultdict(list)
    for decision in GuardDecision.objects.filter(signal__book=book, verdict="block"):
        blockers[decision.signal_id].append((decision.guard, decision.book_guard_id))
    days = defaultdict(lambda: defaultdict(lambda: [0, Decimal(0)]))
    squares = defaultdict(float)
    trades = ShadowTrade.objects.filter(book=book, status="closed", pnl__isnull=False)
    for trade in trades.select_related("signal"):
        signal = trade.signal
        if since is not None and trade.exit_time < since:
            continue
        if until is not None and trade.exit_time >= until:
            continue
        if strategies is not None and signal.book_strategy_id not in strategies:
            continue
        if symbol and signal.symbol != symbol:
            continue
        mine = blockers[trade.signal_id]
        keys = [(guard_skill.STRATEGY, signal.book_strategy_id), (guard_skill.POOL, None)]
        keys += [(guard_skill.EVERY, blocker) for blocker in mine]
        if len(mine) == 1:
            keys.append((guard_skill.ALONE, mine[0]))
        for key in keys:
            day = days[key][trade.exit_time.astimezone(UTC).date()]
            day[0] += 1
            day[1] += trade.pnl
            squares[key] += float(trade.pnl) ** 2
    return days, squares


def assert_same_sum(mine, plain, key=None):
    """Equal on PostgreSQL (exact decimals); SQLite's rollups sum floats, exact to about
    15 significant digits (docs/rollups.md)."""
    if connection.vendor == "postgresql":
        assert mine == plain, key
    else:
        assert np.allclose(
            np.asarray(mine, dtype=float), np.asarray(plain, dtype=float), rtol=1e-12, atol=1e-9
        ), key


def assert_day_sums_are_plain(window, *, unconfigured=True):
    kinds = (guard_skill.STRATEGY, guard_skill.ALONE, guard_skill.EVERY, guard_skill.POOL)
    count, series = window.day_sums(kinds, unconfigured=unconfigured)
    plain, squares = plain_day_sums(
        window.book, window.since, window.until, window.strategies, window.symbol
    )
    if not unconfigured:
        plain = {
            key: days
            for key, days in plain.items()
            if key[0] not in (guard_skill.ALONE, guard_skill.EVERY) or key[1][1] is not None
        }
    every_day = sorted({day for days in plain.values() for day in days})
    assert count == len(every_day)
    assert series.keys() == plain.keys()
    for key, days in plain.items():
        found = series[key].days(count)
        expected_count = np.zeros(count)
        expected_pnl = np.zeros(count)
        for at, day in enumerate(every_day):
            if day in days:
                expected_count[at] = days[day][0]
                expected_pnl[at] = float(days[day][1])
        assert found.count.tolist() == expected_count.tolist(), key
        # Each day's float is the float of its exact sum.
        assert_same_sum(found.pnl.tolist(), expected_pnl.tolist(), key)
        assert_same_sum(found.total, sum((value for _, value in days.values()), Decimal(0)), key)
        assert found.squares == pytest.approx(squares[key], rel=1e-9), key
    return series


def windows(book):
    """All history, and windows whose ends fall inside a day (read from the rows), one
    that lies inside a single day, one past the book's clock, and narrowed ones."""
    exits = sorted(
        ShadowTrade.objects.filter(book=book, status="closed").values_list("exit_time", flat=True)
    )
    first, last = exits[0], exits[-1]
    middle = first + (last - first) / 2
    clock = book_clock(book)
    strategy = BookStrategy.objects.filter(book=book).order_by("pk").first()
    symbol = Signal.objects.filter(book=book).values_list("symbol", flat=True).first()
    return [
        (None, None, None, ""),
        (first + timedelta(days=2, minutes=37), middle + timedelta(hours=5), None, ""),
        (middle.replace(hour=3, minute=0), middle.replace(hour=21, minute=30), None, ""),
        (middle, clock + timedelta(days=3), None, ""),
        (None, middle, [strategy.pk], ""),
        (first + timedelta(hours=30), None, None, symbol),
        (None, None, None, "NO/SUCH"),
        (None, None, [], ""),
    ]


@pytest.mark.django_db
def test_the_day_sums_equal_each_days_trades(replayed_book):
    rollups.ensure_built(replayed_book.pk)
    checked = 0
    for since, until, strategies, symbol in windows(replayed_book):
        window = guard_skill._Window(
            replayed_book, since, until, strategies, symbol, book_clock(replayed_book)
        )
        series = assert_day_sums_are_plain(window)
        checked += any(key[0] == guard_skill.ALONE for key in series)
        # Only configured guards asked for: the same series, read in fewer groups.
        assert_day_sums_are_plain(window, unconfigured=False)
    assert checked >= 4


@pytest.mark.django_db
def test_a_configuration_blocking_under_two_names_keeps_both(
    replayed_book, trader_client, settings
):
    """A guard configuration whose decisions carry two names in the window (grouped by
    configuration, its day rows' least and greatest names differ): read per name, as
    the page lists it, equal to the trades and to the page's row path."""
    decisions = GuardDecision.objects.filter(
        signal__book=replayed_book,
        verdict="block",
        signal__shadow_trade__status="closed",
        book_guard__isnull=False,
    ).order_by("pk")
    first, second = decisions.filter(book_guard_id=decisions[0].book_guard_id)[:2]
    guard, config = first.guard, first.book_guard_id
    # Both trades exit on one day, one of them blocked under the new name.
    exit_time = ShadowTrade.objects.get(signal_id=first.signal_id).exit_time
    ShadowTrade.objects.filter(signal_id=second.signal_id).update(exit_time=exit_time)
    GuardDecision.objects.filter(pk=second.pk).update(guard=f"{guard} renamed")
    rollups.rebuild(replayed_book.pk)
    window = guard_skill._Window.of(replayed_book, None, None, "", "")
    series = assert_day_sums_are_plain(window, unconfigured=False)
    assert (guard_skill.EVERY, (guard, config)) in series
    assert (guard_skill.EVERY, (f"{guard} renamed", config)) in series
    assert_same_money_both_ways(trader_client, replayed_book, settings)


@pytest.mark.django_db
def test_guards_without_a_configuration_are_read_by_name(replayed_book, trader_client, settings):
    """A book from before guards were frozen per book: its decisions name no
    configuration."""
    GuardDecision.objects.filter(signal__book=replayed_book).update(book_guard=None)
    rollups.rebuild(replayed_book.pk)
    window = guard_skill._Window.of(replayed_book, None, None, "", "")
    series = assert_day_sums_are_plain(window)
    assert any(key[0] == guard_skill.EVERY and key[1][1] is None for key in series)
    _, rolled = assert_same_money_both_ways(trader_client, replayed_book, settings)
    assert any(guard["any"]["evaluated"] for guard in rolled["guards"])


def assert_same_money_both_ways(client, book, settings):
    settings.GUARD_STATS_ROW_LIMIT = 20_000
    rows, by_rows = guards(client, book, "all")
    settings.GUARD_STATS_ROW_LIMIT = 0
    rolled, by_rollups = guards(client, book, "all")
    assert rolled["interval"] == "clustered by UTC day" != rows["interval"]
    assert by_rollups.keys() == by_rows.keys()
    same = ("evaluated", "wins", "shadow_pnl", "net_impact", "volume", "selection")
    for label, guard in by_rollups.items():
        for family in ("any", "sole"):
            assert {k: guard[family][k] for k in same} == {
                k: by_rows[label][family][k] for k in same
            }, (label, family)
    return rows, rolled


@pytest.mark.django_db
def test_the_books_expectancy_from_the_rollups_is_the_whole_pools(replayed_book, settings):
    """The summary and learning pages' expectancy of a large pool: the exact mean of every
    closed shadow trade, its interval clustered by exit day."""
    rows = guard_skill.book_expectancy(book=replayed_book)
    settings.GUARD_STATS_ROW_LIMIT = 0
    rolled = guard_skill.book_expectancy(book=replayed_book)
    assert rolled.trades == rows.trades > 0
    assert_same_sum(rolled.mean_pnl, rows.mean_pnl)
    low, high = clustered([(day, value) for day, value, _ in plain_pool(replayed_book, None, None)])
    assert rolled.low.quantize(CENT, ROUND_HALF_UP) == cent(low)
    assert rolled.high.quantize(CENT, ROUND_HALF_UP) == cent(high)
