"""The Donchian-channel breakout strategy (no database)."""

import math

import pytest

from signals.domain.strategies import DonchianBreakout, build_strategy
from signals.tests.test_strategies import (
    assert_ignores_the_future,
    assert_resumes_exactly,
    random_walk,
    series,
)

# Candles of ``series``: the high is the higher of open (the previous close) and close,
# plus 1; the low the lower, minus 1.
#   closes  100 101 100 101 100 104 107 103 110
#   highs   101 102 102 102 102 105 108 108 111
# Channel of 3: candle 5's highest high is 102 (candles 2-4): the close of 104 breaks
# out, and candle 4 closed at 100, inside its channel (102). Candle 6 closes at 107 above
# its channel (105) too, but candle 5 was already out: the same breakout. Candle 7 falls
# back inside (103 < 108); candle 8 breaks out again (110 > 108).
# True ranges: 3 on candles 1-4, then 6, 5, 6, 9, so ATR2 = 3 until candle 4, then
# 4.5, 4.75, 5.375 and 7.1875.
BREAKOUTS = [100.0, 101.0, 100.0, 101.0, 100.0, 104.0, 107.0, 103.0, 110.0]
# Mirror image: lows 99 98 98 98 98 95, channel low 98 on candle 5, closing at 96.
BREAKDOWN = [100.0, 99.0, 100.0, 99.0, 100.0, 96.0]


def strategy(**params) -> DonchianBreakout:
    return DonchianBreakout(
        **{"period": 3, "atr_period": 2, "stop_atr": 1.0, "target_atr": 2.0, **params}
    )


def test_the_first_close_above_the_channel_proposes_a_long_and_a_later_one_again():
    scan = strategy().scan(series(BREAKOUTS), None)

    assert scan.index == [5, 8]
    first, second = scan.proposals
    assert first.side == second.side == "long"
    assert (first.entry_price, first.stop_loss, first.take_profit) == (104.0, 99.5, 113.0)
    assert first.reason == "Close 104 broke above the 3-candle high 102; ATR2=4.5"
    assert (second.entry_price, second.stop_loss, second.take_profit) == (
        110.0,
        110 - 7.1875,
        110 + 2 * 7.1875,
    )
    assert second.reason == "Close 110 broke above the 3-candle high 108; ATR2=7.1875"
    assert first.max_hold == 24


def test_a_close_below_the_channel_proposes_a_short_with_the_stop_above():
    scan = strategy(max_hold=5).scan(series(BREAKDOWN), None)

    assert scan.index == [5]
    (short,) = scan.proposals
    assert short.side == "short"
    assert (short.entry_price, short.stop_loss, short.take_profit) == (96.0, 100.5, 87.0)
    assert short.max_hold == 5
    assert short.reason == "Close 96 broke below the 3-candle low 98; ATR2=4.5"


def test_a_close_at_the_channel_is_no_breakout():
    assert strategy().scan(series([*BREAKOUTS[:5], 102.0]), None).proposals == []


def test_the_candle_itself_is_not_part_of_its_channel():
    # Candle 5's own high (105) is above its close: it still breaks the previous three.
    assert series(BREAKOUTS).high[5] == 105.0
    assert strategy().scan(series(BREAKOUTS[:6]), None).index == [5]


def test_with_shorts_off_a_breakdown_proposes_nothing():
    assert strategy(allow_short=False).scan(series(BREAKDOWN), None).proposals == []
    assert strategy(allow_short=False).scan(series(BREAKOUTS), None).index == [5, 8]


def test_nothing_is_proposed_before_two_channels_exist():
    # Period 4: candle 4 has a channel (candles 0-3) and closes inside it, so candle 5
    # can break out. Period 5: candle 4 has none, so candle 5 is not known to be first.
    assert strategy(period=4).scan(series(BREAKOUTS[:6]), None).index == [5]
    assert strategy(period=5).scan(series(BREAKOUTS[:6]), None).proposals == []


def test_nothing_is_proposed_before_the_atr_exists():
    assert strategy(atr_period=5).scan(series(BREAKOUTS[:6]), None).index == [5]
    assert strategy(atr_period=6).scan(series(BREAKOUTS[:6]), None).proposals == []


@pytest.fixture
def candles():
    return random_walk(400, seed=22)


def test_a_resumed_scan_equals_one_scan_of_all_candles(candles):
    lively = DonchianBreakout(period=10, atr_period=5)
    assert_resumes_exactly(lively, candles, [0, 1, 4, 5, 9, 10, 11, 12, 200, 399, 400])


def test_a_proposal_uses_no_candle_after_its_own(candles):
    assert_ignores_the_future(DonchianBreakout(period=10, atr_period=5), candles, 200)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"period": 0}, "donchian_breakout needs period >= 1"),
        ({"period": 20.0}, "parameter period must be int"),
        ({"atr_period": 0}, "atr_period >= 1"),
        ({"stop_atr": 0}, "positive stop_atr"),
        ({"target_atr": -2}, "positive target_atr"),
        ({"target_atr": math.nan}, "positive target_atr"),
        ({"max_hold": 0}, "max_hold >= 1"),
        ({"allow_short": "no"}, "parameter allow_short must be bool"),
        ({"width": 2.0}, "unknown parameter"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(params, message):
    with pytest.raises(ValueError, match=message):
        build_strategy("donchian_breakout", params)


def test_the_registry_builds_it_by_name():
    assert build_strategy("donchian_breakout", {}) == DonchianBreakout()
    built = build_strategy("donchian_breakout", {"period": 55, "stop_atr": 2, "max_hold": 48})
    assert built == DonchianBreakout(period=55, stop_atr=2.0, max_hold=48)
