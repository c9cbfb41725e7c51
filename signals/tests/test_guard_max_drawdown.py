"""max_drawdown: the book's realised equity below its peak, in quote (no database)."""

from datetime import UTC, datetime, timedelta

import pytest

from signals.domain.guards import ClosedTrade, MaxDrawdown, Snapshot, build_guard
from signals.domain.strategies import Proposal

NOW = datetime(2024, 1, 2, tzinfo=UTC)
LONG = Proposal("long", 100.0, 95.0, 110.0, 24, "test")


def book(equity: float, peak: float) -> Snapshot:
    return Snapshot(now=NOW, symbol="BTC/USD", open_positions=0, equity=equity, equity_peak=peak)


@pytest.mark.parametrize(
    ("equity", "passed"),
    [(101.0, True), (100.0, False), (99.0, False)],
    ids=["below", "at", "above"],
)
def test_it_blocks_once_the_drawdown_reaches_the_limit(equity, passed):
    verdict = MaxDrawdown(max_drawdown=150.0).check(LONG, book(equity, peak=250.0))
    assert verdict.passed is passed
    assert (verdict.guard, verdict.observed, verdict.threshold) == (
        "max_drawdown",
        250.0 - equity,
        150.0,
    )


def test_it_measures_money_not_a_sum_of_ratios():
    # Hand-checked: a +10% win on 2000 quote (+200), then two -10% losses on 100 quote
    # (-10 each). Freqtrade's sum of ratios says -10%; the equity curve in money peaked
    # at 200 and stands at 180: a drawdown of 20 quote.
    trades = [(200.0, 2000.0), (-10.0, 100.0), (-10.0, 100.0)]
    equity = peak = 0.0
    for pnl, _notional in trades:
        equity += pnl
        peak = max(peak, equity)
    closed = tuple(
        ClosedTrade("BTC/USD", NOW - timedelta(hours=3 - i), "stop", pnl, notional)
        for i, (pnl, notional) in enumerate(trades)
    )
    snapshot = Snapshot(
        now=NOW,
        symbol="BTC/USD",
        open_positions=0,
        book_closed=closed,
        equity=180.0,
        equity_peak=200.0,
    )
    assert (equity, peak) == (180.0, 200.0)
    verdict = MaxDrawdown(max_drawdown=50.0).check(LONG, snapshot)
    assert (verdict.passed, verdict.observed) == (True, 20.0)
    assert verdict.reason == (
        "drawdown 20.00 quote from the equity peak of 200.00 quote, limit 50.00 quote"
    )


def test_a_book_at_its_peak_has_no_drawdown():
    verdict = MaxDrawdown().check(LONG, book(0.0, 0.0))
    assert (verdict.passed, verdict.observed, verdict.threshold) == (True, 0.0, 200.0)


@pytest.mark.parametrize("limit", [0, -5.0])
def test_a_limit_that_is_not_positive_is_refused_by_name(limit):
    with pytest.raises(ValueError, match="max_drawdown needs max_drawdown > 0"):
        build_guard("max_drawdown", {"max_drawdown": limit})


def test_a_whole_number_limit_is_a_float():
    assert build_guard("max_drawdown", {"max_drawdown": 300}) == MaxDrawdown(300.0)
