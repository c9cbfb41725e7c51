"""A guard's skill apart from trading less (pure numpy; no Django, no database).

A guard that blocks signals of a losing strategy "saves money" whatever it blocks: any
block avoids an average loss. This module separates the two effects and asks the
question a quant asks first, *better than chance?*:

- **Decomposition.** Over a pool of decided signals with a closed shadow trade (the
  blocked ones and the control group the guard let through), a guard that blocked
  ``k`` of them has net impact ``-sum(blocked P&L)``. Its *volume part* is what blocking
  ``k`` average signals of the pool would have done, ``-k * mean(pool P&L)``; its
  *selection part* is the rest, ``-k * (mean(blocked) - mean(pool))``. In cents the
  volume part is rounded and the selection part is the remainder, so the two add up to
  the net impact to the cent.
- **Randomisation test.** How often does blocking ``k`` signals drawn at random (without
  replacement) from the same pool do at least as well? The one-sided p-value
  ``(1 + #{random >= observed}) / (1 + draws)`` (Monte Carlo, seeded), or, when the pool
  is too large for the draw budget, the normal approximation of a sum drawn without
  replacement (finite-population variance), which is accurate at those sizes.
- **False discovery rate.** A book's guards are judged on one history: the p-values are
  adjusted by Benjamini-Hochberg before a verdict says *by skill*.
- **Intervals that respect time.** Trades of one book overlap and cluster, so the
  intervals of a mean come from the stationary bootstrap (Politis & Romano 1994) over
  the trades in time order: blocks of geometric length whose mean is chosen from the
  data's autocorrelation (Politis & White 2004), seeded, percentile interval. Student t stays beside it as a reference.
- **Large pools: clustered by day.** Past a pool size (``analytics.guard_skill``) the
  statistics are computed from the book's sums per UTC exit day (its rollups) instead
  of every trade: the interval of a mean is the cluster-robust one, clusters being
  days (``clustered_mean_interval``), and the randomisation test is the normal
  approximation it already is at those sizes (``randomisation_normal``). Trades that
  overlap and cluster within a day move together; the cluster variance lets them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from statistics import NormalDist

import numpy as np

CONFIDENCE = 0.95
# The false discovery rate the book's verdicts are controlled at.
FDR_LEVEL = 0.05
RANDOMISATION_DRAWS = 2000
BOOTSTRAP_RESAMPLES = 1000
# Above this many (trades x resamples) the bootstrap's variance is computed in closed form.
BOOTSTRAP_BUDGET = 1_000_000
DEFAULT_SEED = 20261207
# Above this many (pool size x draws) the randomisation test uses the normal approximation.
MONTE_CARLO_BUDGET = 10_000_000
CENT = Decimal("0.01")

BY_SKILL = "saves money by skill"
ONLY_TRADING_LESS = "saves money only by trading less"
COSTS_MONEY = "costs money"
NO_CLEAR_EFFECT = "no clear effect"
NOT_ENOUGH_DATA = "not enough data"
VERDICTS = (BY_SKILL, ONLY_TRADING_LESS, COSTS_MONEY, NO_CLEAR_EFFECT, NOT_ENOUGH_DATA)
VERDICT_MEANINGS = {
    BY_SKILL: (
        "its net impact is above zero and it beat blocking the same number of signals "
        "at random (after false discovery rate control across the book's guards)"
    ),
    ONLY_TRADING_LESS: (
        "its net impact is above zero, but blocking as many signals at random would "
        "have done as well: the saving comes from trading less"
    ),
    COSTS_MONEY: "the signals it blocked made money: its net impact is below zero",
    NO_CLEAR_EFFECT: "the interval of its net impact per trade includes zero",
    NOT_ENOUGH_DATA: "too few of the signals it blocked have a closed shadow trade",
}


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Decomposition:
    """Net impact split into what trading less did and what choosing did (to the cent)."""

    net_impact: Decimal
    volume: Decimal
    selection: Decimal


def decompose(*, blocked_pnl: Decimal, blocked: int, pool_pnl: Decimal, pool: int) -> Decomposition:
    """``net = volume + selection`` in cents: volume ``-blocked * pool_pnl / pool``
    rounded to the cent, selection the remainder of the net impact in cents."""
    net = cents(-blocked_pnl)
    volume = cents(-Decimal(blocked) * pool_pnl / pool) if pool else Decimal("0.00")
    return Decomposition(net_impact=net, volume=volume, selection=net - volume)


@dataclass(frozen=True, slots=True)
class RandomisationTest:
    """How often blocking as many random signals of the pool saves at least as much."""

    p_value: float
    method: str  # "monte carlo" or "normal approximation"
    draws: int


def randomisation_test(
    pool_pnl: np.ndarray,
    blocked: np.ndarray,
    *,
    draws: int = RANDOMISATION_DRAWS,
    seed: int | Sequence[int] = DEFAULT_SEED,
    budget: int = MONTE_CARLO_BUDGET,
) -> RandomisationTest | None:
    """One-sided: the share of random blocks of ``blocked.sum()`` pool signals whose net
    impact is at least the guard's (``None`` when the guard blocked none or all)."""
    values = np.asarray(pool_pnl, dtype=float)
    mask = np.asarray(blocked, dtype=bool)
    n, k = len(values), int(mask.sum())
    if k == 0 or k == n:
        return None
    observed = -float(values[mask].sum())
    # Drawing the smaller side is the same test: the sum of the others is total minus it.
    take, sign = (k, 1.0) if k <= n - k else (n - k, -1.0)
    total = float(values.sum())
    if n * draws <= budget:
        rng = np.random.default_rng(seed)
        hits = 0
        chunk = max(1, min(draws, 4_000_000 // max(n, 1)))
        done = 0
        tolerance = 1e-9 * (float(np.abs(values).sum()) + 1.0)
        while done < draws:
            size = min(chunk, draws - done)
            keys = rng.random((size, n))
            picked = np.argpartition(keys, take - 1, axis=1)[:, :take]
            sums = values[picked].sum(axis=1)
            random_net = -sums if sign > 0 else -(total - sums)
            hits += int(np.count_nonzero(random_net >= observed - tolerance))
            done += size
        return RandomisationTest(
            p_value=(1 + hits) / (1 + draws), method="monte carlo", draws=draws
        )
    return randomisation_normal(
        pool=n,
        blocked=k,
        mean=float(values.mean()),
        variance=float(values.var()),
        observed=observed,
    )


def randomisation_normal(
    *, pool: int, blocked: int, mean: float, variance: float, observed: float
) -> RandomisationTest:
    """The randomisation test's normal approximation: the net impact of ``blocked``
    signals drawn without replacement from a pool of ``pool`` with this ``mean`` and
    population ``variance`` has mean ``-blocked * mean`` and the finite-population
    variance ``blocked * variance * (pool - blocked) / (pool - 1)``; the one-sided
    p-value of the guard's ``observed`` net impact."""
    n, k = pool, blocked
    sd = math.sqrt(max(k * variance * (n - k) / (n - 1), 0.0)) if n > 1 else 0.0
    expected = -k * mean
    if sd == 0:
        p = 1.0 if observed <= expected else 0.0
    else:
        z = (observed - expected) / sd
        p = 0.5 * math.erfc(z / math.sqrt(2))
    return RandomisationTest(p_value=p, method="normal approximation", draws=0)


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg adjusted p-values (q-values) of a family; ``None`` stays
    ``None`` and is not counted in the family."""
    indexed = [(p, i) for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    m = len(indexed)
    if not m:
        return out
    indexed.sort()
    running = 1.0
    for rank in range(m, 0, -1):
        p, i = indexed[rank - 1]
        running = min(running, p * m / rank)
        out[i] = min(running, 1.0)
    return out


def _autocovariances(centred: np.ndarray, lags: int) -> np.ndarray:
    """``sum(x[t] x[t + k]) / n`` for k = 0..lags of a centred series (by FFT)."""
    n = len(centred)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(centred, size)
    return np.fft.irfft(spectrum * np.conj(spectrum), size)[: lags + 1] / n


def stationary_bootstrap_variance(values: np.ndarray, mean_block: float | None = None) -> float:
    """The variance of a stationary-bootstrap resample's mean, in closed form: two
    positions ``k`` apart in a resample lie in one block with probability ``q^k``
    (``q = 1 - p``), and then covary as the series' circular autocovariance ``c(k)``
    (Politis & Romano 1994), so the variance is ``(c(0) + 2 sum (1 - k/n) q^k c(k)) / n``.
    What the resamples estimate, without drawing them: used on long series."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2:
        return 0.0
    p = 1.0 / (mean_block if mean_block is not None else block_length(x))
    q = 1.0 - p
    centred = x - x.mean()
    # q^k falls below 1e-15 long before n on a long series: only those lags count.
    lags = 0 if q <= 0 else min(n - 1, int(math.log(1e-15) / math.log(q)) + 1)
    linear = _autocovariances(centred, lags)
    if lags == 0:
        return float(max(linear[0] / n, 0.0))
    k = np.arange(1, lags + 1)
    # Circular: the lag-k products that wrap round the end of the series,
    # sum(tail[lags - k + t] * head[t] for t < k), a cross-correlation of the last and
    # first ``lags`` values (by FFT).
    head, tail = centred[:lags], centred[n - lags :]
    size = 1 << (2 * lags).bit_length()
    cross = np.fft.irfft(np.fft.rfft(tail, size) * np.conj(np.fft.rfft(head, size)), size)
    wrapped = cross[lags - k] / n
    circular = linear[1:] + wrapped
    weights = (1 - k / n) * q**k
    return float(max((linear[0] + 2 * weights @ circular) / n, 0.0))


def block_length(values: np.ndarray) -> float:
    """The stationary bootstrap's mean block length, chosen from the data by Politis &
    White (2004) with the correction of Patton, Politis & White (2009): longer when the
    trades are more autocorrelated; between 1 and ``min(3 sqrt(n), n / 3)``."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 4:
        return 1.0
    x = x - x.mean()
    kn = max(5, math.floor(math.log10(n)))
    m_max = min(math.ceil(math.sqrt(n)) + kn, n - 1)
    b_max = math.ceil(min(3 * math.sqrt(n), n / 3))
    acv = _autocovariances(x, m_max)
    if acv[0] <= 0:
        return 1.0
    significant = 2 * math.sqrt(math.log10(n) / n)
    insignificant = np.abs(acv[1:] / acv[0]) < significant
    # The first lag after which kn autocorrelations in a row are insignificant.
    m_hat = m_max
    for lag in range(len(insignificant) - kn + 1):
        if insignificant[lag : lag + kn].all():
            m_hat = lag
            break
    m = min(2 * max(m_hat, 1), m_max)
    g, long_run = 0.0, float(acv[0])
    for k in range(1, m + 1):
        weight = 1.0 if k / m <= 0.5 else 2 * (1 - k / m)
        g += 2 * weight * k * acv[k]
        long_run += 2 * weight * acv[k]
    if long_run <= 0 or g == 0:
        return 1.0
    length = (2 * g * g / (2 * long_run * long_run)) ** (1 / 3) * n ** (1 / 3)
    return float(min(max(length, 1.0), b_max))


def stationary_bootstrap_means(
    values: np.ndarray,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    mean_block: float | None = None,
    seed: int | Sequence[int] = DEFAULT_SEED,
) -> np.ndarray:
    """Means of ``resamples`` stationary-bootstrap resamples of ``values`` (in time
    order): each resample strings together blocks that start at a random trade and run
    on (wrapping round) for a geometric number of trades with mean ``mean_block``."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return np.empty(0)
    p = 1.0 / (mean_block if mean_block is not None else block_length(x))
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, min(resamples, 2_000_000 // n))
    positions = np.arange(n)
    for first in range(0, resamples, chunk):
        size = min(chunk, resamples - first)
        new_block = rng.random((size, n)) < p
        new_block[:, 0] = True
        starts = rng.integers(0, n, size=(size, n))
        # For each position, where its block began and the random start of that block.
        began = np.where(new_block, positions, 0)
        np.maximum.accumulate(began, axis=1, out=began)
        start_of_block = np.take_along_axis(starts, began, axis=1)
        index = (start_of_block + positions - began) % n
        means[first : first + size] = x[index].mean(axis=1)
    return means


@dataclass(frozen=True, slots=True)
class Interval:
    low: float | None
    high: float | None


def percentile_interval(samples: np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    if len(samples) == 0:
        return Interval(None, None)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return Interval(float(low), float(high))


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf((1 + confidence) / 2)


def bootstrap_mean_interval(
    values: np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int | Sequence[int] = DEFAULT_SEED,
    budget: int = BOOTSTRAP_BUDGET,
) -> Interval:
    """The stationary-bootstrap percentile interval of the mean of ``values`` (time
    order); no interval below two values. Past ``budget`` (trades x resamples) the
    resamples are not drawn: the interval is normal with the bootstrap's own variance in
    closed form (``stationary_bootstrap_variance``), which at those lengths is what the
    percentile interval converges to."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return Interval(None, None)
    if len(x) * resamples > budget:
        half = _z(confidence) * math.sqrt(stationary_bootstrap_variance(x))
        mean = float(x.mean())
        return Interval(mean - half, mean + half)
    means = stationary_bootstrap_means(x, resamples=resamples, seed=seed)
    return percentile_interval(means, confidence)


def bootstrap_difference_interval(
    first: np.ndarray,
    second: np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int | Sequence[int] = DEFAULT_SEED,
) -> Interval:
    """Interval of ``mean(first) - mean(second)``, each side resampled in its own time
    order by the stationary bootstrap."""
    if len(first) < 2 or len(second) < 2:
        return Interval(None, None)
    if (len(first) + len(second)) * resamples > BOOTSTRAP_BUDGET:
        a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
        variance = stationary_bootstrap_variance(a) + stationary_bootstrap_variance(b)
        half = _z(confidence) * math.sqrt(variance)
        difference = float(a.mean() - b.mean())
        return Interval(difference - half, difference + half)
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, 2**31, size=2)
    a = stationary_bootstrap_means(first, resamples=resamples, seed=int(seeds[0]))
    b = stationary_bootstrap_means(second, resamples=resamples, seed=int(seeds[1]))
    return percentile_interval(a - b, confidence)


def clustered_mean_interval(
    counts: np.ndarray, sums: np.ndarray, *, confidence: float = CONFIDENCE
) -> Interval:
    """The interval of the mean of trades known only by their count and sum per cluster
    (a UTC day): ``mean = sum(sums) / sum(counts)``, cluster-robust variance
    ``G / (G - 1) * sum((sums_d - counts_d * mean)^2) / N^2`` over the ``G`` clusters
    holding a trade, normal quantile. ``None`` below two trades or two clusters (the
    caller then keeps Student t)."""
    n = np.asarray(counts, dtype=float)
    s = np.asarray(sums, dtype=float)
    held = n > 0
    n, s = n[held], s[held]
    total, clusters = float(n.sum()), len(n)
    if total < 2 or clusters < 2:
        return Interval(None, None)
    mean = float(s.sum()) / total
    residual = s - n * mean
    variance = clusters / (clusters - 1) * float(residual @ residual) / (total * total)
    half = _z(confidence) * math.sqrt(variance)
    return Interval(mean - half, mean + half)


def clustered_difference_interval(
    first_counts: np.ndarray,
    first_sums: np.ndarray,
    second_counts: np.ndarray,
    second_sums: np.ndarray,
    *,
    confidence: float = CONFIDENCE,
) -> Interval:
    """The interval of ``mean(first) - mean(second)`` from counts and sums per cluster
    (aligned: one position per day for both): each cluster's influence on the
    difference, ``u_d = (s1_d - n1_d m1) / N1 - (s2_d - n2_d m2) / N2``, gives the
    cluster-robust variance ``G / (G - 1) * sum(u_d^2)``, which keeps the covariance of
    the two sides within a day. ``None`` when a side has fewer than two trades or fewer
    than two clusters hold a trade."""
    n1, s1 = np.asarray(first_counts, dtype=float), np.asarray(first_sums, dtype=float)
    n2, s2 = np.asarray(second_counts, dtype=float), np.asarray(second_sums, dtype=float)
    total1, total2 = float(n1.sum()), float(n2.sum())
    clusters = int(np.count_nonzero((n1 + n2) > 0))
    if total1 < 2 or total2 < 2 or clusters < 2:
        return Interval(None, None)
    m1, m2 = float(s1.sum()) / total1, float(s2.sum()) / total2
    influence = (s1 - n1 * m1) / total1 - (s2 - n2 * m2) / total2
    variance = clusters / (clusters - 1) * float(influence @ influence)
    half = _z(confidence) * math.sqrt(variance)
    difference = m1 - m2
    return Interval(difference - half, difference + half)


def skill_verdict(
    *,
    samples: int,
    min_samples: int,
    net_low: float | None,
    net_high: float | None,
    q_value: float | None,
    fdr_level: float = FDR_LEVEL,
) -> str:
    """The verdict a trader reads: *not enough data* below ``min_samples`` closed shadow
    trades; *costs money* when the interval of net impact per trade is wholly below zero;
    when it is wholly above, *by skill* if the guard beat random blocking (its q-value
    below ``fdr_level``), else *only by trading less*; *no clear effect* otherwise."""
    if samples < min_samples or net_low is None or net_high is None:
        return NOT_ENOUGH_DATA
    if net_high < 0:
        return COSTS_MONEY
    if net_low > 0:
        if q_value is not None and q_value < fdr_level:
            return BY_SKILL
        return ONLY_TRADING_LESS
    return NO_CLEAR_EFFECT
