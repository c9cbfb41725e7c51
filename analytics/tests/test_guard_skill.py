"""Honest verdicts on a book: a guard blocking every third signal of a losing strategy
saves money only by trading less, one that blocks the losers saves money by skill, and
on a real replay the volume and selection parts add up to the net impact to the cent,
checked against a plain recomputation, for every guard, period and filter."""

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
from django.urls import reverse

from analytics import skill
from analytics.filters import parse_filters
from analytics.tests.factories import BookFactory, decided_signal
from shadow.models import ShadowTrade
from signals.models import GuardDecision

pytestmark = pytest.mark.django_db

API = reverse("analytics:api-page", args=["guards"])
CENT = Decimal("0.01")


@pytest.fixture
def losing_book():
    """120 signals of a strategy that loses 8 per trade on average; ``every_third``
    blocks every third signal whatever it is, ``oracle`` blocks the 40 that lose most."""
    rng = np.random.default_rng(5)
    outcomes = [round(float(x), 2) for x in rng.normal(-8.0, 40.0, size=120)]
    worst = set(np.argsort(outcomes)[:40].tolist())
    book = BookFactory(name="losing strategy")
    for i, pnl in enumerate(outcomes):
        blocked = [
            name for name, hit in (("every_third", i % 3 == 0), ("oracle", i in worst)) if hit
        ]
        passed = [name for name in ("every_third", "oracle") if name not in blocked]
        decided_signal(book, blocked_by=blocked, passed_by=passed, pnl=f"{pnl:.2f}")
    return book


def guards_of(client, book, **params):
    data = client.get(API, {"book": book.pk, **params}).json()["data"]
    return data, {guard["name"]: guard for guard in data["guards"]}


def test_random_blocking_on_a_losing_strategy_is_only_trading_less(trader_client, losing_book):
    data, guards = guards_of(trader_client, losing_book)

    assert data["expectancy"]["negative"]
    random_guard, oracle = guards["every_third"]["any"], guards["oracle"]["any"]
    assert random_guard["verdict"] == skill.ONLY_TRADING_LESS
    assert random_guard["p_value"] > 0.1
    assert oracle["verdict"] == skill.BY_SKILL
    assert oracle["p_value"] < 0.001 and oracle["q_value"] < 0.01
    # Trading less explains the random guard; choosing, the oracle.
    assert abs(Decimal(random_guard["selection"])) < Decimal(random_guard["volume"])
    assert Decimal(oracle["selection"]) > Decimal(oracle["volume"]) > 0
    assert data["fdr_family"] == 2


def test_the_verdicts_are_reproducible(trader_client, losing_book):
    first, _ = guards_of(trader_client, losing_book)
    second, _ = guards_of(trader_client, losing_book)
    assert first == second


def reference(book, since=None, until=None):
    """Per guard name: (net impact, volume, selection) over every block and alone, by the
    simplest computation: read the rows, sum in Python."""
    trades = ShadowTrade.objects.filter(book=book, status="closed", pnl__isnull=False)
    pool = {
        t.signal_id: t.pnl
        for t in trades
        if (since is None or t.exit_time >= since) and (until is None or t.exit_time < until)
    }
    blockers: dict[int, list[str]] = {}
    for d in GuardDecision.objects.filter(signal__book=book, verdict="block"):
        blockers.setdefault(d.signal_id, []).append(d.guard)
    total, n = sum(pool.values(), Decimal(0)), len(pool)
    out = {}
    for guard in {g for names in blockers.values() for g in names}:
        for family, keep in (("any", lambda names: True), ("sole", lambda names: len(names) == 1)):
            mine = [
                pnl
                for signal, pnl in pool.items()
                if guard in blockers.get(signal, []) and keep(blockers[signal])
            ]
            net = (-sum(mine, Decimal(0))).quantize(CENT, ROUND_HALF_UP)
            volume = (-len(mine) * total / n).quantize(CENT, ROUND_HALF_UP)
            out[(guard, family)] = (net, volume, net - volume)
    return out


@pytest.mark.parametrize("period", ["all", "1d", "7d", "30d"])
def test_volume_plus_selection_is_the_net_impact_on_a_real_replay(
    trader_client, replayed_book, period
):
    data = trader_client.get(API, {"book": replayed_book.pk, "period": period}).json()
    filters = parse_filters({"book": str(replayed_book.pk), "period": period})
    expected = reference(replayed_book, filters.since, filters.until)
    assert data["data"]["guards"]
    for guard in data["data"]["guards"]:
        for family in ("any", "sole"):
            figures = guard[family]
            net, volume, selection = (
                Decimal(figures["net_impact"]),
                Decimal(figures["volume"]),
                Decimal(figures["selection"]),
            )
            assert volume + selection == net
            if (guard["name"], family) in expected:
                want = expected[(guard["name"], family)]
                assert (net, volume, selection) == want
            else:
                assert net == volume == selection == 0


def test_the_summary_says_the_strategies_lose_on_average(trader_client, losing_book):
    page = trader_client.get(reverse("analytics:summary"), {"book": losing_book.pk})
    html = page.content.decode()
    assert page.context["data"]["expectancy"]["losing"]
    assert "The strategies lose money on average" in html
    assert "Which guards beat random blocking" in html
