"""The replay benchmark's floor runs the project's book: on generated candles its closed
trades and their total P&L are the replay's, its cooldown after a stop-out included
(``benchmarks/replay_bench.py`` checks the same before it prints a ratio; this keeps the
floor honest between benchmark runs, e.g. when a default guard or the fill model
changes). backtesting.py needs its own virtualenv and is checked by the benchmark only."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from benchmarks import floor
from benchmarks.appdb import configure_markets, outcome
from benchmarks.data import random_walk, write_csv
from benchmarks.project import BOOK, EXCHANGE, PAPER_BALANCE, SYMBOL, TIMEFRAME
from benchmarks.replay_bench import FLOOR_TOLERANCE

pytestmark = pytest.mark.django_db

CANDLES = 3_000


def floor_trades(csv, monkeypatch, cooldown_minutes=None):
    if cooldown_minutes is not None:
        monkeypatch.setattr(floor, "COOLDOWN_MINUTES", cooldown_minutes)
    candles = floor.read_csv(csv)
    return floor.backtest(*(candles[:, column] for column in range(5)))


def test_the_floor_closes_the_trades_of_the_replay(tmp_path, monkeypatch):
    csv = write_csv(random_walk(CANDLES), tmp_path / "candles.csv")
    market = ["--exchange", EXCHANGE, "--symbol", SYMBOL, "--timeframe", TIMEFRAME]
    call_command("load_candles", str(csv), *market, "--no-progress", stdout=StringIO())
    configure_markets(exchange=EXCHANGE, timeframe=TIMEFRAME, symbols=[SYMBOL])
    with override_settings(PAPER_BALANCE=Decimal(PAPER_BALANCE)):
        call_command("replay", *market, "--book", BOOK, "--no-progress", stdout=StringIO())
    replayed = outcome(BOOK)

    trades = floor_trades(csv, monkeypatch)

    assert replayed["trades"] > 20
    assert len(trades) == replayed["trades"]
    assert sum(t.pnl for t in trades) == pytest.approx(replayed["pnl"], abs=FLOOR_TOLERANCE)
    # The cooldown took part: without it the same candles make more trades.
    assert any(t.reason in floor.STOP_OUTS for t in trades)
    assert len(floor_trades(csv, monkeypatch, cooldown_minutes=0)) > len(trades)
