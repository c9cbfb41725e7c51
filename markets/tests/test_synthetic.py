import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from markets.cleaning import RawCandle, clean_candles
from markets.synthetic import synthetic_bars
from markets.timestamps import is_on_grid, ms_from_utc

HOUR = timedelta(hours=1)
END = datetime(2024, 3, 1, 10, 37, tzinfo=UTC)


def test_same_seed_gives_the_same_candles():
    assert synthetic_bars(timeframe=HOUR, count=50, end=END, seed=11) == synthetic_bars(
        timeframe=HOUR, count=50, end=END, seed=11
    )


def test_different_seeds_give_different_candles():
    first = synthetic_bars(timeframe=HOUR, count=50, end=END, seed=1)
    second = synthetic_bars(timeframe=HOUR, count=50, end=END, seed=2)

    assert [b.close for b in first] != [b.close for b in second]


def test_candles_sit_on_the_grid_and_end_with_the_last_closed_one():
    bars = synthetic_bars(timeframe=HOUR, count=24, end=END, seed=5)

    assert len(bars) == 24
    assert bars[-1].open_time == datetime(2024, 3, 1, 9, tzinfo=UTC)
    assert all(is_on_grid(b.open_time, HOUR) for b in bars)
    assert all(b.open_time - a.open_time == HOUR for a, b in itertools.pairwise(bars))


def test_an_end_on_the_grid_keeps_the_candle_that_closes_exactly_then():
    bars = synthetic_bars(timeframe=HOUR, count=3, end=datetime(2024, 3, 1, 10, tzinfo=UTC), seed=5)

    assert bars[-1].open_time == datetime(2024, 3, 1, 9, tzinfo=UTC)


@pytest.mark.parametrize("timeframe", [timedelta(minutes=1), HOUR, timedelta(days=1)])
def test_candles_are_valid_positive_and_continuous(timeframe):
    bars = synthetic_bars(timeframe=timeframe, count=2000, end=END, seed=42)

    for bar in bars:
        assert 0 < bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.volume > 0
    assert all(b.open == a.close for a, b in itertools.pairwise(bars))
    assert bars[0].open == Decimal("30000")


def test_synthetic_candles_pass_cleaning_untouched():
    bars = synthetic_bars(timeframe=HOUR, count=500, end=END, seed=9)
    raw = [
        RawCandle(ms_from_utc(b.open_time), b.open, b.high, b.low, b.close, b.volume) for b in bars
    ]

    result = clean_candles(raw, timeframe=HOUR, now=END)

    assert result.bars == bars
    assert (result.rejections, result.gaps, result.dropped_open) == ([], [], False)


def test_the_walk_moves_like_a_market_not_a_flat_line():
    closes = [float(b.close) for b in synthetic_bars(timeframe=HOUR, count=1000, end=END, seed=3)]
    hourly_moves = [abs(b / a - 1) for a, b in itertools.pairwise(closes)]

    assert 0.001 < sum(hourly_moves) / len(hourly_moves) < 0.02


def test_start_price_and_invalid_arguments():
    assert synthetic_bars(timeframe=HOUR, count=1, end=END, seed=1, start_price=Decimal("0.5"))[
        0
    ].open == Decimal("0.5")
    with pytest.raises(ValueError, match="positive"):
        synthetic_bars(timeframe=HOUR, count=1, end=END, seed=1, start_price=Decimal(0))
    assert synthetic_bars(timeframe=HOUR, count=0, end=END, seed=1) == []
