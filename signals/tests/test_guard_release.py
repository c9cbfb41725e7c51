"""Release rules: no guard with a look-back locks a one-market book for good (no database).

A guard that reads only the book's closed trades cannot see anything change once it
blocks every signal of a one-market book: no trade opens, so none closes. Each such guard
holds a lock for ``stop_minutes`` from its observation's last change, then releases and
looks back only from the release. The other kinds let go by themselves (positions end,
cooldowns run out, the market or the feed moves on): one test per kind shows each one
letting a one-market book trade again through the engine.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from markets.bars import CandleArrays
from markets.timestamps import ms_from_utc, utc_from_ms
from signals.domain import engine
from signals.domain.fills import FillCosts
from signals.domain.guards import (
    GUARDS,
    ClosedTrade,
    DailyLossLimit,
    LowProfitMarkets,
    MaxDrawdown,
    Snapshot,
    StoplossGuard,
    build_guard,
)
from signals.domain.guards.base import Look, equity_peak_since, look_back
from signals.domain.strategies import BollingerReversion, EmaCrossover, Proposal

HOUR = 3_600_000
NOW = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)
LONG = Proposal("long", 100.0, 95.0, 110.0, 24, "test")
COSTS = FillCosts(slippage_bps=5.0, fee_rate=0.0026, notional=1000.0)
NEVER_RELEASES = 10**9  # minutes: the lock outlives any history here

LOOK_BACK_KINDS = ("daily_loss_limit", "low_profit_markets", "max_drawdown", "stoploss_guard")


def loss(minutes_before: float, pnl: float = -50.0, reason: str = "stop") -> ClosedTrade:
    return ClosedTrade("BTC/USD", NOW - timedelta(minutes=minutes_before), reason, pnl, 1000.0)


def snapshot(*trades: ClosedTrade, released_at: datetime | None = None, **more: Any) -> Snapshot:
    """A one-market book at ``NOW`` whose closed ``trades`` (oldest first) are all on BTC."""
    equity = sum(t.pnl for t in trades)
    return Snapshot(
        now=NOW,
        symbol="BTC/USD",
        open_positions=0,
        recent_closed=trades,
        book_closed=trades,
        equity=more.pop("equity", equity),
        equity_peak=more.pop("equity_peak", 0.0),
        released_at=released_at,
        **more,
    )


# The pure rule.


def test_a_lock_holds_for_its_stop_minutes_from_the_last_change_then_releases_there():
    changed = NOW - timedelta(minutes=90)

    def observe(since: datetime | None) -> Look:
        return Look(1.0, changed) if since is None else Look(0.0, None)

    def blocks(value: float) -> bool:
        return value >= 1

    look, since = look_back(observe, blocks, stop_minutes=91, now=NOW, since=None)
    assert (look.value, since) == (1.0, None)
    look, since = look_back(observe, blocks, stop_minutes=90, now=NOW, since=None)
    assert (look.value, since) == (0.0, changed + timedelta(minutes=90))


def test_what_the_guard_does_not_count_does_not_extend_its_lock():
    exits = [(NOW - timedelta(minutes=300), "stop"), (NOW - timedelta(minutes=30), "target")]

    def observe(since: datetime | None) -> Look:
        stops = [t for t, reason in exits if reason == "stop" and (since is None or t > since)]
        return Look(float(len(stops)), max(stops, default=None))

    # The target exit 30 min ago changes no count of stop-outs: the lock ran from the
    # stop-out 300 min ago and ended 240 min ago; from there nothing is counted.
    look, since = look_back(observe, lambda v: v >= 1, stop_minutes=60, now=NOW, since=None)
    assert since == NOW - timedelta(minutes=240)
    assert (look.value, look.changed_at) == (0.0, None)


def test_the_equity_peak_since_a_moment_starts_at_the_equity_of_that_moment():
    trades = [loss(300, 100.0), loss(200, -40.0), loss(100, 30.0), loss(50, -70.0)]
    # Equity path 100, 60, 90, 20: after the moment 250 min ago it starts at 100.
    assert equity_peak_since(trades, 20.0, NOW - timedelta(minutes=250)) == 100.0
    # After 150 min ago it starts at 60 and rises to 90.
    assert equity_peak_since(trades, 20.0, NOW - timedelta(minutes=150)) == 90.0
    assert equity_peak_since(trades, 20.0, NOW) == 20.0


# Each guard's release, from a snapshot.


def test_max_drawdown_releases_after_its_stop_and_the_peak_restarts_at_the_release():
    trades = (loss(600, 300.0), loss(120, -250.0))
    guard = MaxDrawdown(max_drawdown=200.0, stop_minutes=121)
    held = guard.check(LONG, snapshot(*trades, equity_peak=300.0))
    assert (held.passed, held.observed, held.released_at) == (False, 250.0, None)
    released = MaxDrawdown(max_drawdown=200.0, stop_minutes=120).check(
        LONG, snapshot(*trades, equity_peak=300.0)
    )
    assert (released.passed, released.observed) == (True, 0.0)
    assert released.released_at == NOW
    assert released.reason == (
        "drawdown 0.00 quote from the equity peak of 50.00 quote since its release at "
        "2024-01-02 15:00 UTC, limit 200.00 quote"
    )


def test_max_drawdown_after_a_release_reads_the_peak_the_engine_kept_since():
    since = NOW - timedelta(hours=5)
    trades = (loss(600, -300.0), loss(60, -150.0))
    verdict = MaxDrawdown(max_drawdown=100.0, stop_minutes=30).check(
        LONG, snapshot(*trades, released_at=since, equity_peak=-300.0)
    )
    # 150 below the peak since the release: a new lock from 60 min ago, 30 min long, has
    # run out too, so it releases again there.
    assert verdict.released_at == NOW - timedelta(minutes=30)
    assert (verdict.passed, verdict.observed) == (True, 0.0)
    held = MaxDrawdown(max_drawdown=100.0, stop_minutes=61).check(
        LONG, snapshot(*trades, released_at=since, equity_peak=-300.0)
    )
    assert (held.passed, held.observed, held.released_at) == (False, 150.0, None)


def test_low_profit_markets_releases_and_then_counts_only_later_trades():
    trades = (loss(400), loss(300), loss(200, 20.0), loss(100))
    guard = LowProfitMarkets(lookback_trades=3, min_trades=2, stop_minutes=150)
    held = guard.check(LONG, snapshot(*trades[:-1]))
    # The last of three trades exited 200 min ago: their lock ran out 50 min ago.
    assert held.released_at == NOW - timedelta(minutes=50)
    assert (held.passed, held.observed) == (True, None)
    assert held.reason == (
        "0 closed trade(s) on this symbol since its release at 2024-01-02 14:10 UTC, fewer than 2"
    )
    blocking = guard.check(LONG, snapshot(*trades))
    assert (blocking.passed, blocking.released_at) == (False, None)


def test_daily_loss_limit_releases_before_midnight_after_its_stop():
    trades = (loss(240, -80.0), loss(180, -60.0))
    day = DailyLossLimit(max_loss=100.0)
    assert not day.check(LONG, snapshot(*trades)).passed  # the default waits for midnight
    verdict = DailyLossLimit(max_loss=100.0, stop_minutes=120).check(LONG, snapshot(*trades))
    assert verdict.released_at == NOW - timedelta(minutes=60)
    assert (verdict.passed, verdict.observed) == (True, 0.0)


def test_stoploss_guard_releases_before_its_look_back_moves_on():
    trades = (loss(50), loss(40))
    guard = StoplossGuard(stop_outs=2, lookback_minutes=1440, scope="symbol", stop_minutes=30)
    verdict = guard.check(LONG, snapshot(*trades))
    assert verdict.released_at == NOW - timedelta(minutes=10)
    assert (verdict.passed, verdict.observed) == (True, 0.0)
    assert not StoplossGuard(stop_outs=2, scope="symbol").check(LONG, snapshot(*trades)).passed


@pytest.mark.parametrize("kind", LOOK_BACK_KINDS)
@pytest.mark.parametrize("minutes", [0, -5])
def test_a_stop_duration_that_is_not_positive_is_refused_by_name(kind, minutes):
    with pytest.raises(ValueError, match=f"{kind} needs stop_minutes > 0"):
        build_guard(kind, {"stop_minutes": minutes})


def test_a_stop_duration_must_be_whole_minutes():
    with pytest.raises(ValueError, match="parameter stop_minutes must be int"):
        build_guard("max_drawdown", {"stop_minutes": 90.5})


@pytest.mark.parametrize("kind", sorted(GUARDS))
def test_every_guard_says_how_it_lets_go(kind):
    cls = GUARDS[kind]
    assert isinstance(cls.release, str) and cls.release
    assert isinstance(cls.live_only, bool)
    if kind in LOOK_BACK_KINDS:
        assert "stop_minutes" in cls.release
        assert build_guard(kind, {}).stop_minutes == 1440  # type: ignore[attr-defined]


# Through the engine, on a one-market book.


def walk(count: int, seed: int) -> CandleArrays:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, count)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, count)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, count)))
    times = 1_704_067_200_000 + np.arange(count, dtype=np.int64) * HOUR  # 2024-01-01
    return CandleArrays(times, open_, high, low, close, np.ones(count))


MARKET = engine.Market("x", "AAA/USD", "1h")
CANDLES = {MARKET.key: walk(2000, 5)}

# A configuration of each kind that blocks early on this series, and the stop it gets.
LOCKING = {
    "max_drawdown": ({"max_drawdown": 30.0}, 1440),
    "low_profit_markets": ({"lookback_trades": 3, "min_trades": 3}, 1440),
    "stoploss_guard": ({"stop_outs": 2, "lookback_minutes": NEVER_RELEASES}, 720),
    "daily_loss_limit": ({"max_loss": 10.0}, 180),
}


def book_run(kind: str, stop_minutes: int) -> engine.EngineResult:
    params, _ = LOCKING[kind]
    guard = build_guard(kind, {**params, "stop_minutes": stop_minutes})
    config = engine.EngineConfig(
        strategies=(
            engine.StrategySpec("ema", MARKET, EmaCrossover(fast=5, slow=13, max_hold=12)),
        ),
        guards=(engine.GuardSpec(kind, guard),),
        costs=COSTS,
    )
    return engine.run(config, engine.EngineState(), CANDLES)


def paper_exits(result: engine.EngineResult) -> list[int]:
    """When each paper trade's exit became known (ms), in order."""
    return sorted(t.closed_at for t in result.trades if t.kind == "paper" and t.closed_at)


