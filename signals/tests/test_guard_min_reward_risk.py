"""min_reward_risk: the proposal's distance to target over distance to stop (no database)."""

from datetime import UTC, datetime

import pytest

from signals.domain.guards import MinRewardRisk, Snapshot, build_guard
from signals.domain.strategies import Proposal

SNAPSHOT = Snapshot(now=datetime(2024, 1, 2, tzinfo=UTC), symbol="BTC/USD", open_positions=0)


@pytest.mark.parametrize(
    ("target", "passed"),
    [(109.0, False), (110.0, True), (111.0, True)],
    ids=["below", "at", "above"],
)
def test_a_long_passes_from_the_minimum_ratio(target, passed):
    # Risk 100 - 95 = 5; reward 9, 10, 11: ratios 1.8, 2.0, 2.2.
    verdict = MinRewardRisk(min_ratio=2.0).check(
        Proposal("long", 100.0, 95.0, target, 24, "test"), SNAPSHOT
    )
    assert verdict.passed is passed
    assert (verdict.guard, verdict.threshold) == ("min_reward_risk", 2.0)
    assert verdict.observed == pytest.approx((target - 100.0) / 5.0)


def test_a_short_measures_the_same_distances():
    verdict = MinRewardRisk(min_ratio=1.5).check(
        Proposal("short", 200.0, 208.0, 188.0, 24, "test"), SNAPSHOT
    )
    assert (verdict.passed, verdict.observed) == (True, 1.5)
    assert verdict.reason == (
        "reward-to-risk 1.50 (reward 12.00, risk 8.00 per unit), minimum 1.50"
    )


def test_a_stop_at_the_entry_has_no_ratio():
    verdict = MinRewardRisk().check(Proposal("long", 100.0, 100.0, 110.0, 24, "t"), SNAPSHOT)
    assert (verdict.passed, verdict.observed, verdict.threshold) == (True, None, 1.5)


@pytest.mark.parametrize("ratio", [-1.0, float("inf")])
def test_a_bad_minimum_is_refused_by_name(ratio):
    with pytest.raises(ValueError, match="min_reward_risk needs min_ratio >= 0"):
        build_guard("min_reward_risk", {"min_ratio": ratio})
