"""max_open_per_symbol: positions on the signal's symbol (no database)."""

from datetime import UTC, datetime

import pytest

from signals.domain.guards import MaxOpenPerSymbol, Snapshot, build_guard
from signals.domain.strategies import Proposal

NOW = datetime(2024, 1, 2, tzinfo=UTC)
LONG = Proposal("long", 100.0, 95.0, 110.0, 24, "test")


def on_book(**open_by_symbol: int) -> Snapshot:
    by_symbol = {symbol.replace("_", "/"): n for symbol, n in open_by_symbol.items()}
    return Snapshot(
        now=NOW,
        symbol="BTC/USD",
        open_positions=sum(by_symbol.values()),
        open_by_symbol=by_symbol,
    )


@pytest.mark.parametrize(
    ("open_here", "passed"), [(1, True), (2, False), (3, False)], ids=["below", "at", "above"]
)
def test_it_blocks_at_the_limit_on_this_symbol(open_here, passed):
    verdict = MaxOpenPerSymbol(max_open=2).check(LONG, on_book(BTC_USD=open_here))
    assert verdict.passed is passed
    assert (verdict.guard, verdict.observed, verdict.threshold) == (
        "max_open_per_symbol",
        float(open_here),
        2.0,
    )
    assert verdict.reason == f"{open_here} open position(s) on BTC/USD, limit 2"


def test_positions_on_other_symbols_do_not_count():
    verdict = MaxOpenPerSymbol(max_open=1).check(LONG, on_book(ETH_USD=5, SOL_USD=2))
    assert verdict.passed
    assert verdict.observed == 0.0


def test_a_limit_of_zero_blocks_every_signal():
    assert not MaxOpenPerSymbol(max_open=0).check(LONG, on_book()).passed


def test_a_negative_limit_is_refused_by_name():
    with pytest.raises(ValueError, match="max_open >= 0"):
        build_guard("max_open_per_symbol", {"max_open": -1})
    with pytest.raises(ValueError, match="parameter max_open must be int"):
        build_guard("max_open_per_symbol", {"max_open": 1.5})
