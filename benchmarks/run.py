"""Benchmarks: replay throughput against a baseline measured in the same run.

The baseline is the pure work of a replay (the strategy over its look-back window at
every candle, no database); the ratio says what the database, the state machine and
the shadow engine cost on top. Run with ``make bench`` (DATABASE_URL picks the
database; default a temporary SQLite file).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CANDLES = int(os.environ.get("BENCH_CANDLES", "1000"))


def main() -> None:
    tmp = tempfile.TemporaryDirectory()
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp.name}/bench.sqlite3")
    os.environ.setdefault("DEBUG", "true")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from markets.selectors import bars_until
    from signals.domain.strategies import EmaCrossover
    from signals.tests.candles import MARKET, store_walk

    call_command("migrate", verbosity=0)
    from markets.models import Candle

    Candle.objects.filter(**MARKET).delete()
    store_walk(CANDLES, seed=7)
    bars = bars_until(**MARKET, until=Candle.objects.latest("open_time").open_time, limit=CANDLES)
    strategy = EmaCrossover()

    started = time.perf_counter()
    for end in range(1, len(bars) + 1):
        strategy.propose(bars[max(0, end - strategy.lookback) : end])
    pure = time.perf_counter() - started

    started = time.perf_counter()
    call_command(
        "replay",
        "--exchange",
        MARKET["exchange"],
        "--symbol",
        MARKET["symbol"],
        "--timeframe",
        MARKET["timeframe"],
        "--no-progress",
        stdout=StringIO(),
    )
    full = time.perf_counter() - started

    print(f"database: {connection.vendor}, candles: {CANDLES}")
    print(f"baseline  pure strategy over each window: {CANDLES / pure:10.0f} candles/s")
    print(f"replay    every stage, with the database:  {CANDLES / full:10.0f} candles/s")
    print(f"ratio     replay time / baseline time:      {full / pure:10.1f}x")
    tmp.cleanup()


if __name__ == "__main__":
    main()
