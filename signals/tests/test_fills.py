"""The fill model's incremental path against hand-computed references (no database)."""

import json

import pytest

from markets.bars import CandleArrays
from signals.domain.fills import (
    GAP,
    STOP,
    TARGET,
    TIMEOUT,
    FillCosts,
    OpenTrade,
    TradePlan,
    TradeResult,
    simulate,
    trade_enter,
    trade_step,
)

T0 = 1_704_067_200_000  # 2024-01-01T00:00Z, epoch ms
HOUR = 3_600_000
FREE = FillCosts(slippage_bps=0.0, fee_rate=0.0, notional=1000.0)
COSTLY = FillCosts(slippage_bps=10.0, fee_rate=0.001, notional=1000.0)

LONG = TradePlan(side="long", stop=95.0, target=110.0, max_hold=3)
SHORT = TradePlan(side="short", stop=105.0, target=90.0, max_hold=3)


def approx(value: float):
    return pytest.approx(value, rel=1e-12, abs=1e-12)


def candles(*ohlc: tuple[float, float, float, float]) -> CandleArrays:
    """Hourly candles from T0, volume 1."""
    return CandleArrays.from_rows(
        [(T0 + i * HOUR, o, h, l, c, 1.0) for i, (o, h, l, c) in enumerate(ohlc)]
    )


def closed(plan: TradePlan, path: CandleArrays, costs: FillCosts = FREE) -> TradeResult:
    result = simulate(plan, path, 0, costs)
    assert isinstance(result, TradeResult), result
    return result


QUIET = (100.0, 101.0, 99.0, 100.0)


def test_no_entry_candle_means_pending():
    assert simulate(LONG, candles(), 0, FREE) is None
    assert simulate(LONG, candles(QUIET, QUIET), 2, FREE) is None


def test_long_hits_target_at_target_price():
    out = closed(LONG, candles((100, 104, 99, 103), (103, 111, 102, 108)))
    assert (out.exit_reason, out.exit_price, out.exit_time) == (TARGET, 110.0, T0 + HOUR)
    assert (out.entry_time, out.entry_price, out.held) == (T0, 100.0, 2)
    assert out.quantity == 10.0
    assert out.fees == 0.0
    assert out.pnl == 100.0  # (110 - 100) * 10
    assert out.return_pct == approx(10.0)
    assert out.r_multiple == 2.0  # risk 5 per unit * 10 units = 50
    assert out.mfe == approx(10.0)  # the target, 110
    assert out.mae == approx(-1.0)  # the first candle's low, 99


def test_entry_index_picks_the_entry_candle():
    path = candles((50, 50, 50, 50), (100, 104, 99, 103), (103, 111, 102, 108))
    out = simulate(LONG, path, 1, FREE)
    assert isinstance(out, TradeResult)
    assert (out.entry_time, out.exit_time, out.pnl) == (T0 + HOUR, T0 + 2 * HOUR, 100.0)


def test_long_stop_wins_when_both_touched_in_one_candle():
    out = closed(LONG, candles((100, 112, 94, 100)))
    assert (out.exit_reason, out.exit_price, out.pnl) == (STOP, 95.0, -50.0)
    assert out.r_multiple == -1.0
    assert (out.mae, out.mfe) == (approx(-5.0), 0.0)  # the stop only; the high came too late


def test_entry_candle_counts_for_stop_and_target():
    out = closed(LONG, candles((100, 101, 90, 96)))
    assert (out.exit_time, out.exit_reason, out.held) == (T0, STOP, 1)


def test_open_beyond_stop_exits_at_that_open_as_gap():
    out = closed(LONG, candles(QUIET, (90, 92, 88, 91)))
    assert (out.exit_reason, out.exit_price, out.pnl) == (GAP, 90.0, -100.0)
    assert out.r_multiple == -2.0
    # 90, not the gap candle's low of 88: the trade was out at the open.
    assert (out.mae, out.mfe) == (approx(-10.0), approx(1.0))


def test_entry_open_already_beyond_stop_exits_at_the_same_open():
    out = closed(LONG, candles((94, 96, 93, 95)))
    assert (out.entry_price, out.exit_price, out.exit_reason, out.exit_time) == (
        94.0,
        94.0,
        GAP,
        T0,
    )
    assert (out.pnl, out.r_multiple, out.mae, out.mfe, out.held) == (0.0, 0.0, 0.0, 0.0, 1)


