"""A replay gives PostgreSQL's planner the statistics of the tables it has just written
before its rollups' rebuild joins them (``shadow.replay._analyze_written``)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from markets.services import candles_upsert
from markets.synthetic import synthetic_bars
from shadow.replay import replay_run
from signals.models import GuardConfig, PaperTrade, Signal, StrategyConfig
from signals.services import guard_configs_default

pytestmark = pytest.mark.django_db


def test_the_planner_knows_the_replayed_rows_before_the_rollups_are_built():
    if connection.vendor != "postgresql":
        pytest.skip("ANALYZE is PostgreSQL's")
    bars = synthetic_bars(
        timeframe=timedelta(hours=1), count=3000, end=datetime(2024, 6, 1, tzinfo=UTC), seed=3
    )
    candles_upsert(exchange="gen", symbol="S/USD", timeframe="1h", bars=bars, source="synthetic")
    strategy = StrategyConfig.objects.create(
        name="ema", kind="ema_crossover", exchange="gen", symbol="S/USD", timeframe="1h"
    )
    guard_configs_default()
    replay_run(
        name="stats", description="", strategies=[strategy], guards=list(GuardConfig.objects.all())
    )
    # Still inside the test's transaction: only the replay's ANALYZE can have counted
    # these rows (autovacuum never sees uncommitted ones).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN (%s, %s)",
            [Signal._meta.db_table, PaperTrade._meta.db_table],
        )
        counted = dict(cursor.fetchall())
    assert Signal.objects.count() > 20
    assert counted == {
        Signal._meta.db_table: Signal.objects.count(),
        PaperTrade._meta.db_table: PaperTrade.objects.count(),
    }
