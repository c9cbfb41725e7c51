"""The statistics behind the honest verdicts (pure numpy, no database): decomposition to
the cent, the randomisation test, Benjamini-Hochberg, and a stationary bootstrap that
covers the true mean of autocorrelated trades where Student t does not."""

import itertools
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import skill
from analytics.confidence import mean_interval

money = st.decimals(min_value=-10_000, max_value=10_000, places=8, allow_nan=False)


@given(
    pool=st.lists(money, min_size=1, max_size=60),
    data=st.data(),
)
def test_volume_and_selection_add_up_to_the_net_impact_to_the_cent(pool, data):
    blocked = data.draw(st.lists(st.booleans(), min_size=len(pool), max_size=len(pool)))
    blocked_pnl = sum((p for p, b in zip(pool, blocked, strict=True) if b), Decimal(0))
    parts = skill.decompose(
        blocked_pnl=blocked_pnl,
        blocked=sum(blocked),
        pool_pnl=sum(pool, Decimal(0)),
        pool=len(pool),
    )
    assert parts.volume + parts.selection == parts.net_impact
    assert parts.net_impact == (-blocked_pnl).quantize(Decimal("0.01"))
    assert parts.volume.as_tuple().exponent == -2 and parts.selection.as_tuple().exponent == -2


def test_the_decomposition_by_hand():
    # Pool of 4 trades: -10, -20, +5, -15 (mean -10). The guard blocked -20 and +5.
    parts = skill.decompose(blocked_pnl=Decimal(-15), blocked=2, pool_pnl=Decimal(-40), pool=4)
    # Net: +15 saved. Blocking 2 average trades saves 20; its choice cost 5 of it.
    assert (parts.net_impact, parts.volume, parts.selection) == (
        Decimal("15.00"),
        Decimal("20.00"),
        Decimal("-5.00"),
    )


def losing_pool(n=400, seed=3):
    """A losing strategy's trades: mean about -8 per trade, wide spread."""
    rng = np.random.default_rng(seed)
    return rng.normal(-8.0, 60.0, size=n)


def test_a_guard_blocking_every_third_signal_saves_money_only_by_trading_less():
    pnl = losing_pool()
    blocked = np.arange(len(pnl)) % 3 == 0
    test = skill.randomisation_test(pnl, blocked, seed=1)
    assert test is not None and test.method == "monte carlo"
    assert test.p_value > 0.1
    net = skill.bootstrap_mean_interval(-pnl[blocked], seed=2)
    verdict = skill.skill_verdict(
        samples=int(blocked.sum()),
        min_samples=5,
        net_low=net.low,
        net_high=net.high,
        q_value=skill.benjamini_hochberg([test.p_value])[0],
    )
    assert verdict in (skill.ONLY_TRADING_LESS, skill.NO_CLEAR_EFFECT)
    assert verdict != skill.BY_SKILL


def test_random_blocking_is_called_skill_no_more_often_than_the_test_level_allows():
    """200 guards blocking 30 % of a losing strategy's signals at random: the randomisation
    test is a fair coin at its level (about 5 % of p-values below 0.05), so "by skill"
    comes up about as rarely, and every other random guard reads as trading less."""
    verdicts, small = [], 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        pnl = rng.normal(-15.0, 40.0, size=300)
        blocked = rng.random(300) < 0.3
        test = skill.randomisation_test(pnl, blocked, draws=500, seed=seed)
        assert test is not None
        small += test.p_value < 0.05
        net = skill.bootstrap_mean_interval(-pnl[blocked], resamples=300, seed=seed)
        verdicts.append(
            skill.skill_verdict(
                samples=int(blocked.sum()),
                min_samples=5,
                net_low=net.low,
                net_high=net.high,
                q_value=test.p_value,
            )
        )
    assert small / 200 <= 0.09
    assert verdicts.count(skill.BY_SKILL) / 200 <= 0.09
    assert verdicts.count(skill.ONLY_TRADING_LESS) / 200 >= 0.8