def test_entry_open_already_beyond_target_exits_at_the_same_open():
    out = closed(LONG, candles((112, 115, 111, 113)))
    assert (out.entry_price, out.exit_price, out.exit_reason, out.exit_time) == (
        112.0,
        112.0,
        TARGET,
        T0,
    )
    assert out.pnl == 0.0


def test_open_beyond_target_exits_at_that_open_as_target():
    out = closed(LONG, candles(QUIET, (115, 120, 114, 118)))
    assert (out.exit_reason, out.exit_price, out.pnl) == (TARGET, 115.0, 150.0)
    assert out.mfe == approx(15.0)


def test_timeout_exits_at_close_of_last_held_candle():
    path = candles(QUIET, QUIET, (100, 102, 99, 101), (101, 200, 1, 150))
    out = closed(LONG, path)
    assert (out.exit_reason, out.exit_price, out.exit_time, out.held) == (
        TIMEOUT,
        101.0,
        T0 + 2 * HOUR,
        3,
    )
    assert out.pnl == 10.0


def test_timeout_candle_range_counts_in_mae_and_mfe():
    # The trade held the timeout candle to its close, so its low of 96 and high of 102
    # were both lived through: MAE -4 %, MFE +2 % (not the close's +1 %).
    out = closed(LONG, candles(QUIET, QUIET, (100, 102, 96, 101)))
    assert out.exit_reason == TIMEOUT
    assert (out.mae, out.mfe) == (approx(-4.0), approx(2.0))
    # Short: the high of 104 is the worst (-4 %), the low of 97 the best (+3 %).
    out = closed(SHORT, candles(QUIET, QUIET, (100, 104, 97, 99)))
    assert (out.exit_reason, out.exit_price, out.pnl) == (TIMEOUT, 99.0, 10.0)
    assert (out.mae, out.mfe) == (approx(-4.0), approx(3.0))


def test_open_until_the_candles_arrive():
    out = simulate(LONG, candles(QUIET, (100, 102, 98, 101)), 0, FREE)
    assert isinstance(out, OpenTrade)
    assert (out.entry_time, out.entry_price, out.quantity, out.held) == (T0, 100.0, 10.0, 2)
    assert (out.worst, out.best) == (98.0, 102.0)
    assert (out.mae, out.mfe) == (approx(-2.0), approx(2.0))


def test_more_candles_never_change_a_closed_result():
    path = candles((100, 104, 99, 103), (103, 111, 102, 108), (108, 108, 50, 60))
    assert simulate(LONG, path.head(2), 0, FREE) == simulate(LONG, path, 0, FREE)


def test_open_trade_carried_through_json_finishes_like_one_run():
    path = candles(QUIET, (100, 102, 98, 101), (101, 111, 100, 105))
    first_run = simulate(LONG, path.head(2), 0, COSTLY)
    assert isinstance(first_run, OpenTrade)
    carried = OpenTrade.from_json(json.loads(json.dumps(first_run.to_json())))
    assert carried == first_run
    finished = trade_step(
        carried,
        time=int(path.time[2]),
        open_=101.0,
        high=111.0,
        low=100.0,
        close=105.0,
        costs=COSTLY,
    )
    assert finished == simulate(LONG, path, 0, COSTLY)
    assert isinstance(finished, TradeResult)
    assert (finished.exit_reason, finished.held) == (TARGET, 3)


def test_enter_then_step_the_same_candle():
    trade = trade_enter(LONG, time=T0, open_=100.0, costs=FREE)
    assert (trade.held, trade.worst, trade.best, trade.entry_price) == (0, 100.0, 100.0, 100.0)
    stepped = trade_step(trade, time=T0, open_=100.0, high=101.0, low=99.0, close=100.0, costs=FREE)
    assert isinstance(stepped, OpenTrade)
    assert (stepped.held, stepped.worst, stepped.best) == (1, 99.0, 101.0)


