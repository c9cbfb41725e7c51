"""Student t confidence interval of a mean from count, sum and sum of squares (pure code).

The database returns the three sums; this module turns them into an interval without
scipy. The t critical value comes from the closed form of Student's distribution for an
integer number of degrees of freedom (Abramowitz & Stegun 26.7.3 and 26.7.4), solved by
bisection, and from the Cornish-Fisher expansion when there are many degrees of freedom.
"""

import math
from dataclasses import dataclass
from decimal import Decimal

# The guard page's intervals: 95 %, Student t (docs/adr/0012-guard-interval-student-t.md).
CONFIDENCE = 0.95

# Past this many degrees of freedom the series gets long and the expansion is exact to
# better than 1e-7, far below what a money interval needs.
_EXPANSION_FROM_DF = 200


def _two_sided_probability(t: float, df: int) -> float:
    """P(|T| < t) for Student's T with ``df`` degrees of freedom, ``t >= 0``."""
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2 == 1:
        series, term = 0.0, 1.0
        # 1 + (2/3)cos^2 + (2*4)/(3*5)cos^4 + ... up to cos^(df-3)
        for k in range(1, (df - 1) // 2 + 1):
            series += term
            term *= cos2 * (2 * k) / (2 * k + 1)
        tail = math.sin(theta) * math.cos(theta) * series if df > 1 else 0.0
        return 2 / math.pi * (theta + tail)
    series, term = 0.0, 1.0
    # 1 + (1/2)cos^2 + (1*3)/(2*4)cos^4 + ... up to cos^(df-2)
    for k in range(1, df // 2 + 1):
        series += term
        term *= cos2 * (2 * k - 1) / (2 * k)
    return math.sin(theta) * series


def _normal_quantile(p: float) -> float:
    """The standard normal quantile, by bisection on ``math.erf``."""
    low, high = -40.0, 40.0
    for _ in range(200):
        middle = (low + high) / 2
        if 0.5 * (1 + math.erf(middle / math.sqrt(2))) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def t_critical(df: int, confidence: float = 0.95) -> float:
    """The two-sided critical value of Student's t: ``P(|T| < value) = confidence``."""
    if df < 1:
        raise ValueError("a t interval needs at least one degree of freedom")
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie strictly between 0 and 1")
    if df >= _EXPANSION_FROM_DF:
        z = _normal_quantile((1 + confidence) / 2)
        return (
            z
            + (z**3 + z) / (4 * df)
            + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
        )
    low, high = 0.0, 1.0
    while _two_sided_probability(high, df) < confidence:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        if _two_sided_probability(middle, df) < confidence:
            low = middle
        else:
            high = middle
    return (low + high) / 2


@dataclass(frozen=True, slots=True)
class MeanInterval:
    """A sample mean and its confidence interval; the bounds are ``None`` below two samples."""

    count: int
    mean: Decimal | None
    low: Decimal | None
    high: Decimal | None


def mean_interval(
    count: int, total: Decimal, total_of_squares: Decimal, confidence: float = CONFIDENCE
) -> MeanInterval:
    """The mean of a sample given its size, sum and sum of squares, with a t interval."""
    if count == 0:
        return MeanInterval(count=0, mean=None, low=None, high=None)
    mean = total / count
    if count == 1:
        return MeanInterval(count=1, mean=mean, low=None, high=None)
    # Sums from a float-backed database (SQLite) can make a zero variance slightly negative.
    variance = max((total_of_squares - total * total / count) / (count - 1), Decimal(0))
    half_width = Decimal(repr(t_critical(count - 1, confidence))) * (variance / count).sqrt()
    return MeanInterval(count=count, mean=mean, low=mean - half_width, high=mean + half_width)
