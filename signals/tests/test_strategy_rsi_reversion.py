"""The RSI reversion strategy (no database)."""

import math

import pytest

from signals.domain.strategies import RsiReversion, build_strategy
from signals.tests.test_strategies import (
    assert_ignores_the_future,
    assert_resumes_exactly,
    random_walk,
    series,
)

# Three losses of 1: RSI3 on candle 3 is 0 (average gain 0, loss 1). Candle 4 gains 3:
# gain (0 * 2 + 3) / 3 = 1, loss (1 * 2 + 0) / 3 = 2/3, RSI 100 * 1 / (5/3) = 60: back
# above 30. True ranges (see ``series``): 3, 3, 3, then 5: ATR3 = 3, then 11/3.
OVERSOLD_THEN_UP = [100.0, 99.0, 98.0, 97.0, 100.0]
OVERBOUGHT_THEN_DOWN = [100.0, 101.0, 102.0, 103.0, 100.0]


def strategy(**params) -> RsiReversion:
    return RsiReversion(**{"period": 3, "atr_period": 3, **params})


def test_rsi_climbing_back_above_oversold_proposes_a_long():
    scan = strategy().scan(series(OVERSOLD_THEN_UP), None)

    assert scan.index == [4]
    (long,) = scan.proposals
    assert long.side == "long"
    assert long.entry_price == 100.0
    assert long.stop_loss == pytest.approx(100 - 1.5 * 11 / 3, abs=1e-12)  # 94.5
    assert long.take_profit == pytest.approx(100 + 3 * 11 / 3, abs=1e-12)  # 111
    assert long.max_hold == 24
    assert long.reason == "RSI3 back above 30 at 60 (was 0); ATR3=3.66667"


def test_rsi_falling_back_below_overbought_proposes_a_short_with_the_stop_above():
    scan = strategy(max_hold=3).scan(series(OVERBOUGHT_THEN_DOWN), None)

    assert scan.index == [4]
    (short,) = scan.proposals
    assert short.side == "short"
    assert short.entry_price == 100.0
    assert short.stop_loss == pytest.approx(105.5, abs=1e-12)
    assert short.take_profit == pytest.approx(89.0, abs=1e-12)
    assert short.max_hold == 3
    assert short.reason == "RSI3 back below 70 at 40 (was 100); ATR3=3.66667"


def test_a_recovery_that_stays_oversold_waits_for_the_crossing():
    # Candle 4 gains 0.5: gain 1/6, loss 2/3, RSI 20, still oversold. Candle 5 gains 2.5:
    # gain (1/3 + 2.5) / 3 = 17/18, loss 4/9, RSI 100 * 17 / 25 = 68.
    scan = strategy().scan(series([*OVERSOLD_THEN_UP[:4], 97.5, 100.0]), None)
    assert scan.index == [5]
    assert scan.proposals[0].reason.startswith("RSI3 back above 30 at 68 (was 20)")


def test_the_thresholds_are_parameters():
    # RSI 60 is not back above an oversold level of 65.
    assert strategy(oversold=65.0).scan(series(OVERSOLD_THEN_UP), None).proposals == []
    assert strategy(overbought=35.0).scan(series(OVERBOUGHT_THEN_DOWN), None).proposals == []


def test_with_shorts_off_a_fall_from_overbought_proposes_nothing():
    assert strategy(allow_short=False).scan(series(OVERBOUGHT_THEN_DOWN), None).proposals == []
    assert strategy(allow_short=False).scan(series(OVERSOLD_THEN_UP), None).index == [4]


def test_nothing_is_proposed_before_the_rsi_of_the_previous_candle_exists():
    # RSI4 starts on candle 4: there is no earlier value to cross from.
    assert strategy(period=4).scan(series(OVERSOLD_THEN_UP), None).proposals == []
    assert strategy().scan(series(OVERSOLD_THEN_UP[:4]), None).proposals == []


def test_nothing_is_proposed_before_the_atr_exists():
    assert strategy(atr_period=4).scan(series(OVERSOLD_THEN_UP), None).index == [4]
    assert strategy(atr_period=5).scan(series(OVERSOLD_THEN_UP), None).proposals == []


@pytest.fixture
def candles():
    return random_walk(600, seed=24)


def test_a_resumed_scan_equals_one_scan_of_all_candles(candles):
    lively = RsiReversion(period=5, atr_period=5)
    assert_resumes_exactly(lively, candles, [0, 1, 4, 5, 6, 7, 300, 599, 600])


def test_a_proposal_uses_no_candle_after_its_own(candles):
    assert_ignores_the_future(RsiReversion(period=5, atr_period=5), candles, 300)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"period": 0}, "rsi_reversion needs period >= 1"),
        ({"oversold": 70, "overbought": 30}, "0 < oversold < overbought < 100"),
        ({"oversold": 0}, "0 < oversold < overbought < 100"),
        ({"overbought": 100}, "0 < oversold < overbought < 100"),
        ({"oversold": math.nan}, "0 < oversold < overbought < 100"),
        ({"oversold": "30"}, "parameter oversold must be float"),
        ({"atr_period": 0}, "atr_period >= 1"),
        ({"stop_atr": -1.5}, "positive stop_atr"),
        ({"target_atr": 0}, "positive target_atr"),
        ({"max_hold": -1}, "max_hold >= 1"),
        ({"fast": 3}, "unknown parameter"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(params, message):
    with pytest.raises(ValueError, match=message):
        build_strategy("rsi_reversion", params)


def test_the_registry_builds_it_by_name():
    assert build_strategy("rsi_reversion", {}) == RsiReversion()
    built = build_strategy("rsi_reversion", {"oversold": 20, "overbought": 80, "period": 7})
    assert built == RsiReversion(period=7, oversold=20.0, overbought=80.0)
