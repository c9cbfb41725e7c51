"""cooldown_after_close: any close on the symbol starts a pause (no database)."""

from datetime import UTC, datetime, timedelta

import pytest

from signals.domain.guards import (
    ClosedTrade,
    CooldownAfterClose,
    CooldownAfterStop,
    Snapshot,
    build_guard,
)
from signals.domain.strategies import Proposal

NOW = datetime(2024, 1, 2, tzinfo=UTC)
LONG = Proposal("long", 100.0, 95.0, 110.0, 24, "test")


def closed(minutes_before: float, reason: str = "target", symbol: str = "BTC/USD") -> ClosedTrade:
    return ClosedTrade(symbol, NOW - timedelta(minutes=minutes_before), reason, 5.0, 1000.0)


def snapshot(*trades: ClosedTrade) -> Snapshot:
    return Snapshot(now=NOW, symbol="BTC/USD", open_positions=0, recent_closed=trades)


@pytest.mark.parametrize(
    ("minutes_ago", "passed"),
    [(59.5, False), (60, True), (60.5, True)],
    ids=["below", "at", "above"],
)
def test_the_cooldown_ends_exactly_at_its_length(minutes_ago, passed):
    verdict = CooldownAfterClose(minutes=60).check(LONG, snapshot(closed(minutes_ago)))
    assert verdict.passed is passed
    assert (verdict.guard, verdict.observed, verdict.threshold) == (
        "cooldown_after_close",
        minutes_ago,
        60.0,
    )


@pytest.mark.parametrize("reason", ["target", "timeout", "stop", "gap"])
def test_any_exit_starts_the_cooldown(reason):
    verdict = CooldownAfterClose(minutes=60).check(LONG, snapshot(closed(30, reason)))
    assert not verdict.passed
    assert verdict.reason == "last close 30 min ago, cooldown 60 min"


def test_it_counts_from_the_latest_close_known_by_now():
    trades = (closed(90), closed(20, "timeout"), closed(-5), closed(1, symbol="ETH/USD"))
    verdict = CooldownAfterClose(minutes=60).check(LONG, snapshot(*trades))
    assert verdict.observed == 20.0


def test_without_a_close_on_the_symbol_it_passes_with_nothing_observed():
    verdict = CooldownAfterClose(minutes=60).check(LONG, snapshot(closed(1, symbol="ETH/USD")))
    assert (verdict.passed, verdict.observed, verdict.threshold) == (True, None, 60.0)
    assert verdict.reason == "no closed trade on this symbol"


def test_a_target_does_not_start_the_stop_out_cooldown():
    assert CooldownAfterStop(minutes=60).check(LONG, snapshot(closed(30))).passed


@pytest.mark.parametrize(
    ("minutes_ago", "passed"),
    [(239.5, False), (240, True), (240.5, True)],
    ids=["below", "at", "above"],
)
def test_the_stop_out_cooldown_ends_exactly_at_its_length(minutes_ago, passed):
    verdict = CooldownAfterStop().check(LONG, snapshot(closed(minutes_ago, "stop")))
    assert verdict.passed is passed
    assert (verdict.observed, verdict.threshold) == (minutes_ago, 240.0)


def test_a_negative_cooldown_is_refused_by_name():
    with pytest.raises(ValueError, match="cooldown_after_close needs minutes >= 0"):
        build_guard("cooldown_after_close", {"minutes": -1})
