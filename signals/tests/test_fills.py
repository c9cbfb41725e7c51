"""The fill model against hand-computed references (no database)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from markets.bars import Bar
from signals.domain.fills import FillCosts, TradePlan, simulate

T0 = datetime(2024, 1, 1, tzinfo=UTC)
FREE = FillCosts(slippage_bps=D(0), fee_rate=D(0), notional=D(1000))


def bars(*ohlc: tuple[str, str, str, str]) -> list[Bar]:
    return [
        Bar(T0 + timedelta(hours=i), D(o), D(h), D(l), D(c)) for i, (o, h, l, c) in enumerate(ohlc)
    ]


LONG = TradePlan(side="long", stop=D(95), target=D(110), max_hold=3)
SHORT = TradePlan(side="short", stop=D(105), target=D(90), max_hold=3)


def test_no_bars_means_waiting_for_entry():
    assert simulate(LONG, [], FREE).status == "pending"


def test_long_hits_target_at_target_price():
    out = simulate(LONG, bars(("100", "104", "99", "103"), ("103", "111", "102", "108")), FREE)
    assert out.status == "closed"
    assert (out.exit_reason, out.exit_price, out.exit_time) == (
        "target",
        D(110),
        T0 + timedelta(hours=1),
    )
    assert out.quantity == D(10)
    assert out.pnl == D(100)
    assert out.return_pct == D(10)
    assert out.r_multiple == D(2)  # risk 5 per unit * 10 units = 50
    assert out.mfe == D(10)
    assert out.mae == D(-1)


def test_long_stop_wins_when_both_touched_in_one_candle():
    out = simulate(LONG, bars(("100", "112", "94", "100")), FREE)
    assert (out.exit_reason, out.exit_price, out.pnl) == ("stop", D(95), D(-50))
    assert out.r_multiple == D(-1)


def test_entry_candle_counts_for_stop_and_target():
    out = simulate(LONG, bars(("100", "101", "90", "96")), FREE)
    assert out.exit_time == T0
    assert out.exit_reason == "stop"


def test_open_beyond_stop_exits_at_that_open_as_gap():
    out = simulate(LONG, bars(("100", "101", "99", "100"), ("90", "92", "88", "91")), FREE)
    assert (out.exit_reason, out.exit_price, out.pnl) == ("gap", D(90), D(-100))


def test_entry_open_already_beyond_stop_exits_at_the_same_open():
    out = simulate(LONG, bars(("94", "96", "93", "95")), FREE)
    assert (out.entry_price, out.exit_price, out.exit_reason, out.exit_time) == (
        D(94),
        D(94),
        "gap",
        T0,
    )
    assert out.pnl == D(0)


def test_open_beyond_target_exits_at_that_open_as_target():
    out = simulate(LONG, bars(("100", "101", "99", "100"), ("115", "120", "114", "118")), FREE)
    assert (out.exit_reason, out.exit_price, out.pnl) == ("target", D(115), D(150))


def test_timeout_exits_at_close_of_last_held_candle():
    path = bars(
        *[("100", "101", "99", "100")] * 2, ("100", "102", "99", "101"), ("101", "200", "1", "150")
    )
    out = simulate(LONG, path, FREE)
    assert (out.exit_reason, out.exit_price, out.exit_time) == (
        "timeout",
        D(101),
        T0 + timedelta(hours=2),
    )
    assert out.pnl == D(10)


def test_open_until_the_candles_arrive():
    out = simulate(LONG, bars(("100", "101", "99", "100"), ("100", "102", "98", "101")), FREE)
    assert out.status == "open"
    assert out.exit_price is None and out.pnl is None
    assert out.entry_price == D(100)


def test_more_candles_never_change_a_closed_result():
    path = bars(
        ("100", "104", "99", "103"), ("103", "111", "102", "108"), ("108", "108", "50", "60")
    )
    assert simulate(LONG, path[:2], FREE) == simulate(LONG, path, FREE)


def test_short_mirrors_long():
    out = simulate(SHORT, bars(("100", "101", "95", "96"), ("96", "97", "89", "90")), FREE)
    assert (out.exit_reason, out.exit_price, out.pnl) == ("target", D(90), D(100))
    out = simulate(SHORT, bars(("100", "106", "89", "100")), FREE)
    assert (out.exit_reason, out.pnl) == ("stop", D(-50))
    out = simulate(SHORT, bars(("100", "101", "99", "100"), ("107", "108", "106", "107")), FREE)
    assert (out.exit_reason, out.exit_price) == ("gap", D(107))


def test_slippage_and_fees_move_every_fill_against_the_trade():
    costs = FillCosts(slippage_bps=D(10), fee_rate=D("0.001"), notional=D(1000))
    out = simulate(LONG, bars(("100", "111", "99", "108")), costs)
    entry, exit_ = D("100.1"), D("109.89")
    assert out.entry_price == entry
    assert out.exit_price == exit_
    qty = D(1000) / entry
    fees = D("0.001") * qty * (entry + exit_)
    assert out.fees == fees
    assert out.pnl == (exit_ - entry) * qty - fees
    short = simulate(SHORT, bars(("100", "101", "89", "95")), costs)
    assert short.entry_price == D("99.9")
    assert short.exit_price == D("90.09")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"side": "sideways", "stop": D(1), "target": D(2), "max_hold": 1}, "side"),
        ({"side": "long", "stop": D(1), "target": D(2), "max_hold": 0}, "max hold"),
    ],
)
def test_bad_plans_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TradePlan(**kwargs)


def test_bad_costs_are_refused():
    with pytest.raises(ValueError, match="notional"):
        FillCosts(slippage_bps=D(0), fee_rate=D(0), notional=D(0))
    with pytest.raises(ValueError, match="negative"):
        FillCosts(slippage_bps=D(-1), fee_rate=D(0), notional=D(1))
