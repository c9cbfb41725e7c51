"""The project's replay measured as a user runs it: whole processes of ``manage.py``.

Each repetition gets a fresh, migrated database (a copy of a migrated template: see
``benchmarks.databases``). ``load_candles`` of the CSV is timed as a whole process (the
first half of "CSV to book"), the strategy and guard setup runs untimed, then the
replay is timed from interpreter start to exit, persistence included; the rows it wrote
for its book are counted with SQL, and its closed paper trades (how many, total P&L)
are read for the comparison with the peers.

``BENCH_CHECKOUT``: run the app of another checkout (default this one), e.g. a clean
export of the committed main while the working tree holds unfinished edits.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from benchmarks.measure import ROOT, Measurement, measure, run

PYTHON = sys.executable  # the app's interpreter: run.py is started with it
CHECKOUT = Path(os.environ.get("BENCH_CHECKOUT") or ROOT).resolve()
MANAGE = str(CHECKOUT / "manage.py")
APPDB = str(ROOT / "benchmarks" / "appdb.py")
EXCHANGE = "bench"
# FTX called the market BTC-PERP; load_candles wants ccxt's BASE/QUOTE:SETTLE form.
SYMBOL = "BTC/USD:USD"
TIMEFRAME = "5m"
BOOK = "bench"
# The benchmark book's paper balance (quote currency): large enough never to bind, as
# backtesting.py's cash and the floor's unlimited balance never do. With the default
# 10,000, a 900,700-candle book runs out of money and most of its signals fail, which
# the peers would not model.
PAPER_BALANCE = "1000000000"


@dataclass(frozen=True)
class ReplayResult:
    load: Measurement  # load_candles of the CSV
    run: Measurement  # the replay
    rows: int
    rows_by_table: dict[str, int | None]
    trades: int  # closed paper trades
    pnl: float  # their total P&L, quote currency

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.run.seconds

    @property
    def csv_to_book_seconds(self) -> float:
        return self.load.seconds + self.run.seconds


def book_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the benchmark book's economics."""
    return {**env, "PAPER_BALANCE": PAPER_BALANCE}


def manage(*args: str, env: Mapping[str, str]) -> str:
    """Run an untimed management command; its stdout."""
    return run([PYTHON, MANAGE, *args], env=env, cwd=CHECKOUT)


def migrate(env: Mapping[str, str]) -> None:
    manage("migrate", "--no-input", "-v", "0", env=env)


def load_market(csv: Path, symbol: str, env: Mapping[str, str]) -> None:
    """``load_candles`` the CSV as ``symbol`` on the benchmark's exchange and timeframe."""
    manage("load_candles", *load_args(csv, symbol), env=env)


def load_args(csv: Path, symbol: str) -> list[str]:
    return [str(csv), "--exchange", EXCHANGE, "--symbol", symbol, "--timeframe", TIMEFRAME]


def appdb(*args: str, env: Mapping[str, str]) -> str:
    return run([PYTHON, APPDB, *args], env={**env, "BENCH_CHECKOUT": str(CHECKOUT)}, cwd=CHECKOUT)


def configure(symbols: list[str], env: Mapping[str, str]) -> None:
    """A benchmark strategy per market and the default guards (``appdb.configure_markets``)."""
    appdb("configure", EXCHANGE, TIMEFRAME, *symbols, env=env)


def count_rows(book: str, env: Mapping[str, str]) -> dict[str, int | None]:
    """Rows per table written for ``book`` (``None``: the table does not exist)."""
    counts: dict[str, int | None] = json.loads(appdb("count-rows", book, env=env))
    return counts


def outcome(book: str, env: Mapping[str, str]) -> tuple[int, float]:
    """The book's closed paper trades: count and total P&L."""
    found = json.loads(appdb("outcome", book, env=env))
    return int(found["trades"]), float(found["pnl"])


def measure_replay(csv: Path, env: Mapping[str, str]) -> ReplayResult:
    """On the migrated, empty database of ``env``: time ``load_candles`` of ``csv``, set
    the book up, time the replay, read what it wrote."""
    env = book_env(env)
    load = measure([PYTHON, MANAGE, "load_candles", *load_args(csv, SYMBOL)], env=env, cwd=CHECKOUT)
    configure([SYMBOL], env)
    replay = measure(
        [
            PYTHON, MANAGE, "replay", "--exchange", EXCHANGE, "--symbol", SYMBOL,
            "--timeframe", TIMEFRAME, "--book", BOOK, "--no-progress",
        ],
        env=env,
        cwd=CHECKOUT,
    )  # fmt: skip
    counts = count_rows(BOOK, env)
    trades, pnl = outcome(BOOK, env)
    return ReplayResult(
        load=load,
        run=replay,
        rows=sum(n for n in counts.values() if n),
        rows_by_table=counts,
        trades=trades,
        pnl=pnl,
    )
