"""The two built-in guards as pure functions over a snapshot (no database)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from signals.domain.guards import (
    ClosedTrade,
    CooldownAfterStop,
    MaxOpenPositions,
    Snapshot,
    build_guard,
    evaluate_guards,
)
from signals.domain.strategies import Proposal

NOW = datetime(2024, 1, 2, tzinfo=UTC)
PROPOSAL = Proposal("long", D(100), D(95), D(110), 24, "test")


def snapshot(open_positions=0, closed=()):
    return Snapshot(now=NOW, symbol="BTC/USD", open_positions=open_positions, recent_closed=closed)


def test_max_open_positions_blocks_at_the_limit():
    guard = MaxOpenPositions(max_open=2)
    assert guard.check(PROPOSAL, snapshot(1)).passed
    verdict = guard.check(PROPOSAL, snapshot(2))
    assert not verdict.passed
    assert (verdict.observed, verdict.threshold) == (D(2), D(2))
    assert "2 open position(s), limit 2" in verdict.reason


def test_cooldown_blocks_after_a_recent_stop_out_on_the_same_symbol():
    guard = CooldownAfterStop(minutes=120)
    recent = [ClosedTrade("BTC/USD", NOW - timedelta(minutes=30), "stop")]
    verdict = guard.check(PROPOSAL, snapshot(closed=recent))
    assert not verdict.passed
    assert (verdict.observed, verdict.threshold) == (D(30), D(120))


@pytest.mark.parametrize(
    "trade",
    [
        ClosedTrade("BTC/USD", NOW - timedelta(minutes=121), "stop"),
        ClosedTrade("BTC/USD", NOW - timedelta(minutes=10), "target"),
        ClosedTrade("ETH/USD", NOW - timedelta(minutes=10), "stop"),
        ClosedTrade("BTC/USD", NOW + timedelta(minutes=10), "stop"),
    ],
    ids=["expired", "not-a-stop", "other-symbol", "in-the-future"],
)
def test_cooldown_passes_otherwise(trade):
    assert CooldownAfterStop(minutes=120).check(PROPOSAL, snapshot(closed=[trade])).passed


def test_gap_exits_count_as_stop_outs():
    recent = [ClosedTrade("BTC/USD", NOW - timedelta(minutes=5), "gap")]
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