def test_a_guard_that_blocks_the_losers_saves_money_by_skill():
    pnl = losing_pool()
    # It blocks a third of the signals, those that later lose most.
    blocked = pnl < np.quantile(pnl, 1 / 3)
    test = skill.randomisation_test(pnl, blocked, seed=1)
    assert test is not None and test.p_value < 0.001
    net = skill.bootstrap_mean_interval(-pnl[blocked], seed=2)
    verdict = skill.skill_verdict(
        samples=int(blocked.sum()),
        min_samples=5,
        net_low=net.low,
        net_high=net.high,
        q_value=skill.benjamini_hochberg([test.p_value, 0.5, 0.9])[0],
    )
    assert verdict == skill.BY_SKILL


def test_a_guard_that_blocks_the_winners_costs_money():
    pnl = losing_pool()
    blocked = pnl > np.quantile(pnl, 2 / 3)
    net = skill.bootstrap_mean_interval(-pnl[blocked], seed=2)
    test = skill.randomisation_test(pnl, blocked, seed=1)
    assert test is not None and test.p_value > 0.99
    assert (
        skill.skill_verdict(
            samples=int(blocked.sum()), min_samples=5, net_low=net.low, net_high=net.high, q_value=1
        )
        == skill.COSTS_MONEY
    )


def test_too_few_closed_trades_is_not_enough_data():
    assert (
        skill.skill_verdict(samples=4, min_samples=5, net_low=1.0, net_high=2.0, q_value=0.0)
        == skill.NOT_ENOUGH_DATA
    )


def test_the_randomisation_p_value_by_enumeration():
    # Pool of 5, two blocked: all 10 pairs enumerated by hand.
    pnl = np.array([-5.0, 3.0, -1.0, 2.0, 4.0])
    blocked = np.array([True, False, True, False, False])  # net +6, the best pair
    exact = 1 / 10  # only this pair saves 6 or more
    test = skill.randomisation_test(pnl, blocked, draws=20_000, seed=5)
    assert test is not None
    assert test.p_value == pytest.approx(exact, abs=0.01)


def test_the_normal_approximation_agrees_with_monte_carlo_on_a_large_pool():
    rng = np.random.default_rng(9)
    pnl = rng.normal(-2, 30, size=3000)
    blocked = (pnl < 5) & (rng.random(3000) < 0.4)
    exact = skill.randomisation_test(pnl, blocked, draws=3000, seed=1, budget=10**12)
    approx = skill.randomisation_test(pnl, blocked, seed=1, budget=0)
    assert exact is not None and approx is not None
    assert approx.method == "normal approximation"
    assert approx.p_value == pytest.approx(exact.p_value, abs=0.02)


def test_blocking_nothing_or_everything_has_no_test():
    pnl = np.array([1.0, -2.0])
    assert skill.randomisation_test(pnl, np.array([False, False])) is None
    assert skill.randomisation_test(pnl, np.array([True, True])) is None


def test_benjamini_hochberg_by_hand():
    # p sorted: 0.01, 0.02, 0.03, 0.5 (m = 4): raw q = 0.04, 0.04, 0.04, 0.5.
    q = skill.benjamini_hochberg([0.03, None, 0.5, 0.01, 0.02])
    assert q[1] is None
    assert q[0] == pytest.approx(0.04)
    assert q[3] == pytest.approx(0.04)
    assert q[4] == pytest.approx(0.04)
    assert q[2] == pytest.approx(0.5)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_benjamini_hochberg_q_values_are_at_least_p_and_keep_the_order(p_values):
    q = skill.benjamini_hochberg(p_values)
    for p, adjusted in zip(p_values, q, strict=True):
        assert adjusted is not None and p <= adjusted + 1e-12 <= 1 + 1e-12
    order = np.argsort(p_values, kind="stable")
    ranked = [q[i] for i in order]
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(ranked))


def test_the_bootstrap_is_reproducible_under_a_seed_and_moves_with_it():
    x = losing_pool(200)
    first = skill.bootstrap_mean_interval(x, seed=42)
    assert skill.bootstrap_mean_interval(x, seed=42) == first
    assert skill.bootstrap_mean_interval(x, seed=43) != first


