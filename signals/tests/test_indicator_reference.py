"""Our indicators against the ``ta`` library (a test-only dependency, pinned in
requirements-dev.txt), on a seeded random walk and on real hourly BTC/USD candles.

Where the conventions are the same (true range, rolling mean and population standard
deviation, the Donchian channel) the values are compared from the first one defined.
Where they differ only in the seed, the values are compared once the seed has decayed:
``ta``'s EMA, MACD and RSI are pandas ``ewm(adjust=False)`` seeded with the first value,
its ATR with the mean of the first n true ranges counting the first candle's high - low,
while ours are seeded with the mean of the first n values (TA-Lib's convention). Both
follow the same recursion, so the difference shrinks by the smoothing factor at every
candle; the comparison starts once that factor, raised to the candles elapsed, is
below 1e-12 (``settled``). The tolerance is 1e-9 relative everywhere but in the
Bollinger bands, where pandas' running variance drifts (see that test; ours is checked
against exact arithmetic instead).
"""

import math
import random
import statistics

import numpy as np
import pandas as pd
import pytest
from ta.momentum import RSIIndicator
from ta.trend import MACD, EMAIndicator
from ta.volatility import AverageTrueRange, BollingerBands, DonchianChannel

from signals.domain.indicators import donchian, ema, macd, rolling_mean_std, wilder_atr, wilder_rsi

RELATIVE = 1e-9
REAL_CANDLES = "data/candles/coinbase/Coinbase_BTCUSD_1h.normalized.csv"


def random_walk(count: int = 5000, seed: int = 42) -> dict[str, np.ndarray]:
    """High, low and close of a seeded random walk around 30000, with gaps between a
    close and the next open so the true range sometimes reaches past high - low."""
    rng = random.Random(seed)
    price, rows = 30000.0, []
    for _ in range(count):
        open_ = price * (1 + rng.gauss(0, 0.002))
        price = max(100.0, open_ * (1 + rng.gauss(0, 0.012)))
        rows.append(
            (
                max(open_, price) * (1 + abs(rng.gauss(0, 0.004))),
                min(open_, price) * (1 - abs(rng.gauss(0, 0.004))),
                price,
            )
        )
    table = np.array(rows)
    return {"high": table[:, 0].copy(), "low": table[:, 1].copy(), "close": table[:, 2].copy()}


def real_candles(shared_dir) -> dict[str, np.ndarray]:
    # Columns: timestamp_ms, datetime_utc, open, high, low, close, volume, volume_quote.
    table = np.loadtxt(shared_dir / REAL_CANDLES, delimiter=",", skiprows=1, usecols=(3, 4, 5))
    return {"high": table[:, 0].copy(), "low": table[:, 1].copy(), "close": table[:, 2].copy()}


@pytest.fixture(params=["random walk", "real candles"])
def candles(request) -> dict[str, np.ndarray]:
    if request.param == "random walk":
        return random_walk()
    return real_candles(request.getfixturevalue("shared_dir"))


def settled(*decays: float) -> int:
    """How many candles it takes each seed difference in turn to shrink below 1e-12 of
    itself, for smoothing factors ``decays`` applied one after the other."""
    return sum(math.ceil(math.log(1e-12) / math.log(decay)) for decay in decays)


def series(values: np.ndarray) -> pd.Series:
    return pd.Series(values)


def assert_close(
    ours: np.ndarray,
    theirs,
    start: int,
    *,
    scale: np.ndarray | None = None,
    tolerance: float = RELATIVE,
):
    """Equal within ``tolerance`` from ``start`` on, relative to the values or to
    ``scale`` where given (for values near zero), and both defined there."""
    theirs = np.asarray(theirs, dtype=np.float64)
    ours, theirs = ours[start:], theirs[start:]
    assert len(ours) > 1000
    assert not np.isnan(ours).any()
    assert not np.isnan(theirs).any()
    size = np.abs(theirs) if scale is None else np.abs(scale[start:])
    worst = float(np.max(np.abs(ours - theirs) / size))
    assert worst <= tolerance, f"relative difference up to {worst:.3g}"


def first_defined(values: np.ndarray) -> int:
    return int(np.flatnonzero(~np.isnan(values))[0])


@pytest.mark.parametrize("period", [5, 12, 26])
def test_ema_matches_ta_once_the_seed_has_decayed(candles, period):
    ours, _ = ema(candles["close"], period)
    theirs = EMAIndicator(series(candles["close"]), window=period).ema_indicator()
    assert first_defined(ours) == period - 1
    assert_close(ours, theirs, settled(1 - 2 / (period + 1)))


