"""volatility_ceiling: Wilder's ATR as a percentage of the close (no database)."""

import csv
from datetime import UTC, datetime

import pytest

from markets.bars import CandleArrays
from signals.domain.guards import Snapshot, VolatilityCeiling, build_guard
from signals.domain.strategies import Proposal

HOUR = 3_600_000
LONG = Proposal("long", 100.0, 95.0, 110.0, 24, "test")


def real_candles(shared_dir, count: int = 30) -> CandleArrays:
    """The first ``count`` hourly candles of Coinbase BTC/USD (from 2017-07-01 11:00 UTC)."""
    path = shared_dir / "data/candles/coinbase/Coinbase_BTCUSD_1h.normalized.csv"
    with path.open() as lines:
        rows = [row for _, row in zip(range(count), csv.DictReader(lines), strict=False)]
    return CandleArrays.from_rows(
        [
            [
                float(row[name])
                for name in ("timestamp_ms", "open", "high", "low", "close", "volume")
            ]
            for row in rows
        ]
    )


def flat(count: int, half_range: float = 1.0) -> CandleArrays:
    """Candles closing at 100 with high and low ``half_range`` away: every true range
    is ``2 * half_range``."""
    return CandleArrays.from_rows(
        [
            (i * HOUR, 100.0, 100.0 + half_range, 100.0 - half_range, 100.0, 1.0)
            for i in range(count)
        ]
    )


def snapshot(candles: CandleArrays) -> Snapshot:
    return Snapshot(
        now=datetime(2024, 1, 2, tzinfo=UTC),
        symbol="BTC/USD",
        open_positions=0,
        candles=candles,
        timeframe_ms=HOUR,
    )


@pytest.mark.parametrize(
    ("ceiling", "passed"), [(1.99, False), (2.0, True), (2.01, True)], ids=["below", "at", "above"]
)
def test_it_blocks_above_the_ceiling(ceiling, passed):
    # ATR(14) of true ranges of 2 at a close of 100: 2.0%.
    verdict = VolatilityCeiling(atr_period=14, max_atr_pct=ceiling).check(LONG, snapshot(flat(20)))
    assert verdict.passed is passed
    assert (verdict.guard, verdict.observed, verdict.threshold) == (
        "volatility_ceiling",
        2.0,
        ceiling,
    )
    assert verdict.reason == f"ATR(14) 2.00 is 2.00% of the close 100.00, ceiling {ceiling:.2f}%"


def test_it_needs_one_candle_more_than_the_period():
    assert VolatilityCeiling(atr_period=14).check(LONG, snapshot(flat(15))).observed == 2.0
    verdict = VolatilityCeiling(atr_period=14).check(LONG, snapshot(flat(14)))
    assert (verdict.passed, verdict.observed, verdict.threshold) == (True, None, 5.0)
    assert verdict.reason == "14 candle(s), ATR(14) needs 15"
    empty = VolatilityCeiling().check(LONG, snapshot(CandleArrays.from_rows([])))
    assert (empty.passed, empty.observed) == (True, None)


def test_a_hand_checked_atr_on_real_candles(shared_dir):
    candles = real_candles(shared_dir)
    high, low, close = candles.high.tolist(), candles.low.tolist(), candles.close.tolist()
    true_ranges = [
        max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        for i in range(1, len(close))
    ]
    atr = sum(true_ranges[:14]) / 14  # 28.7371... over 2017-07-01 12:00 to 2017-07-02 01:00
    for true_range in true_ranges[14:]:
        atr = (atr * 13 + true_range) / 14
    expected = 100 * atr / close[-1]
    # By hand: ATR(14) = 23.5402 at the 2017-07-02 16:00 candle, close 2476.41: 0.9506%.
    assert atr == pytest.approx(23.540154831883434, rel=1e-12)
    assert expected == pytest.approx(0.9505758267768033, rel=1e-12)

    verdict = VolatilityCeiling(atr_period=14, max_atr_pct=1.0).check(LONG, snapshot(candles))
    assert verdict.observed == pytest.approx(expected, rel=1e-12)
    assert verdict.passed
    assert verdict.reason == "ATR(14) 23.54 is 0.95% of the close 2476.41, ceiling 1.00%"
    assert (
        not VolatilityCeiling(atr_period=14, max_atr_pct=0.9).check(LONG, snapshot(candles)).passed
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"atr_period": 0}, "atr_period between 1 and 199"),
        ({"atr_period": 200}, "atr_period between 1 and 199"),
        ({"max_atr_pct": 0}, "max_atr_pct > 0"),
        ({"max_atr_pct": "5"}, "parameter max_atr_pct must be float"),
    ],
)
def test_bad_parameters_are_refused_by_name(params, message):
    with pytest.raises(ValueError, match=message):
        build_guard("volatility_ceiling", params)
