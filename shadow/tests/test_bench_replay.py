"""The replay benchmark's floor runs the project's book: on generated candles its closed
trades and their total P&L are the replay's, its cooldown after a stop-out included
(``benchmarks/replay_bench.py`` checks the same before it prints a ratio; this keeps the
floor honest between benchmark runs, e.g. when a default guard or the fill model
changes). backtesting.py needs its own virtualenv and is checked by the benchmark only.
And the benchmark's own rule: no ratio claimed unless the sides agree, no goal called met
unless every repetition meets it."""

from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from benchmarks import floor
from benchmarks.appdb import configure_markets, outcome
from benchmarks.data import Series, random_walk, write_csv
from benchmarks.measure import Measurement
from benchmarks.project import BOOK, EXCHANGE, PAPER_BALANCE, SYMBOL, TIMEFRAME, ReplayResult
from benchmarks.replay_bench import (
    FLOOR_TOLERANCE,
    SizeResults,
    agreement,
    bt_tolerance,
    report,
    verdict,
)

CANDLES = 3_000


def floor_trades(csv, monkeypatch, cooldown_minutes=None):
    if cooldown_minutes is not None:
        monkeypatch.setattr(floor, "COOLDOWN_MINUTES", cooldown_minutes)
    candles = floor.read_csv(csv)
    return floor.backtest(*(candles[:, column] for column in range(5)))


@pytest.mark.django_db
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


def peer(seconds: float, trades: int, pnl: float) -> Measurement:
    return Measurement(seconds=seconds, peak_mib=100.0, stdout=f"trades: {trades}\npnl: {pnl!r}\n")


def sides(*, bt_trades: int = 100, bt_pnl: float = -50.0, floor_pnl: float = -50.0) -> SizeResults:
    """Two repetitions of a 100-trade book: the project's replay 1.9 and 2.4 s, backtesting.py
    2.0 and 2.2 s, as the peers would print them."""
    replay = [
        ReplayResult(
            load=peer(5.0, 0, 0.0),
            run=peer(seconds, 0, 0.0),
            rows=10,
            rows_by_table={},
            trades=100,
            pnl=-50.0,
        )
        for seconds in (1.9, 2.4)
    ]
    return SizeResults(
        series=Series("1000", 1_000, Path("candles.csv")),
        floor=[peer(0.1, 100, floor_pnl)] * 2,
        bt=[peer(2.0, bt_trades, bt_pnl), peer(2.2, bt_trades, bt_pnl)],
        replays={"pg": replay},
    )


def test_the_benchmark_claims_a_ratio_only_when_the_sides_agree():
    agreed = sides(bt_pnl=-50.0 + bt_tolerance(100) / 2)
    assert agreement(agreed).holds
    assert "MISMATCH" not in report([agreed], True, 2)

    for disagreeing, what in (
        (sides(bt_trades=99), "backtesting.py: 99 trades, the project 100"),
        (sides(bt_pnl=-50.0 + 2 * bt_tolerance(100)), "backtesting.py: P&L"),
        (sides(floor_pnl=-50.0 - 2 * FLOOR_TOLERANCE), "floor: P&L"),
    ):
        check = agreement(disagreeing)
        assert not check.holds
        assert any(problem.startswith(what) for problem in check.problems), check.problems
        printed = report([disagreeing], True, 2)
        assert "!!! MISMATCH at 1,000 candles" in printed
        assert "not claimed" in printed


def test_a_goal_is_met_only_when_every_repetition_meets_it():
    assert verdict([0.5, 0.9, 1.0], 1.0) == "met"
    assert verdict([1.1, 1.3], 1.0) == "missed"
    assert verdict([0.9, 1.1], 1.0) == "inside the noise"
