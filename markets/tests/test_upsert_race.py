"""A first load of a range takes a plain INSERT (no stored candle in the chunk's range);
a candle another writer commits after the check and before the INSERT must neither fail
the load nor be overwritten: the chunk goes in with ON CONFLICT DO NOTHING instead."""

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from django.db import connection, connections

from markets.bars import Bar
from markets.models import Candle
from markets.services import candles_upsert

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
MARKET = {"exchange": "kraken", "symbol": "BTC/USD", "timeframe": "1m"}


def bar(minute: int, close: str) -> Bar:
    return Bar(
        T0 + timedelta(minutes=minute),
        Decimal(100),
        Decimal(110),
        Decimal(90),
        Decimal(close),
        Decimal(2),
    )


def _connect(*, autocommit: bool = False) -> psycopg.Connection:
    params = connection.get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    return psycopg.connect(**params, autocommit=autocommit)


@pytest.mark.django_db(transaction=True)
def test_a_candle_committed_by_another_writer_during_a_first_load_is_kept_as_it_stored_it():
    if connection.vendor != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    other = _connect()
    # pg_stat_activity is read once per transaction: the watch has its own connection.
    watch = _connect(autocommit=True)
    try:
        # The other writer's candle of minute 1, not committed yet: the load's check
        # does not see it, its INSERT waits on it.
        other.execute(
            "INSERT INTO markets_candle (exchange, symbol, timeframe, open_time, open, high, "
            "low, close, volume, source, created_at) "
            "VALUES (%s, %s, %s, %s, 100, 110, 90, 77, 2, 'exchange', now())",
            [*MARKET.values(), T0 + timedelta(minutes=1)],
        )
        outcome: dict[str, object] = {}

        def load() -> None:
            try:
                outcome["upserted"] = candles_upsert(
                    **MARKET, bars=[bar(0, "105"), bar(1, "105"), bar(2, "105")], source="file"
                )
            except Exception as error:  # reported by the assertion after the join
                outcome["error"] = error
            finally:
                connections.close_all()

        loader = threading.Thread(target=load)
        loader.start()
        deadline = time.monotonic() + 20
        waiting = 0
        while time.monotonic() < deadline and not waiting:
            row = watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ).fetchone()
            waiting = row[0] if row else 0
            if not waiting:
                time.sleep(0.05)
        assert waiting, "the load never waited on the other writer's candle"
        other.commit()
        loader.join(20)
        assert not loader.is_alive()
    finally:
        other.close()
        watch.close()

    assert "error" not in outcome, outcome.get("error")
    # Minute 1 is the other writer's: not created by the load, not overwritten.
    assert outcome["upserted"] == (2, 0, 0)
    rows = Candle.objects.filter(**MARKET).order_by("open_time")
    assert [(c.close, c.source) for c in rows] == [
        (Decimal(105), "file"),
        (Decimal(77), "exchange"),
        (Decimal(105), "file"),
    ]
