"""The guard registry, and the first two guards, as pure functions over a snapshot (no
database). Each other kind has its own ``test_guard_<kind>.py``."""

import operator
from datetime import UTC, datetime, timedelta

import pytest

from markets.bars import CandleArrays
from signals.domain.guards import (
    GUARDS,
    ClosedTrade,
    CooldownAfterStop,
    MaxOpenPositions,
    Snapshot,
    build_guard,
    evaluate_guards,
)
from signals.domain.params import default_params
from signals.domain.strategies import Proposal

BLOCKS = {">=": operator.ge, ">": operator.gt, "<": operator.lt}

NOW = datetime(2024, 1, 2, tzinfo=UTC)
PROPOSAL = Proposal("long", 100.0, 95.0, 110.0, 24, "test")


def snapshot(open_positions=0, closed=()):
    return Snapshot(now=NOW, symbol="BTC/USD", open_positions=open_positions, recent_closed=closed)


def stop_out(minutes_before: float, symbol: str = "BTC/USD", reason: str = "stop") -> ClosedTrade:
    """A trade on ``symbol`` whose exit became known ``minutes_before`` before ``NOW``."""
    return ClosedTrade(symbol, NOW - timedelta(minutes=minutes_before), reason, -10.0)


def test_max_open_positions_blocks_at_the_limit():
    guard = MaxOpenPositions(max_open=2)
    assert guard.check(PROPOSAL, snapshot(1)).passed
    verdict = guard.check(PROPOSAL, snapshot(2))
    assert not verdict.passed
    assert (verdict.observed, verdict.threshold) == (2.0, 2.0)
    assert isinstance(verdict.observed, float)
    assert "2 open position(s), limit 2" in verdict.reason


def test_max_open_of_zero_blocks_everything():
    verdict = MaxOpenPositions(max_open=0).check(PROPOSAL, snapshot(0))
    assert not verdict.passed
    assert (verdict.observed, verdict.threshold) == (0.0, 0.0)


def test_a_stop_out_known_30_minutes_before_is_30_minutes_old():
    verdict = CooldownAfterStop(minutes=120).check(PROPOSAL, snapshot(closed=[stop_out(30)]))
    assert not verdict.passed
    assert (verdict.observed, verdict.threshold) == (30.0, 120.0)
    assert verdict.reason == "last stop-out 30 min ago, cooldown 120 min"


def test_the_cooldown_counts_from_the_latest_stop_out():
    closed = [stop_out(100), stop_out(45), stop_out(5, reason="target")]
    verdict = CooldownAfterStop(minutes=60).check(PROPOSAL, snapshot(closed=closed))
    assert not verdict.passed
    assert verdict.observed == 45.0


def test_the_cooldown_ends_exactly_at_its_length():
    assert CooldownAfterStop(minutes=120).check(PROPOSAL, snapshot(closed=[stop_out(120)])).passed
    assert (
        not CooldownAfterStop(minutes=120)
        .check(PROPOSAL, snapshot(closed=[stop_out(119.5)]))
        .passed
    )


def test_a_stop_out_known_after_now_is_ignored():
    verdict = CooldownAfterStop(minutes=120).check(PROPOSAL, snapshot(closed=[stop_out(-10)]))
    assert verdict.passed
    assert (verdict.observed, verdict.reason) == (None, "no stop-out on this symbol")
    # An earlier one still counts, from when it became known.
    both = [stop_out(50), stop_out(-10)]
    verdict = CooldownAfterStop(minutes=120).check(PROPOSAL, snapshot(closed=both))
    assert not verdict.passed
    assert verdict.observed == 50.0


@pytest.mark.parametrize(
    "trade",
    [
        stop_out(121),
        stop_out(10, reason="target"),
        stop_out(10, reason="timeout"),
        stop_out(10, symbol="ETH/USD"),
    ],
    ids=["over", "a-target", "a-timeout", "other-symbol"],
)
def test_cooldown_passes_otherwise(trade):
    verdict = CooldownAfterStop(minutes=120).check(PROPOSAL, snapshot(closed=[trade]))
    assert verdict.passed
    assert verdict.threshold == 120.0