def test_short_mirrors_long():
    out = closed(SHORT, candles((100, 101, 95, 96), (96, 97, 89, 90)))
    assert (out.exit_reason, out.exit_price, out.pnl) == (TARGET, 90.0, 100.0)
    assert out.r_multiple == 2.0
    assert (out.mae, out.mfe) == (approx(-1.0), approx(10.0))
    out = closed(SHORT, candles((100, 106, 89, 100)))
    assert (out.exit_reason, out.pnl, out.r_multiple) == (STOP, -50.0, -1.0)
    out = closed(SHORT, candles(QUIET, (107, 108, 106, 107)))
    assert (out.exit_reason, out.exit_price, out.pnl) == (GAP, 107.0, -70.0)
    out = closed(SHORT, candles(QUIET, (88, 89, 87, 88)))
    assert (out.exit_reason, out.exit_price, out.pnl) == (TARGET, 88.0, 120.0)
    still = simulate(SHORT, candles(QUIET, (100, 102, 98, 101)), 0, FREE)
    assert isinstance(still, OpenTrade)
    assert (still.worst, still.best) == (102.0, 98.0)
    assert (still.mae, still.mfe) == (approx(-2.0), approx(2.0))


def test_slippage_and_fees_move_every_fill_against_the_trade():
    # Long: buys at 100 * 1.001 = 100.1, target 110 sells at 110 * 0.999 = 109.89.
    out = closed(LONG, candles((100, 111, 99, 108)), COSTLY)
    assert out.entry_price == approx(100.1)
    assert out.exit_price == approx(109.89)
    assert out.quantity == approx(1000 / 100.1)
    assert out.fees == approx(209.99 / 100.1)  # 0.001 * (1000 / 100.1) * (100.1 + 109.89)
    assert out.pnl == approx(9580.01 / 100.1)  # (9.79 * 1000 - 209.99) / 100.1 = 95.704...
    assert out.return_pct == approx(9.58001 / 1.001)
    assert out.r_multiple == approx(9580.01 / 5100)  # risk (100.1 - 95) * 1000 / 100.1
    # Excursions are measured from the raw open: slippage is not a price the market made.
    assert (out.mae, out.mfe) == (0.0, approx(10.0))

    # Short: sells at 99.9, target 90 buys back at 90.09.
    short = closed(SHORT, candles((100, 101, 89, 95)), COSTLY)
    assert short.entry_price == approx(99.9)
    assert short.exit_price == approx(90.09)
    assert short.fees == approx(189.99 / 99.9)
    assert short.pnl == approx(9620.01 / 99.9)  # (9.81 * 1000 - 189.99) / 99.9
    assert short.r_multiple == approx(9620.01 / 5100)  # risk (105 - 99.9) * 1000 / 99.9


def test_zero_risk_has_no_r_multiple():
    plan = TradePlan(side="long", stop=100.0, target=110.0, max_hold=3)
    out = closed(plan, candles((100, 101, 99, 100)))  # opens on its stop: gap, risk 0
    assert (out.exit_reason, out.pnl, out.r_multiple) == (GAP, 0.0, None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"side": "sideways", "stop": 1.0, "target": 2.0, "max_hold": 1}, "side"),
        ({"side": "long", "stop": 1.0, "target": 2.0, "max_hold": 0}, "max hold"),
    ],
)
def test_bad_plans_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TradePlan(**kwargs)


def test_bad_costs_are_refused():
    with pytest.raises(ValueError, match="notional"):
        FillCosts(slippage_bps=0.0, fee_rate=0.0, notional=0.0)
    with pytest.raises(ValueError, match="negative"):
        FillCosts(slippage_bps=-1.0, fee_rate=0.0, notional=1.0)
    with pytest.raises(ValueError, match="negative"):
        FillCosts(slippage_bps=0.0, fee_rate=-0.001, notional=1.0)


def test_an_open_trade_past_its_max_hold_is_refused():
    trade = trade_enter(LONG, time=T0, open_=100.0, costs=FREE)
    data = trade.to_json() | {"held": 3}
    with pytest.raises(ValueError, match="held"):
        OpenTrade.from_json(data)


def test_negative_entry_index_is_refused():
    with pytest.raises(ValueError, match="negative"):
        simulate(LONG, candles(QUIET), -1, FREE)
