"""duplicate_position: the same symbol and side already held (no database)."""

from datetime import UTC, datetime

import pytest

from signals.domain.guards import DuplicatePosition, Snapshot, build_guard
from signals.domain.strategies import Proposal

NOW = datetime(2024, 1, 2, tzinfo=UTC)
LONG = Proposal("long", 100.0, 95.0, 110.0, 24, "test")
SHORT = Proposal("short", 100.0, 105.0, 90.0, 24, "test")


def holding(**by_symbol_side: int) -> Snapshot:
    """``BTC_USD_long=1`` means one long position open on BTC/USD."""
    positions = {}
    for key, n in by_symbol_side.items():
        base, quote, side = key.split("_")
        positions[(f"{base}/{quote}", side)] = n
    return Snapshot(
        now=NOW,
        symbol="BTC/USD",
        open_positions=sum(positions.values()),
        open_by_symbol_side=positions,
    )


@pytest.mark.parametrize(
    ("held", "passed"), [(0, True), (1, False), (2, False)], ids=["below", "at", "above"]
)
def test_it_blocks_from_one_position_on_the_same_symbol_and_side(held, passed):
    verdict = DuplicatePosition().check(LONG, holding(BTC_USD_long=held))
    assert verdict.passed is passed
    assert (verdict.guard, verdict.observed, verdict.threshold) == (
        "duplicate_position",
        float(held),
        1.0,
    )
    assert verdict.reason == f"{held} long position(s) open on BTC/USD, limit 1"


def test_the_other_side_or_another_symbol_is_no_duplicate():
    snapshot = holding(BTC_USD_short=1, ETH_USD_long=1)
    assert DuplicatePosition().check(LONG, snapshot).passed
    verdict = DuplicatePosition().check(SHORT, snapshot)
    assert not verdict.passed
    assert "short position(s)" in verdict.reason


def test_it_takes_no_parameters():
    assert build_guard("duplicate_position", {}) == DuplicatePosition()
    with pytest.raises(ValueError, match="unknown parameter"):
        build_guard("duplicate_position", {"max_open": 1})
