"""stale_data: the latest candle closed too long before the driver's clock (no database)."""

import csv
from datetime import UTC, datetime, timedelta

import pytest

from markets.bars import CandleArrays
from signals.domain import engine
from signals.domain.fills import FillCosts
from signals.domain.guards import Snapshot, StaleData, build_guard
from signals.domain.guards.stale_data import REPLAY_REASON
from signals.domain.strategies import EmaCrossover, Proposal

HOUR = 3_600_000
START = datetime(2024, 1, 1, tzinfo=UTC)
LONG = Proposal("long", 100.0, 95.0, 110.0, 24, "test")


def real_candles(shared_dir, count: int = 30) -> CandleArrays:
    """The first ``count`` hourly candles of Coinbase BTC/USD (from 2017-07-01 11:00 UTC)."""
    path = shared_dir / "data/candles/coinbase/Coinbase_BTCUSD_1h.normalized.csv"
    with path.open() as lines:
        rows = [row for _, row in zip(range(count), csv.DictReader(lines), strict=False)]
    return CandleArrays.from_rows(
        [
            [
                float(row[name])
                for name in ("timestamp_ms", "open", "high", "low", "close", "volume")
            ]
            for row in rows
        ]
    )


def hourly(count: int) -> CandleArrays:
    """``count`` hourly candles opening from ``START``: the last closes at START + count h."""
    start = int(START.timestamp() * 1000)
    return CandleArrays.from_rows(
        [(start + i * HOUR, 100.0, 101.0, 99.0, 100.0, 1.0) for i in range(count)]
    )


def zigzag(count: int) -> CandleArrays:
    """``count`` hourly candles from ``START`` whose close swings up and down every 12 h."""
    start = int(START.timestamp() * 1000)
    rows = []
    for i in range(count):
        close = 100.0 + (i % 24 if i % 24 < 12 else 24 - i % 24)
        rows.append((start + i * HOUR, close, close + 0.5, close - 0.5, close, 1.0))
    return CandleArrays.from_rows(rows)


def snapshot(
    candles: CandleArrays, clock: datetime | None, now: datetime | None = None
) -> Snapshot:
    return Snapshot(
        now=now or START + timedelta(hours=len(candles)),
        symbol="BTC/USD",
        open_positions=0,
        candles=candles,
        timeframe_ms=HOUR,
        clock=clock,
    )


@pytest.mark.parametrize(
    ("minutes_late", "passed"),
    [(119, True), (120, True), (121, False)],
    ids=["below", "at", "above"],
)
def test_it_blocks_beyond_the_limit(minutes_late, passed):
    closed = START + timedelta(hours=3)
    verdict = StaleData(max_timeframes=2.0).check(
        LONG, snapshot(hourly(3), clock=closed + timedelta(minutes=minutes_late))
    )
    assert verdict.passed is passed
    assert (verdict.guard, verdict.observed, verdict.threshold) == (
        "stale_data",
        minutes_late / 60,
        2.0,
    )
    assert verdict.reason == (
        f"last candle closed {minutes_late / 60:.2f} timeframes ({minutes_late} min) ago, "
        "limit 2 timeframes"
    )


def test_without_a_clock_it_observes_nothing_and_says_it_is_live_only():
    # A replay hands in no clock (it once read the signal candle's close, where the age is
    # always 0: 0 in every one of 41,855 replayed decisions audited): a replayed candle is
    # known at its close, so there is no delivery delay to observe.
    late = START + timedelta(hours=6)
    verdict = StaleData(max_timeframes=0.0).check(LONG, snapshot(hourly(3), clock=None, now=late))
    assert (verdict.passed, verdict.observed, verdict.threshold) == (True, None, 0.0)
    assert verdict.reason == REPLAY_REASON
    assert StaleData.live_only


def test_through_the_engine_it_observes_only_in_a_live_run():
    market = engine.Market("x", "BTC/USD", "1h")
    config = engine.EngineConfig(
        strategies=(engine.StrategySpec("ema", market, EmaCrossover(fast=3, slow=8)),),
        guards=(engine.GuardSpec("stale", StaleData(max_timeframes=2.0)),),
        costs=FillCosts(5.0, 0.0026, 1000.0),
    )
    candles = {market.key: zigzag(200)}
    replay = engine.run(config, engine.EngineState(), candles)
    assert len(replay.signals) >= 10
    assert {(v.passed, v.observed, v.reason) for s in replay.signals for _, v in s.verdicts} == {
        (True, None, REPLAY_REASON)
    }
    # The same candles handed to a live run at one moment: each signal's candle is as old
    # as that moment says, and the older ones are blocked.
    now = replay.signals[-1].decided_at + HOUR
    live = engine.run(config, engine.EngineState(), candles, now=now)
    assert [s.key for s in live.signals] == [s.key for s in replay.signals]
    for signal in live.signals:
        ((_, verdict),) = signal.verdicts
        age = (now - signal.decided_at) / HOUR
        assert verdict.observed == age
        assert verdict.passed is (age <= 2.0)
    assert {s.state == "blocked" for s in live.signals} == {True, False}


def test_without_candles_it_passes_unobserved():
    verdict = StaleData().check(LONG, snapshot(CandleArrays.from_rows([]), clock=START))
    assert (verdict.passed, verdict.observed, verdict.threshold) == (True, None, 2.0)
    assert verdict.reason == "no candle to date"


def test_a_hand_checked_age_on_real_candles(shared_dir):
    candles = real_candles(shared_dir)
    last_open = datetime.fromtimestamp(int(candles.time[-1]) / 1000, UTC)
    # By hand: the 30th candle opens 2017-07-02 16:00 UTC and closes at 17:00; at a
    # clock of 19:30 it closed 150 min = 2.5 hourly timeframes ago.
    assert last_open == datetime(2017, 7, 2, 16, 0, tzinfo=UTC)
    clock = datetime(2017, 7, 2, 19, 30, tzinfo=UTC)
    expected = (clock - (last_open + timedelta(hours=1))) / timedelta(hours=1)
    assert expected == 2.5
    now = datetime(2017, 7, 2, 17, 0, tzinfo=UTC)
    verdict = StaleData().check(LONG, snapshot(candles, clock=clock, now=now))
    assert (verdict.passed, verdict.observed) == (False, expected)
    assert StaleData(max_timeframes=2.5).check(LONG, snapshot(candles, clock=clock, now=now)).passed


@pytest.mark.parametrize("limit", [-1.0, float("inf")])
def test_a_bad_limit_is_refused_by_name(limit):
    with pytest.raises(ValueError, match="stale_data needs max_timeframes >= 0"):
        build_guard("stale_data", {"max_timeframes": limit})


def test_a_whole_number_limit_is_accepted():
    assert build_guard("stale_data", {"max_timeframes": 3}) == StaleData(3.0)
