"""stoploss_guard: N stop-outs within a look-back pause a market or the book (no database)."""

from datetime import UTC, datetime, timedelta

import pytest

from signals.domain.guards import ClosedTrade, Snapshot, StoplossGuard, build_guard
from signals.domain.strategies import Proposal

NOW = datetime(2024, 1, 2, tzinfo=UTC)
LONG = Proposal("long", 100.0, 95.0, 110.0, 24, "test")


def exit_(minutes_before: float, reason: str = "stop", symbol: str = "BTC/USD") -> ClosedTrade:
    return ClosedTrade(symbol, NOW - timedelta(minutes=minutes_before), reason, -10.0, 1000.0)


def snapshot(*trades: ClosedTrade) -> Snapshot:
    """``trades`` as the engine would hand them: this symbol's and the whole book's."""
    return Snapshot(
        now=NOW,
        symbol="BTC/USD",
        open_positions=0,
        recent_closed=tuple(t for t in trades if t.symbol == "BTC/USD"),
        book_closed=trades,
    )


@pytest.mark.parametrize("scope", ["symbol", "book"])
@pytest.mark.parametrize(
    ("count", "passed"), [(2, True), (3, False), (4, False)], ids=["below", "at", "above"]
)
def test_it_blocks_from_the_nth_stop_out(scope, count, passed):
    trades = [exit_(10 * i) for i in range(1, count + 1)]
    guard = StoplossGuard(stop_outs=3, lookback_minutes=60, scope=scope)
    verdict = guard.check(LONG, snapshot(*trades))
    assert verdict.passed is passed
    assert (verdict.guard, verdict.observed, verdict.threshold) == (
        "stoploss_guard",
        float(count),
        3.0,
    )


def test_the_look_back_is_open_at_its_start_and_closed_at_now():
    trades = (exit_(60), exit_(59.9), exit_(0), exit_(-1))
    verdict = StoplossGuard(stop_outs=3, lookback_minutes=60, scope="symbol").check(
        LONG, snapshot(*trades)
    )
    # 60 min ago is outside (now - 60 min, now]; 1 min ahead is not known yet.
    assert verdict.observed == 2.0
    assert verdict.passed


def test_only_stop_and_gap_exits_count():
    trades = (exit_(5, "stop"), exit_(6, "gap"), exit_(7, "target"), exit_(8, "timeout"))
    verdict = StoplossGuard(stop_outs=2, lookback_minutes=60, scope="symbol").check(
        LONG, snapshot(*trades)
    )
    assert verdict.observed == 2.0
    assert not verdict.passed


def test_the_scope_decides_whether_other_markets_count():
    trades = (exit_(5), exit_(6, symbol="ETH/USD"), exit_(7, symbol="SOL/USD"))
    on_symbol = StoplossGuard(stop_outs=2, lookback_minutes=60, scope="symbol")
    on_book = StoplossGuard(stop_outs=2, lookback_minutes=60, scope="book")
    verdict = on_symbol.check(LONG, snapshot(*trades))
    assert (verdict.passed, verdict.observed) == (True, 1.0)
    assert verdict.reason == "1 stop-out(s) on BTC/USD in the last 60 min, limit 2"
    verdict = on_book.check(LONG, snapshot(*trades))
    assert (verdict.passed, verdict.observed) == (False, 3.0)
    assert verdict.reason == "3 stop-out(s) in the book in the last 60 min, limit 2"


def test_without_stop_outs_it_observes_zero():
    verdict = StoplossGuard().check(LONG, snapshot())
    assert (verdict.passed, verdict.observed, verdict.threshold) == (True, 0.0, 4.0)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"scope": "market"}, "scope 'symbol' or 'book'"),
        ({"stop_outs": 0}, "stop_outs between 1 and 200"),
        ({"stop_outs": 201, "scope": "symbol"}, "stop_outs between 1 and 200"),
        ({"lookback_minutes": 0}, "lookback_minutes > 0"),
        ({"scope": 1}, "parameter scope must be str"),
    ],
)
def test_bad_parameters_are_refused_by_name(params, message):
    with pytest.raises(ValueError, match=message):
        build_guard("stoploss_guard", params)