@pytest.mark.parametrize("kind", ["max_drawdown", "low_profit_markets", "stoploss_guard"])
def test_without_a_release_the_guard_locks_a_one_market_book_for_good(kind):
    # The behaviour the release rule fixes: from its first block on, nothing gets through.
    result = book_run(kind, NEVER_RELEASES)
    states = [s.state for s in result.signals]
    first = states.index("blocked")
    assert first < len(states) // 4
    assert set(states[first:]) == {"blocked"}
    assert len(states) - first > 50


@pytest.mark.parametrize("kind", LOOK_BACK_KINDS)
def test_each_look_back_guard_releases_a_one_market_book_after_its_stop(kind):
    _, stop_minutes = LOCKING[kind]
    stop = stop_minutes * 60_000
    result = book_run(kind, stop_minutes)
    exits = paper_exits(result)
    releases = []
    for signal in result.signals:
        ((_, verdict),) = signal.verdicts
        if verdict.released_at is not None:
            at = ms_from_utc(verdict.released_at)
            # It lets go exactly its stop after the exit that set the lock, at the
            # latest on the signal that finds it run out.
            assert at - stop in exits
            assert at <= signal.decided_at
            releases.append(at)
    for at in releases:
        # Nothing it counts changed while the lock ran: every signal in it was blocked.
        held = [s for s in result.signals if at - stop < s.decided_at < at]
        assert all(s.state == "blocked" for s in held)
    states = [s.state for s in result.signals]
    first = states.index("blocked")
    approved_later = sum(s != "blocked" for s in states[first:])
    assert len(releases) >= 3
    assert approved_later >= 10


