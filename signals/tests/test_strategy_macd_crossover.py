"""The MACD crossover strategy (no database)."""

import pytest

from signals.domain.strategies import MacdCrossover, build_strategy
from signals.tests.test_strategies import (
    assert_ignores_the_future,
    assert_resumes_exactly,
    random_walk,
    series,
)

# Periods 3, 7 and 3 have smoothing factors 1/2, 1/4 and 1/2: exact in binary, so the
# values below are exact. On a steady fall of 1 an SMA-seeded EMA of period n lags
# (n - 1) / 2 behind: EMA3 = close + 1, EMA7 = close + 3, so the MACD line is -2 from
# candle 6 and its signal line -2 from candle 8: the histogram is 0.
# Candle 12 closes at 92 (from 89): EMA3 = (92 + 90) / 2 = 91, EMA7 = 92 / 4 + 92 * 3/4
# = 92, line -1, signal (-1 - 2) / 2 = -1.5: the histogram goes from 0 to 0.5, a cross.
# True ranges (see ``series``): 3 on the falling candles, 5 on candle 12, so ATR3 is 3,
# then (2 * 3 + 5) / 3 = 11/3.
FALL_THEN_RISE = [100.0 - i for i in range(12)] + [89.0 + 3 * j for j in range(1, 6)]
RISE_THEN_FALL = [100.0 + i for i in range(12)] + [111.0 - 3 * j for j in range(1, 6)]
# A steady rise of 1 (line +2), then a faster one: on candle 12 (114) EMA3 = 112,
# EMA7 = 114 / 4 + 108 * 3/4 = 109.5, line 2.5, signal 2.25: a cross above zero.
RISE_THEN_FASTER = [100.0 + i for i in range(12)] + [111.0 + 3 * j for j in range(1, 6)]


def strategy(**params) -> MacdCrossover:
    return MacdCrossover(**{"fast": 3, "slow": 7, "signal": 3, "atr_period": 3, **params})


def test_the_line_crossing_above_its_signal_proposes_a_long():
    scan = strategy().scan(series(FALL_THEN_RISE), None)

    assert scan.index == [12]
    (long,) = scan.proposals
    assert long.side == "long"
    assert (long.entry_price, long.stop_loss, long.take_profit) == (92.0, 86.5, 103.0)
    assert long.max_hold == 24
    assert long.reason == "MACD(3,7) -1 crossed above its signal line (3) -1.5; ATR3=3.66667"


def test_the_line_crossing_below_its_signal_proposes_a_short_with_the_stop_above():
    scan = strategy(stop_atr=3.0, target_atr=1.5, max_hold=7).scan(series(RISE_THEN_FALL), None)

    assert scan.index == [12]
    (short,) = scan.proposals
    assert short.side == "short"
    assert (short.entry_price, short.stop_loss, short.take_profit) == (108.0, 119.0, 102.5)
    assert short.max_hold == 7
    assert short.reason == "MACD(3,7) 1 crossed below its signal line (3) 1.5; ATR3=3.66667"


def test_with_the_zero_line_filter_a_long_needs_the_line_below_zero():
    assert strategy().scan(series(RISE_THEN_FASTER), None).index == [12]
    filtered = strategy(zero_line_filter=True)
    assert filtered.scan(series(RISE_THEN_FASTER), None).proposals == []
    assert filtered.scan(series(FALL_THEN_RISE), None).index == [12]
    assert filtered.scan(series(RISE_THEN_FALL), None).index == [12]


def test_with_shorts_off_a_downward_cross_proposes_nothing():
    assert strategy(allow_short=False).scan(series(RISE_THEN_FALL), None).proposals == []
    assert strategy(allow_short=False).scan(series(FALL_THEN_RISE), None).index == [12]


def test_nothing_is_proposed_before_the_signal_line_of_the_previous_candle_exists():
    # The signal line starts on candle 8; a turn there is not a cross (no histogram on
    # candle 7), and the line stays above the signal after it.
    turn_at_8 = [100.0 - i for i in range(8)] + [93.0 + 3 * j for j in range(1, 6)]
    assert strategy().scan(series(turn_at_8), None).proposals == []
    assert strategy().scan(series(FALL_THEN_RISE[:12]), None).proposals == []


def test_nothing_is_proposed_before_the_atr_exists():
    assert strategy(atr_period=12).scan(series(FALL_THEN_RISE), None).index == [12]
    assert strategy(atr_period=13).scan(series(FALL_THEN_RISE), None).proposals == []


@pytest.fixture
def candles():
    return random_walk(400, seed=23)


def test_a_resumed_scan_equals_one_scan_of_all_candles(candles):
    lively = MacdCrossover(fast=4, slow=10, signal=4, atr_period=5)
    assert_resumes_exactly(lively, candles, [0, 1, 4, 5, 9, 10, 12, 13, 14, 200, 399, 400])


def test_a_proposal_uses_no_candle_after_its_own(candles):
    assert_ignores_the_future(MacdCrossover(fast=4, slow=10, signal=4), candles, 200)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fast": 26, "slow": 12}, "macd_crossover needs 1 <= fast < slow"),
        ({"fast": 0}, "1 <= fast < slow"),
        ({"signal": 0}, "signal >= 1"),
        ({"signal": 9.0}, "parameter signal must be int"),
        ({"atr_period": 0}, "atr_period >= 1"),
        ({"stop_atr": 0}, "positive stop_atr"),
        ({"target_atr": -3}, "positive target_atr"),
        ({"max_hold": 0}, "max_hold >= 1"),
        ({"zero_line_filter": "yes"}, "parameter zero_line_filter must be bool"),
        ({"oversold": 30.0}, "unknown parameter"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(params, message):
    with pytest.raises(ValueError, match=message):
        build_strategy("macd_crossover", params)


def test_the_registry_builds_it_by_name():
    assert build_strategy("macd_crossover", {}) == MacdCrossover()
    built = build_strategy("macd_crossover", {"fast": 8, "slow": 21, "zero_line_filter": True})
    assert built == MacdCrossover(fast=8, slow=21, zero_line_filter=True)
