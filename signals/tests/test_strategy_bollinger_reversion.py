"""The Bollinger-band reversion strategy (no database)."""

import math

import pytest

from signals.domain.strategies import BollingerReversion, build_strategy
from signals.tests.test_strategies import (
    assert_ignores_the_future,
    assert_resumes_exactly,
    random_walk,
    series,
)

# Four closes at 100, a close below the lower band, then one back inside it.
#   candle 4, window 100 100 100 96: mean 99, deviation sqrt(12 / 4) = sqrt(3), so the
#     lower band (width 1) is 97.27 and the close of 96 is below it;
#   candle 5, window 100 100 96 98: mean 98.5, deviation sqrt(11 / 4), lower band 96.84:
#     the close of 98 is back above it and below the middle band (the target).
# True ranges (see ``series``): 2 on the flat candles, then 6 and 4, so ATR3 = 2, then
# (2 * 2 + 6) / 3 = 10/3, then (2 * 10/3 + 4) / 3 = 32/9 on candle 5.
DIP_AND_BACK = [100.0, 100.0, 100.0, 100.0, 96.0, 98.0]
SPIKE_AND_BACK = [100.0, 100.0, 100.0, 100.0, 104.0, 102.0]


def strategy(**params) -> BollingerReversion:
    return BollingerReversion(**{"period": 4, "width": 1.0, "atr_period": 3, **params})


def test_a_close_back_above_the_lower_band_proposes_a_long_targeting_the_middle_band():
    scan = strategy(stop_atr=1.0, max_hold=6).scan(series(DIP_AND_BACK), None)

    assert scan.index == [5]
    (long,) = scan.proposals
    assert long.side == "long"
    assert long.entry_price == 98.0
    assert long.stop_loss == pytest.approx(98 - 32 / 9, abs=1e-12)
    assert long.take_profit == 98.5
    assert long.max_hold == 6
    assert long.reason == (
        "Close 98 back above the lower Bollinger band 96.8417 (4, 1 SD); "
        "target the middle band 98.5; ATR3=3.55556"
    )


def test_a_close_back_below_the_upper_band_proposes_a_short_with_the_stop_above():
    # Mirror image: the upper band on candle 5 is 101.5 + sqrt(11 / 4) = 103.16.
    scan = strategy().scan(series(SPIKE_AND_BACK), None)

    assert scan.index == [5]
    (short,) = scan.proposals
    assert short.side == "short"
    assert short.entry_price == 102.0
    assert short.stop_loss == pytest.approx(102 + 1.5 * 32 / 9, abs=1e-12)
    assert short.take_profit == 101.5
    assert short.max_hold == 24
    assert short.reason.startswith("Close 102 back below the upper Bollinger band 103.158")


def test_a_close_back_inside_but_past_the_middle_band_proposes_nothing():
    # Candle 5 closes at 100, above the lower band but also above the middle band (99):
    # a target there would be a loss.
    assert strategy().scan(series([*DIP_AND_BACK[:5], 100.0]), None).proposals == []
    assert strategy().scan(series([*SPIKE_AND_BACK[:5], 98.0]), None).proposals == []


def test_a_close_that_stays_outside_the_band_proposes_nothing():
    assert strategy().scan(series([*DIP_AND_BACK[:5], 94.0]), None).proposals == []


def test_with_shorts_off_a_return_from_above_proposes_nothing():
    assert strategy(allow_short=False).scan(series(SPIKE_AND_BACK), None).proposals == []
    assert strategy(allow_short=False).scan(series(DIP_AND_BACK), None).index == [5]


def test_the_first_proposal_can_come_on_the_candle_after_the_first_bands():
    # The dip on candle 3, the first with bands (period 4), and back on candle 4.
    closes = DIP_AND_BACK[1:]
    assert strategy().scan(series(closes), None).index == [4]
    assert strategy().scan(series(closes[:4]), None).proposals == []


def test_nothing_is_proposed_before_the_atr_exists():
    # ATR6 needs six true ranges: candle 6; the return was on candle 5.
    assert strategy(atr_period=6).scan(series(DIP_AND_BACK), None).proposals == []
    assert strategy(atr_period=5).scan(series(DIP_AND_BACK), None).index == [5]


@pytest.fixture
def candles():
    return random_walk(400, seed=21)


def test_a_resumed_scan_equals_one_scan_of_all_candles(candles):
    lively = BollingerReversion(period=10, width=1.5, atr_period=5)
    assert_resumes_exactly(lively, candles, [0, 1, 4, 5, 8, 9, 10, 11, 200, 399, 400])


def test_a_proposal_uses_no_candle_after_its_own(candles):
    assert_ignores_the_future(BollingerReversion(period=10, width=1.5, atr_period=5), candles, 200)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"period": 1}, "bollinger_reversion needs period >= 2"),
        ({"width": 0}, "positive width"),
        ({"width": math.nan}, "positive width"),
        ({"width": "2"}, "parameter width must be float"),
        ({"atr_period": 0}, "atr_period >= 1"),
        ({"stop_atr": -1}, "positive stop_atr"),
        ({"stop_atr": math.inf}, "positive stop_atr"),
        ({"max_hold": 0}, "max_hold >= 1"),
        ({"allow_short": 1}, "parameter allow_short must be bool"),
        ({"target_atr": 3.0}, "unknown parameter"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(params, message):
    with pytest.raises(ValueError, match=message):
        build_strategy("bollinger_reversion", params)


def test_the_registry_builds_it_by_name():
    assert build_strategy("bollinger_reversion", {}) == BollingerReversion()
    built = build_strategy("bollinger_reversion", {"period": 30, "width": 3, "stop_atr": 2})
    assert built == BollingerReversion(period=30, width=3.0, stop_atr=2.0)
