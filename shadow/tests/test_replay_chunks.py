"""A replay read, run and written in chunks of candles writes what a replay of the whole
history in one chunk writes, row for row and in the same signal order; a failure in a
late chunk leaves no book."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection

from markets.services import candles_load_file, candles_upsert
from markets.synthetic import synthetic_bars
from shadow import persistence
from shadow.replay import replay_run
from shadow.tests.book_rows import book_rows
from signals.models import Book, GuardConfig, Signal, StrategyConfig
from signals.services import guard_configs_default

pytestmark = pytest.mark.django_db

END = datetime(2024, 3, 1, tzinfo=UTC)
WHOLE = 10_000_000


def _generated(symbols: tuple[str, ...], count: int) -> list[StrategyConfig]:
    strategies = []
    for seed, symbol in enumerate(symbols, start=1):
        bars = synthetic_bars(timeframe=timedelta(hours=1), count=count, end=END, seed=seed)
        candles_upsert(exchange="gen", symbol=symbol, timeframe="1h", bars=bars, source="synthetic")
        strategies.append(
            StrategyConfig.objects.create(
                name=f"ema {symbol}",
                kind="ema_crossover",
                params={"max_hold": 12},
                exchange="gen",
                symbol=symbol,
                timeframe="1h",
            )
        )
    guard_configs_default()
    GuardConfig.objects.create(name="max 3", kind="max_open_positions", params={"max_open": 3})
    return strategies


def _replay(name: str, strategies, chunk_candles: int, **options) -> Book:
    return replay_run(
        name=name,
        description="",
        strategies=strategies,
        guards=list(GuardConfig.objects.filter(enabled=True)),
        chunk_candles=chunk_candles,
        **options,
    ).book


def _signal_order(book: Book) -> list[tuple]:
    return list(
        Signal.objects.filter(book=book)
        .order_by("id")
        .values_list("strategy_config_id", "symbol", "candle_time", "side")
    )


@pytest.mark.parametrize("chunk_candles", [1, 7, 100, 333])
def test_a_chunked_replay_writes_what_a_whole_replay_writes(chunk_candles):
    strategies = _generated(("AAA/USD", "BBB/USD"), 1200)
    whole = _replay("whole", strategies, WHOLE)
    chunked = _replay("chunked", strategies, chunk_candles)

    expected = book_rows(whole)
    assert len(expected["signals"]) > 30
    assert any(state == "blocked" for _key, state, *_rest in expected["signals"])
    assert book_rows(chunked) == expected
    assert _signal_order(chunked) == _signal_order(whole)
    assert (chunked.until, chunked.engine_state.state) == (whole.until, whole.engine_state.state)


def test_a_chunked_replay_with_since_and_until_writes_what_a_whole_one_writes():
    strategies = _generated(("AAA/USD",), 900)
    window = {"since": END - timedelta(hours=600), "until": END - timedelta(hours=50)}
    whole = _replay("whole", strategies, WHOLE, **window)
    chunked = _replay("chunked", strategies, 64, **window)

    assert book_rows(chunked) == book_rows(whole)
    assert chunked.until == whole.until == END - timedelta(hours=50)


def test_a_failure_in_a_late_chunk_leaves_no_book(monkeypatch):
    strategies = _generated(("AAA/USD",), 900)
    real_insert = persistence.BookWriter.insert_new
    calls = []

    def failing_insert(self, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("the disk is full")
        return real_insert(self, **kwargs)

    monkeypatch.setattr(persistence.BookWriter, "insert_new", failing_insert)

    with pytest.raises(RuntimeError, match="the disk is full"):
        _replay("doomed", strategies, 100)
    assert len(calls) == 4
    assert not Book.objects.filter(name="doomed").exists()
    assert not Signal.objects.exists(), "the chunks written before the failure were rolled back"


@pytest.mark.shared_data
def test_a_chunked_replay_of_real_candles_writes_what_a_whole_replay_writes(shared_dir):
    path = shared_dir / "data/candles/coinbase/Coinbase_BTCUSD_1h.normalized.csv"
    candles_load_file(
        path=path,
        exchange="coinbase",
        symbol="BTC/USD",
        timeframe="1h",
        now=datetime(2100, 1, 1, tzinfo=UTC),
    )
    strategy = StrategyConfig.objects.create(
        name="ema coinbase",
        kind="ema_crossover",
        exchange="coinbase",
        symbol="BTC/USD",
        timeframe="1h",
    )
    guard_configs_default()
    whole = _replay("whole", [strategy], WHOLE)
    chunked = _replay("chunked", [strategy], 1000)

    expected = book_rows(whole)
    assert len(expected["signals"]) > 100
    assert book_rows(chunked) == expected
    assert _signal_order(chunked) == _signal_order(whole)


# The child replays one market and reports its own peak as it exits: VmHWM of its
# address space (not ru_maxrss, which carries the parent's size at the fork).
PEAK_CHILD = """
import os, re, sys
import django
django.setup()
from shadow.replay import replay_run
from signals.models import GuardConfig, StrategyConfig
replay_run(
    name=sys.argv[1],
    description="",
    strategies=[StrategyConfig.objects.get(name=sys.argv[1])],
    guards=list(GuardConfig.objects.filter(enabled=True)),
    chunk_candles=int(sys.argv[2]),
)
status = open("/proc/self/status").read()
print("PEAK_KB=" + re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
"""


def _peak_mib(symbol: str, chunk_candles: int) -> float:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    done = subprocess.run(
        [sys.executable, "-c", PEAK_CHILD, f"ema {symbol}", str(chunk_candles)],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split("PEAK_KB=")[-1]) / 1024


@pytest.mark.fault
@pytest.mark.django_db(transaction=True)
def test_a_replay_of_ten_times_the_history_peaks_no_higher():
    if connection.vendor != "postgresql":
        pytest.skip("measured against PostgreSQL")
    for symbol, count in (("SHORT/USD", 15_000), ("LONG/USD", 150_000)):
        bars = synthetic_bars(timeframe=timedelta(minutes=5), count=count, end=END, seed=7)
        candles_upsert(exchange="gen", symbol=symbol, timeframe="5m", bars=bars, source="synthetic")
        StrategyConfig.objects.create(
            name=f"ema {symbol}",
            kind="ema_crossover",
            exchange="gen",
            symbol=symbol,
            timeframe="5m",
        )
    guard_configs_default()

    short = _peak_mib("SHORT/USD", 2_000)
    long = _peak_mib("LONG/USD", 2_000)

    # Replayed whole (one chunk), the long one peaked at 176 MiB against 90 MiB.
    assert (
        Signal.objects.filter(book__name="ema LONG/USD").count()
        > 5 * Signal.objects.filter(book__name="ema SHORT/USD").count()
    )
    assert long - short < 12, f"{short:.0f} MiB for 15,000 candles, {long:.0f} MiB for 150,000"
