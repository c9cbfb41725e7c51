"""A replay's SQL statements do not grow with the candles or the signals it writes."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from markets.services import candles_upsert
from markets.synthetic import synthetic_bars
from shadow.replay import replay_run
from signals.models import GuardConfig, Signal, StrategyConfig
from signals.services import guard_configs_default

pytestmark = pytest.mark.django_db


def _statements(count: int) -> tuple[int, int]:
    symbol = f"S{count}/USD"
    bars = synthetic_bars(
        timeframe=timedelta(hours=1), count=count, end=datetime(2024, 6, 1, tzinfo=UTC), seed=3
    )
    candles_upsert(exchange="gen", symbol=symbol, timeframe="1h", bars=bars, source="synthetic")
    strategy = StrategyConfig.objects.create(
        name=f"ema {symbol}", kind="ema_crossover", exchange="gen", symbol=symbol, timeframe="1h"
    )
    guard_configs_default()
    with CaptureQueriesContext(connection) as queries:
        result = replay_run(
            name=f"book {count}",
            description="",
            strategies=[strategy],
            guards=list(GuardConfig.objects.all()),
        )
    return len(queries), Signal.objects.filter(book=result.book).count()


def test_a_replay_takes_the_same_statements_for_ten_times_the_candles():
    small, small_signals = _statements(500)
    large, large_signals = _statements(5000)
    assert large_signals > 5 * small_signals
    assert large == small
    # A fixed number: the rollups with their extensions (the equity marks' rebuild is 8
    # statements) and the replay's own writes.
    assert large < 60