@pytest.mark.parametrize("kind", LOOK_BACK_KINDS)
def test_releases_are_the_same_however_the_candles_are_split_into_runs(kind):
    _, stop_minutes = LOCKING[kind]
    whole = book_run(kind, stop_minutes)
    params, _ = LOCKING[kind]
    guard = build_guard(kind, {**params, "stop_minutes": stop_minutes})
    config = engine.EngineConfig(
        strategies=(
            engine.StrategySpec("ema", MARKET, EmaCrossover(fast=5, slow=13, max_hold=12)),
        ),
        guards=(engine.GuardSpec(kind, guard),),
        costs=COSTS,
    )
    state, verdicts = engine.EngineState(), {}
    data = CANDLES[MARKET.key]
    for stop in range(97, len(data) + 97, 97):
        result = engine.run(config, state, {MARKET.key: data.head(stop)})
        verdicts.update({s.key: s.verdicts for s in result.signals})
        # The live driver keeps the state as JSON between runs.
        state = engine.EngineState.from_json(json.loads(json.dumps(result.state.to_json())))
    assert verdicts == {s.key: s.verdicts for s in whole.signals}
    assert state.guard_releases == whole.state.guard_releases
    assert kind in state.guard_releases
    since, _peak = state.guard_releases[kind]
    assert utc_from_ms(since) > utc_from_ms(int(data.time[0]))