def test_the_true_range_matches_ta_from_the_second_candle(candles):
    # ATR of period 1 is the true range itself in both (ta counts high - low on the
    # first candle, which has no previous close; ours leaves it undefined).
    ours, _ = wilder_atr(candles["high"], candles["low"], candles["close"], 1)
    theirs = AverageTrueRange(
        series(candles["high"]), series(candles["low"]), series(candles["close"]), window=1
    ).average_true_range()
    assert np.isnan(ours[0])
    assert (ours[1:] == theirs.to_numpy()[1:]).all()


@pytest.mark.parametrize("period", [5, 14, 20])
def test_wilder_atr_matches_ta_once_the_seed_has_decayed(candles, period):
    ours, _ = wilder_atr(candles["high"], candles["low"], candles["close"], period)
    theirs = AverageTrueRange(
        series(candles["high"]), series(candles["low"]), series(candles["close"]), window=period
    ).average_true_range()
    assert first_defined(ours) == period
    assert_close(ours, theirs, settled((period - 1) / period))


@pytest.mark.parametrize("period", [3, 14, 21])
def test_wilder_rsi_matches_ta_once_the_seed_has_decayed(candles, period):
    ours, _ = wilder_rsi(candles["close"], period)
    theirs = RSIIndicator(series(candles["close"]), window=period).rsi()
    assert first_defined(ours) == period
    assert_close(ours, theirs, settled((period - 1) / period))


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (3, 10, 16)])
def test_macd_matches_ta_once_the_seeds_have_decayed(candles, fast, slow, signal):
    line, signal_line, _ = macd(candles["close"], fast, slow, signal)
    reference = MACD(
        series(candles["close"]), window_slow=slow, window_fast=fast, window_sign=signal
    )
    assert first_defined(line) == slow - 1
    assert first_defined(signal_line) == slow - 1 + signal - 1
    # The MACD crosses zero: measure its difference against the price, not itself.
    start = settled(1 - 2 / (slow + 1), 1 - 2 / (signal + 1))
    assert_close(line, reference.macd(), start, scale=candles["close"])
    assert_close(signal_line, reference.macd_signal(), start, scale=candles["close"])


@pytest.mark.parametrize(("period", "width"), [(20, 2.0), (5, 1.5), (50, 2.5)])
def test_bollinger_bands_match_ta_from_the_first_value(candles, period, width):
    middle, deviation, _ = rolling_mean_std(candles["close"], period)
    reference = BollingerBands(series(candles["close"]), window=period, window_dev=width)
    close = candles["close"]
    start = period - 1
    assert first_defined(middle) == first_defined(deviation) == start
    assert_close(middle, reference.bollinger_mavg(), start)
    # pandas keeps a running variance, adding the newest value and removing the oldest,
    # so its rounding errors pile up along the series: on the real candles its standard
    # deviation is off by up to 1.5e-8 of the price (1e-4 where five equal closes have
    # none). Ours sums each window afresh: checked exactly below.
    drift = 1e-7
    assert_close(middle + width * deviation, reference.bollinger_hband(), start, tolerance=drift)
    assert_close(middle - width * deviation, reference.bollinger_lband(), start, tolerance=drift)
    assert_close(
        deviation,
        (reference.bollinger_hband() - reference.bollinger_lband()) / (2 * width),
        start,
        scale=close,
        tolerance=drift,
    )


@pytest.mark.parametrize(("period", "width"), [(20, 2.0), (5, 1.5)])
def test_bollinger_bands_are_exact_where_pandas_drifts(candles, period, width):
    # The statistics module computes the mean and variance of floats in exact fractions.
    middle, deviation, _ = rolling_mean_std(candles["close"], period)
    for i in range(period - 1, len(middle), 7):
        window = candles["close"][i - period + 1 : i + 1].tolist()
        assert middle[i] == pytest.approx(statistics.fmean(window), rel=1e-15)
        assert deviation[i] == pytest.approx(
            statistics.pstdev(window), abs=1e-15 * candles["close"][i]
        )


@pytest.mark.parametrize("period", [1, 20, 55])
def test_the_donchian_channel_matches_ta_one_candle_later_exactly(candles, period):
    # ta's channel of a candle includes the candle; ours is the candles before it.
    upper, lower, _ = donchian(candles["high"], candles["low"], period)
    reference = DonchianChannel(
        series(candles["high"]), series(candles["low"]), series(candles["close"]), window=period
    )
    assert first_defined(upper) == first_defined(lower) == period
    assert (upper[period:] == reference.donchian_channel_hband().to_numpy()[period - 1 : -1]).all()
    assert (lower[period:] == reference.donchian_channel_lband().to_numpy()[period - 1 : -1]).all()
