"""daily_loss_limit: the book's realised loss over the current UTC day (no database)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from signals.domain.guards import ClosedTrade, DailyLossLimit, Snapshot, build_guard
from signals.domain.strategies import Proposal

NOW = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)
MIDNIGHT = datetime(2024, 1, 2, tzinfo=UTC)
LONG = Proposal("long", 100.0, 95.0, 110.0, 24, "test")


def trade(known_at: datetime, pnl: float, symbol: str = "ETH/USD") -> ClosedTrade:
    return ClosedTrade(symbol, known_at, "stop" if pnl < 0 else "target", pnl, 1000.0)


def snapshot(*trades: ClosedTrade) -> Snapshot:
    return Snapshot(now=NOW, symbol="BTC/USD", open_positions=0, book_closed=trades)


@pytest.mark.parametrize(
    ("loss", "passed"), [(99.5, True), (100.0, False), (100.5, False)], ids=["below", "at", "above"]
)
def test_it_blocks_once_the_day_has_lost_the_limit(loss, passed):
    trades = (trade(NOW - timedelta(hours=2), -loss - 20.0), trade(NOW, 20.0))
    verdict = DailyLossLimit(max_loss=100.0).check(LONG, snapshot(*trades))
    assert verdict.passed is passed
    assert (verdict.guard, verdict.observed, verdict.threshold) == (
        "daily_loss_limit",
        loss,
        100.0,
    )


def test_only_trades_known_on_this_utc_day_and_by_now_count():
    # Hand-checked: -50 yesterday 23:59 and -40 at 16:00 (after now) are left out; the
    # day has -30 at midnight, -25 on another market and +15: a loss of 40.00 quote.
    trades = (
        trade(MIDNIGHT - timedelta(minutes=1), -50.0),
        trade(MIDNIGHT, -30.0, symbol="BTC/USD"),
        trade(MIDNIGHT + timedelta(hours=9), -25.0),
        trade(MIDNIGHT + timedelta(hours=10), 15.0),
        trade(NOW + timedelta(hours=1), -40.0),
    )
    verdict = DailyLossLimit(max_loss=100.0).check(LONG, snapshot(*trades))
    assert (verdict.passed, verdict.observed) == (True, 40.0)
    assert verdict.reason == (
        "realised P&L today (UTC) -40.00 quote over 3 trade(s), loss limit 100.00 quote"
    )


def test_the_day_is_the_utc_day_whatever_the_zone_of_now():
    new_york = timezone(timedelta(hours=-5))
    late_evening = datetime(2024, 1, 1, 22, 0, tzinfo=new_york)  # 03:00 UTC on Jan 2
    trades = (trade(datetime(2024, 1, 2, 1, 0, tzinfo=UTC), -60.0),)
    snap = Snapshot(now=late_evening, symbol="BTC/USD", open_positions=0, book_closed=trades)
    assert DailyLossLimit(max_loss=100.0).check(LONG, snap).observed == 60.0


def test_a_winning_day_observes_a_negative_loss():
    verdict = DailyLossLimit().check(LONG, snapshot(trade(NOW, 12.5)))
    assert (verdict.passed, verdict.observed) == (True, -12.5)
    assert "+12.50 quote over 1 trade(s)" in verdict.reason


def test_a_day_without_trades_observes_no_loss():
    verdict = DailyLossLimit().check(LONG, snapshot())
    assert (verdict.passed, verdict.observed, verdict.threshold) == (True, 0.0, 100.0)


def test_a_limit_that_is_not_positive_is_refused_by_name():
    with pytest.raises(ValueError, match="daily_loss_limit needs max_loss > 0"):
        build_guard("daily_loss_limit", {"max_loss": 0})
