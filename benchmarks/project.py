"""The project's replay measured as a user runs it: ``manage.py replay`` as a whole process.

Each run gets a fresh database: ``migrate``, ``load_candles`` and the strategy and guard
setup run first, untimed; then the replay is timed from interpreter start to exit,
persistence included, and the rows it wrote for its book are counted with SQL.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from benchmarks.measure import ROOT, Measurement, measure, run

PYTHON = sys.executable  # the app's interpreter: run.py is started with it
MANAGE = str(ROOT / "manage.py")
APPDB = str(ROOT / "benchmarks" / "appdb.py")
EXCHANGE = "bench"
# FTX called the market BTC-PERP; load_candles wants ccxt's BASE/QUOTE:SETTLE form.
SYMBOL = "BTC/USD:USD"
TIMEFRAME = "5m"
BOOK = "bench"


@dataclass(frozen=True)
class ReplayResult:
    run: Measurement
    rows: int
    rows_by_table: dict[str, int | None]

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.run.seconds


def manage(*args: str, env: Mapping[str, str]) -> str:
    """Run an untimed management command; its stdout."""
    return run([PYTHON, MANAGE, *args], env=env)


def load_market(csv: Path, symbol: str, env: Mapping[str, str]) -> None:
    """``load_candles`` the CSV as ``symbol`` on the benchmark's exchange and timeframe."""
    market = ["--exchange", EXCHANGE, "--symbol", symbol, "--timeframe", TIMEFRAME]
    manage("load_candles", str(csv), *market, env=env)


def configure(symbols: list[str], env: Mapping[str, str]) -> None:
    """A benchmark strategy per market and the default guards (``appdb.configure_markets``)."""
    run([PYTHON, APPDB, "configure", EXCHANGE, TIMEFRAME, *symbols], env=env)


def count_rows(book: str, env: Mapping[str, str]) -> dict[str, int | None]:
    """Rows per table written for ``book`` (``None``: the table does not exist)."""
    counts: dict[str, int | None] = json.loads(run([PYTHON, APPDB, "count-rows", book], env=env))
    return counts


def measure_replay(csv: Path, env: Mapping[str, str]) -> ReplayResult:
    """Set up the empty database of ``env`` with the candles of ``csv``, then time the replay."""
    manage("migrate", "--no-input", "-v", "0", env=env)
    load_market(csv, SYMBOL, env)
    configure([SYMBOL], env)
    replay = measure(
        [
            PYTHON, MANAGE, "replay", "--exchange", EXCHANGE, "--symbol", SYMBOL,
            "--timeframe", TIMEFRAME, "--book", BOOK, "--no-progress",
        ],
        env=env,
    )  # fmt: skip
    counts = count_rows(BOOK, env)
    return ReplayResult(run=replay, rows=sum(n for n in counts.values() if n), rows_by_table=counts)