# The other kinds let go by themselves: none of them reads only the book's closed trades.

SELF_RELEASING = {
    "cooldown_after_stop": ({"minutes": 1440}, None),
    "cooldown_after_close": ({"minutes": 720}, None),
    "max_open_positions": ({"max_open": 1}, None),
    "max_open_per_symbol": ({"max_open": 1}, None),
    "duplicate_position": ({}, None),
    "volatility_ceiling": ({"max_atr_pct": 1.44}, None),
    "liquidity_floor": ({"window": 24, "min_quote_volume": 2800.0}, None),
    # EmaCrossover's targets sit a fixed multiple of its stops away; Bollinger's vary.
    "min_reward_risk": ({"min_ratio": 1.3}, BollingerReversion()),
}


def test_every_guard_kind_is_covered_by_a_release_test():
    assert set(LOCKING) | set(SELF_RELEASING) | {"stale_data"} == set(GUARDS)


@pytest.mark.parametrize("kind", sorted(SELF_RELEASING))
def test_the_other_guards_let_a_one_market_book_trade_again_by_themselves(kind):
    params, strategy = SELF_RELEASING[kind]
    config = engine.EngineConfig(
        strategies=(
            engine.StrategySpec(
                "s", MARKET, strategy or EmaCrossover(fast=5, slow=13, max_hold=12)
            ),
        ),
        guards=(engine.GuardSpec(kind, build_guard(kind, params)),),
        costs=COSTS,
    )
    states = [s.state for s in engine.run(config, engine.EngineState(), CANDLES).signals]
    blocked = states.count("blocked")
    assert 10 <= blocked <= len(states) - 10
    # Runs of blocks end: a signal gets through after a blocked one, more than once.
    ends = sum(a == "blocked" != b for a, b in pairwise(states))
    assert ends >= 2


def test_stale_data_lets_go_once_the_feed_delivers_again():
    market_key = MARKET.key
    config = engine.EngineConfig(
        strategies=(engine.StrategySpec("s", MARKET, EmaCrossover(fast=5, slow=13, max_hold=12)),),
        guards=(engine.GuardSpec("stale", build_guard("stale_data", {"max_timeframes": 2.0})),),
        costs=COSTS,
    )
    data = CANDLES[market_key]
    # The book starts live after 50 candles; from then on one live run per new candle.
    state = engine.run(config, engine.EngineState(), {market_key: data.head(50)}).state
    decided = []
    for stop in range(51, len(data) + 1):
        # A live run per candle; every 100 candles the feed is 5 hours late for 20 runs.
        late = (stop // 20) % 5 == 0
        now = int(data.time[stop - 1]) + HOUR + (5 * HOUR if late else HOUR // 2)
        result = engine.run(config, state, {market_key: data.head(stop)}, now=now)
        decided += [(late, s.state) for s in result.signals]
        state = result.state
    assert {state for late, state in decided if late} == {"blocked"}
    assert "blocked" not in {state for late, state in decided if not late}
    assert sum(late for late, _ in decided) >= 10
