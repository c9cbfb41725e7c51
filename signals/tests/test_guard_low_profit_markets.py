"""low_profit_markets: notional-weighted return of a symbol's last trades (no database)."""

from datetime import UTC, datetime, timedelta

import pytest

from signals.domain.guards import ClosedTrade, LowProfitMarkets, Snapshot, build_guard
from signals.domain.strategies import Proposal

NOW = datetime(2024, 1, 2, tzinfo=UTC)
LONG = Proposal("long", 100.0, 95.0, 110.0, 24, "test")


def history(*trades: tuple[float, float], symbol: str = "BTC/USD") -> tuple[ClosedTrade, ...]:
    """``(pnl, notional)`` trades, oldest first, one hour apart, the newest an hour ago."""
    count = len(trades)
    return tuple(
        ClosedTrade(symbol, NOW - timedelta(hours=count - i), "timeout", pnl, notional)
        for i, (pnl, notional) in enumerate(trades)
    )


def snapshot(trades: tuple[ClosedTrade, ...]) -> Snapshot:
    return Snapshot(now=NOW, symbol="BTC/USD", open_positions=0, recent_closed=trades)


@pytest.mark.parametrize(
    ("pnl", "passed"), [(-10.0, False), (0.0, True), (10.0, True)], ids=["below", "at", "above"]
)
def test_it_blocks_below_the_minimum_return(pnl, passed):
    trades = history((pnl - 40.0, 1000.0), (20.0, 1000.0), (20.0, 2000.0))
    verdict = LowProfitMarkets(min_profit_pct=0.0).check(LONG, snapshot(trades))
    assert verdict.passed is passed
    assert (verdict.guard, verdict.threshold) == ("low_profit_markets", 0.0)
    assert verdict.observed == pytest.approx(100 * pnl / 4000.0, abs=1e-12)


def test_the_return_is_weighted_by_notional_not_a_sum_of_ratios():
    # Hand-checked (freqtrade #7500): +50% on 100 quote (+50) and -10% on 10,000 quote
    # (-1,000). The sum of ratios is +40% and would pass; the money says
    # 100 * (50 - 1000) / (100 + 10000) = -9.405940...%.
    trades = history((50.0, 100.0), (-1000.0, 10_000.0))
    verdict = LowProfitMarkets(lookback_trades=2, min_trades=2).check(LONG, snapshot(trades))
    assert not verdict.passed
    assert verdict.observed == pytest.approx(-9.405940594059405, rel=1e-12)
    assert verdict.reason == (
        "last 2 trade(s) on BTC/USD returned -9.41% of their notional "
        "(-950.00 quote on 10100.00 quote), minimum 0.00%"
    )


def test_only_the_last_lookback_trades_of_this_symbol_known_by_now_count():
    old_loss = history((-500.0, 1000.0))
    recent = history((10.0, 1000.0), (10.0, 1000.0), (10.0, 1000.0))
    elsewhere = history((-900.0, 1000.0), symbol="ETH/USD")
    future = (ClosedTrade("BTC/USD", NOW + timedelta(hours=1), "stop", -900.0, 1000.0),)
    trades = old_loss + recent + elsewhere + future
    verdict = LowProfitMarkets(lookback_trades=3).check(LONG, snapshot(trades))
    assert verdict.passed
    assert verdict.observed == pytest.approx(1.0)


@pytest.mark.parametrize(("count", "observed"), [(2, None), (3, -1.0)], ids=["fewer", "enough"])
def test_it_needs_min_trades_before_it_judges(count, observed):
    trades = history(*[(-10.0, 1000.0)] * count)
    verdict = LowProfitMarkets(min_trades=3).check(LONG, snapshot(trades))
    assert verdict.observed == observed
    assert verdict.passed is (observed is None)
    if observed is None:
        assert verdict.reason == "2 closed trade(s) on this symbol, fewer than 3"


def test_trades_without_notional_are_not_judged():
    verdict = LowProfitMarkets(min_trades=1).check(LONG, snapshot(history((-5.0, 0.0))))
    assert (verdict.passed, verdict.observed) == (True, None)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"lookback_trades": 0}, "lookback_trades between 1 and 200"),
        ({"lookback_trades": 201}, "lookback_trades between 1 and 200"),
        ({"min_trades": 0}, "min_trades between 1 and lookback_trades"),
        ({"lookback_trades": 3, "min_trades": 4}, "min_trades between 1 and lookback_trades"),
        ({"min_profit_pct": float("nan")}, "finite min_profit_pct"),
        ({"min_profit_pct": "1%"}, "parameter min_profit_pct must be float"),
    ],
)
def test_bad_parameters_are_refused_by_name(params, message):
    with pytest.raises(ValueError, match=message):
        build_guard("low_profit_markets", params)
