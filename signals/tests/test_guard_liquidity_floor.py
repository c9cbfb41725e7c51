"""liquidity_floor: quote volume over the last candles (no database)."""

import csv
from datetime import UTC, datetime

import pytest

from markets.bars import CandleArrays
from signals.domain.guards import LiquidityFloor, Snapshot, build_guard
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


def traded(volumes: list[float], close: float = 100.0) -> CandleArrays:
    return CandleArrays.from_rows(
        [(i * HOUR, close, close, close, close, volume) for i, volume in enumerate(volumes)]
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
    ("floor", "passed"),
    [(4999.5, True), (5000.0, True), (5000.5, False)],
    ids=["below", "at", "above"],
)
def test_it_blocks_below_the_floor(floor, passed):
    # The window's last five candles trade 10 at 100: 5,000 quote; the sixth is older.
    candles = traded([1_000_000.0, 10.0, 10.0, 10.0, 10.0, 10.0])
    verdict = LiquidityFloor(window=5, min_quote_volume=floor).check(LONG, snapshot(candles))
    assert verdict.passed is passed
    assert (verdict.guard, verdict.observed, verdict.threshold) == (
        "liquidity_floor",
        5000.0,
        floor,
    )
    assert verdict.reason == (
        f"5,000.00 quote traded over the last 5 candle(s), floor {floor:,.2f} quote"
    )


def test_with_fewer_candles_than_the_window_it_passes_unobserved():
    verdict = LiquidityFloor(window=5).check(LONG, snapshot(traded([10.0] * 4)))
    assert (verdict.passed, verdict.observed, verdict.threshold) == (True, None, 1_000_000.0)
    assert verdict.reason == "4 candle(s), the window needs 5"


def test_a_hand_checked_quote_volume_on_real_candles(shared_dir):
    candles = real_candles(shared_dir)
    volume, close = candles.volume.tolist(), candles.close.tolist()
    expected = 0.0
    for i in range(len(close) - 24, len(close)):
        expected += volume[i] * close[i]
    # By hand: 24 candles from 2017-07-01 17:00 to 2017-07-02 16:00 UTC traded
    # 19,347,368.52 USD (the exchange's own volume_quote column sums to 19,332,242.70).
    assert expected == pytest.approx(19_347_368.5169, rel=1e-10)

    verdict = LiquidityFloor(window=24, min_quote_volume=19_000_000.0).check(
        LONG, snapshot(candles)
    )
    assert verdict.observed == pytest.approx(expected, rel=1e-12)
    assert verdict.passed
    assert verdict.reason == (
        "19,347,368.52 quote traded over the last 24 candle(s), floor 19,000,000.00 quote"
    )
    assert (
        not LiquidityFloor(window=24, min_quote_volume=20_000_000.0)
        .check(LONG, snapshot(candles))
        .passed
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window": 0}, "window between 1 and 200"),
        ({"window": 201}, "window between 1 and 200"),
        ({"min_quote_volume": -1.0}, "min_quote_volume >= 0"),
    ],
)
def test_bad_parameters_are_refused_by_name(params, message):
    with pytest.raises(ValueError, match=message):
        build_guard("liquidity_floor", params)