def test_without_any_closed_trade_the_cooldown_passes_with_nothing_observed():
    verdict = CooldownAfterStop(minutes=60).check(PROPOSAL, snapshot())
    assert (verdict.passed, verdict.observed, verdict.threshold) == (True, None, 60.0)


def test_gap_exits_count_as_stop_outs():
    recent = [stop_out(5, reason="gap")]
    assert not CooldownAfterStop(minutes=60).check(PROPOSAL, snapshot(closed=recent)).passed


def test_every_guard_is_evaluated_even_after_one_blocks():
    guards = [MaxOpenPositions(max_open=0), CooldownAfterStop(minutes=60)]
    verdicts = evaluate_guards(guards, PROPOSAL, snapshot())
    assert [(v.guard, v.passed) for v in verdicts] == [
        ("max_open_positions", False),
        ("cooldown_after_stop", True),
    ]


def test_bad_guard_configuration_is_refused():
    with pytest.raises(ValueError, match="unknown guard kind"):
        build_guard("drawdown", {})
    with pytest.raises(ValueError, match="max_open >= 0"):
        build_guard("max_open_positions", {"max_open": -1})
    with pytest.raises(ValueError, match="minutes >= 0"):
        build_guard("cooldown_after_stop", {"minutes": -1})
    with pytest.raises(ValueError, match="must be int"):
        build_guard("max_open_positions", {"max_open": "two"})


def test_the_registry_builds_guards_with_their_parameters():
    assert build_guard("max_open_positions", {"max_open": 3}) == MaxOpenPositions(max_open=3)
    assert build_guard("cooldown_after_stop", {}) == CooldownAfterStop(minutes=240)


@pytest.mark.parametrize("kind", sorted(GUARDS))
def test_every_guard_builds_with_no_parameters_and_with_its_defaults(kind):
    cls = GUARDS[kind]
    assert cls.kind == kind
    assert cls.__module__ == f"signals.domain.guards.{kind}"
    assert build_guard(kind, {}) == cls()
    assert build_guard(kind, default_params(cls)) == cls()


@pytest.mark.parametrize("kind", sorted(GUARDS))
def test_every_guard_says_how_it_reads_and_what_it_blocks(kind):
    cls = GUARDS[kind]
    assert cls.unit in {"positions", "minutes", "stop-outs", "quote", "%", "ratio", "timeframes"}
    assert cls.blocks_when in BLOCKS
    assert cls.__doc__ and cls.__doc__.startswith("Blocks")


def busy_snapshot(hours_since_close: float) -> Snapshot:
    """A book in the middle of a day: positions open, trades closed, candles in."""
    now = NOW + timedelta(hours=12)
    closed = tuple(
        ClosedTrade("BTC/USD", now - timedelta(hours=hours_since_close + i), reason, pnl, 1000.0)
        for i, (reason, pnl) in enumerate([("stop", -30.0), ("target", 50.0), ("gap", -80.0)])
    )
    step = 3_600_000
    start = int(now.timestamp() * 1000) - 30 * step
    candles = CandleArrays.from_rows(
        [(start + i * step, 100.0, 104.0, 97.0, 100.0 + i % 3, 400.0) for i in range(30)]
    )
    return Snapshot(
        now=now,
        symbol="BTC/USD",
        open_positions=2,
        open_by_symbol={"BTC/USD": 1, "ETH/USD": 1},
        open_by_symbol_side={("BTC/USD", "long"): 1, ("ETH/USD", "short"): 1},
        recent_closed=closed,
        book_closed=closed,
        equity=-60.0,
        equity_peak=20.0,
        candles=candles,
        timeframe_ms=step,
        clock=now + timedelta(hours=hours_since_close),
    )


@pytest.mark.parametrize("kind", sorted(GUARDS))
@pytest.mark.parametrize("hours_since_close", [0.5, 3.0, 30.0])
def test_every_verdict_agrees_with_what_its_guard_says_it_blocks(kind, hours_since_close):
    guard = GUARDS[kind]()
    verdict = guard.check(PROPOSAL, busy_snapshot(hours_since_close))
    assert verdict.guard == kind
    assert verdict.threshold is not None
    if verdict.observed is None:
        assert verdict.passed
    else:
        assert isinstance(verdict.observed, float)
        assert verdict.passed is not BLOCKS[guard.blocks_when](verdict.observed, verdict.threshold)