def ar1(n, phi, mu, rng):
    noise = rng.normal(size=n)
    x = np.empty(n)
    x[0] = noise[0] / np.sqrt(1 - phi**2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + noise[i]
    return x + mu


def test_the_bootstrap_covers_the_true_mean_of_autocorrelated_trades():
    """Coverage on simulated clustered trades (AR(1), phi 0.5, 600 trades, 300 series):
    the stationary bootstrap's 95 % interval covers the true mean near its nominal rate;
    Student t, which assumes independent trades, falls far short."""
    rng = np.random.default_rng(2026)
    true_mean, sims = -1.0, 300
    bootstrap_hits = t_hits = 0
    for s in range(sims):
        x = ar1(600, 0.5, true_mean, rng)
        interval = skill.bootstrap_mean_interval(x, seed=s)
        assert interval.low is not None and interval.high is not None
        bootstrap_hits += interval.low <= true_mean <= interval.high
        t = mean_interval(
            len(x), Decimal(repr(float(x.sum()))), Decimal(repr(float((x * x).sum())))
        )
        assert t.low is not None and t.high is not None
        t_hits += float(t.low) <= true_mean <= float(t.high)
    assert bootstrap_hits / sims >= 0.89, bootstrap_hits / sims
    assert t_hits / sims <= 0.80, t_hits / sims


def test_the_block_length_grows_with_autocorrelation():
    rng = np.random.default_rng(7)
    independent = np.median([skill.block_length(rng.normal(size=500)) for _ in range(10)])
    clustered = np.median([skill.block_length(ar1(500, 0.7, 0, rng)) for _ in range(10)])
    assert independent < 4 < clustered


def test_the_difference_interval_is_reproducible_and_centred_on_the_difference():
    rng = np.random.default_rng(1)
    kept, blocked = rng.normal(5, 10, 300), rng.normal(-5, 10, 100)
    interval = skill.bootstrap_difference_interval(kept, blocked, seed=3)
    assert interval == skill.bootstrap_difference_interval(kept, blocked, seed=3)
    assert interval.low is not None and interval.high is not None
    assert interval.low < kept.mean() - blocked.mean() < interval.high
    assert interval.low > 0


def test_the_closed_form_variance_is_what_the_resamples_estimate():
    rng = np.random.default_rng(11)
    x = ar1(800, 0.5, 0.0, rng)
    length = skill.block_length(x)
    drawn = skill.stationary_bootstrap_means(x, resamples=4000, mean_block=length, seed=1)
    closed = skill.stationary_bootstrap_variance(x, mean_block=length)
    assert drawn.var() == pytest.approx(closed, rel=0.08)


def test_a_long_series_gets_the_closed_form_interval_fast_and_close_to_the_drawn_one():
    rng = np.random.default_rng(12)
    x = ar1(3000, 0.4, -2.0, rng)
    drawn = skill.bootstrap_mean_interval(x, seed=1, budget=10**12)
    closed = skill.bootstrap_mean_interval(x, seed=1, budget=0)
    assert closed.low == pytest.approx(drawn.low, abs=0.05)
    assert closed.high == pytest.approx(drawn.high, abs=0.05)
    long = ar1(1_000_000, 0.3, 1.0, rng)
    interval = skill.bootstrap_mean_interval(long)
    assert interval.low is not None and interval.high is not None
    assert interval.low < 1.0 < interval.high


def test_the_block_length_by_fft_equals_the_plain_autocovariances():
    rng = np.random.default_rng(13)
    x = ar1(500, 0.6, 0, rng)
    centred = x - x.mean()
    plain = np.array([centred[k:] @ centred[: len(x) - k] / len(x) for k in range(30)])
    assert skill._autocovariances(centred, 29) == pytest.approx(plain, rel=1e-9, abs=1e-12)


def test_the_closed_form_wraps_round_like_a_plain_sum():
    rng = np.random.default_rng(14)
    x = ar1(300, 0.7, 0, rng)
    q = 1 - 1 / 8.0
    c = x - x.mean()
    n = len(x)
    plain = c @ c / n
    for k in range(1, n):
        circular = sum(c[t] * c[(t + k) % n] for t in range(n)) / n
        plain += 2 * (1 - k / n) * q**k * circular
    assert skill.stationary_bootstrap_variance(x, mean_block=8.0) == pytest.approx(
        plain / n, rel=1e-9
    )
