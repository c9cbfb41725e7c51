"""Reading several markets' closes in one statement gives what reading each gives."""

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from markets.selectors import candle_closes, candle_closes_of_markets
from markets.services import candles_upsert
from markets.synthetic import synthetic_bars

pytestmark = pytest.mark.django_db

END = datetime(2024, 6, 1, tzinfo=UTC)


def test_many_markets_at_once_equal_one_at_a_time(monkeypatch):
    import markets.selectors

    # Small statements, so that the 7 markets span several of them.
    monkeypatch.setattr(markets.selectors, "_MARKETS_PER_STATEMENT", 3)
    keys = []
    for index in range(6):
        symbol = f"M{index}/USD"
        bars = synthetic_bars(timeframe=timedelta(hours=1), count=50 + index, end=END, seed=index)
        candles_upsert(exchange="gen", symbol=symbol, timeframe="1h", bars=bars, source="synthetic")
        keys.append(("gen", symbol, "1h"))
    keys.append(("gen", "NONE/USD", "1h"))  # a market without candles
    draw = random.Random(5)
    ranges = []
    for _ in range(40):
        exchange, symbol, timeframe = draw.choice(keys)
        after = draw.choice([None, END - timedelta(hours=draw.randint(0, 60))])
        until = draw.choice([None, END - timedelta(hours=draw.randint(0, 60))])
        ranges.append((exchange, symbol, timeframe, after, until))
    together = candle_closes_of_markets(ranges)
    assert len(together) == len(ranges)
    nonempty = 0
    for (exchange, symbol, timeframe, after, until), got in zip(ranges, together, strict=True):
        alone = candle_closes(
            exchange=exchange, symbol=symbol, timeframe=timeframe, after=after, until=until
        )
        assert np.array_equal(got.time, alone.time)
        assert np.array_equal(got.close, alone.close)
        nonempty += len(alone.time) > 0
    assert nonempty > 10
    assert candle_closes_of_markets([]) == []
