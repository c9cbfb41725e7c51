"""The vectorised fill kernel against the incremental path and against a plain reference.

The kernel and the incremental path share their arithmetic, so they must agree exactly;
the reference below is written independently of ``fills.py`` (a loop over candles with
plain floats) and must agree on exits to the cent.
"""

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from markets.bars import CandleArrays
from signals.domain import fills
from signals.domain.fills import (
    LONG,
    REASONS,
    SHORT,
    FillCosts,
    OpenTrade,
    TradePlan,
    TradeResult,
    simulate,
    simulate_batch,
    trade_step,
)

FREE = FillCosts(slippage_bps=0.0, fee_rate=0.0, notional=1000.0)
COSTLY = FillCosts(slippage_bps=7.5, fee_rate=0.0006, notional=2500.0)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- data ----------------------------------------------------------------------------


def load_candles(path: Path) -> CandleArrays:
    """A candle CSV from ../shared: Coinbase ``timestamp_ms,datetime_utc,open,...`` or FTX
    ``timestamp,open,...`` with ``YYYY-mm-dd HH:MM:SS.ffffff`` UTC times."""
    rows = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if "timestamp_ms" in row:
                time = int(row["timestamp_ms"])
            else:
                moment = datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC)
                time = (moment - EPOCH) // timedelta(milliseconds=1)
            prices = [float(row[name]) for name in ("open", "high", "low", "close", "volume")]
            rows.append((time, *prices))
    return CandleArrays.from_rows(rows)


def random_walk(count: int, seed: int) -> CandleArrays:
    """Hourly candles in cents, with occasional gaps between a close and the next open."""
    rng = np.random.default_rng(seed)
    rows = []
    price = 100.0
    for i in range(count):
        jump = rng.normal(0, 0.02) if rng.random() < 0.05 else rng.normal(0, 0.001)
        open_ = round(price * np.exp(jump), 2)
        close = round(open_ * np.exp(rng.normal(0, 0.01)), 2)
        high = round(max(open_, close) * (1 + abs(rng.normal(0, 0.004))), 2)
        low = round(min(open_, close) * (1 - abs(rng.normal(0, 0.004))), 2)
        rows.append((1_700_000_000_000 + i * 3_600_000, open_, high, low, close, 1.0))
        price = close
    return CandleArrays.from_rows(rows)


Trades = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def random_trades(candles: CandleArrays, count: int, seed: int) -> Trades:
    """Signals on random candles (the last ones included, so some are pending or run out),
    both sides, stop and target in cents at random distances, max hold 1 to 60."""
    rng = np.random.default_rng(seed)
    n = len(candles)
    signal = rng.integers(0, n, count)
    signal[:60] = n - 1 - np.arange(60) % 30  # crowd the end of the data
    side = rng.choice(np.array([1, -1], dtype=np.int8), count)
    reference = candles.close[signal]
    stop = np.round(reference * (1 - side * rng.uniform(0.0, 0.03, count)), 2)
    target = np.round(reference * (1 + side * rng.uniform(0.0, 0.05, count)), 2)
    max_hold = rng.integers(1, 61, count)
    max_hold[60:120] = 1
    return signal + 1, side, stop, target, max_hold


def every_seventh_candle(candles: CandleArrays, holds: tuple[int, ...]) -> Trades:
    """A long and a short on every 7th candle's close: stop 1 %, target 2 % away."""
    signal = np.repeat(np.arange(0, len(candles), 7), 2)
    side = np.tile(np.array([1, -1], dtype=np.int8), len(signal) // 2)
    close = candles.close[signal]
    stop = close * (1 - 0.01 * side)
    target = close * (1 + 0.02 * side)
    max_hold = np.array(holds)[np.arange(len(signal)) % len(holds)]
    return signal + 1, side, stop, target, max_hold


def plan_of(trades: Trades, i: int) -> TradePlan:
    _, side, stop, target, max_hold = trades
    return TradePlan(
        side=LONG if side[i] > 0 else SHORT,
        stop=float(stop[i]),
        target=float(target[i]),
        max_hold=int(max_hold[i]),
    )


# --- the independent reference ---------------------------------------------------------


def reference(rows, entry, side, stop, target, max_hold, costs):
    """The fill model as plainly as possible. None when pending; else a dict."""
    if entry >= len(rows):
        return None
    slip = costs.slippage_bps / 10_000
    long = side == 1
    first_open = rows[entry][1]
    paid = first_open * (1 + slip) if long else first_open * (1 - slip)
    units = costs.notional / paid
    lowest = highest = first_open
    for k in range(max_hold):
        if entry + k == len(rows):
            return excursions({"closed": False, "held": k}, long, first_open, lowest, highest)
        _, o, h, l, c = rows[entry + k]
        price = None
        if long:
            if o <= stop:
                price, why = o, "gap"
            elif o >= target:
                price, why = o, "target"
            elif l <= stop:
                price, why = stop, "stop"
            elif h >= target:
                price, why = target, "target"
        elif o >= stop:
            price, why = o, "gap"
        elif o <= target:
            price, why = o, "target"
        elif h >= stop:
            price, why = stop, "stop"
        elif l <= target:
            price, why = target, "target"
        if price is None and k == max_hold - 1:
            price, why = c, "timeout"
        if price is None or why == "timeout":
            lowest, highest = min(lowest, l), max(highest, h)
        if price is None:
            continue
        lowest, highest = min(lowest, price), max(highest, price)
        got = price * (1 - slip) if long else price * (1 + slip)
        gross = units * got - units * paid if long else units * paid - units * got
        pnl = gross - costs.fee_rate * units * paid - costs.fee_rate * units * got
        done = {"closed": True, "held": k + 1, "exit": entry + k, "why": why, "pnl": pnl}
        return excursions(done, long, first_open, lowest, highest)
    raise AssertionError("unreachable: the last candle of the max hold always exits")


def excursions(outcome, long, first_open, lowest, highest):
    if long:
        outcome["mae"] = (lowest / first_open - 1) * 100
        outcome["mfe"] = (highest / first_open - 1) * 100
    else:
        outcome["mae"] = (1 - highest / first_open) * 100
        outcome["mfe"] = (1 - lowest / first_open) * 100
    return outcome


# --- checks --------------------------------------------------------------------------


def run_incremental(candles: CandleArrays, trades: Trades, costs: FillCosts) -> list:
    return [
        simulate(plan_of(trades, i), candles, int(trades[0][i]), costs)
        for i in range(len(trades[0]))
    ]


def assert_kernel_equals_incremental(candles, trades, batch, incremental):
    """Every trade, every field, exactly."""
    assert len(batch) == len(incremental)
    wrong = []
    for i, expected in enumerate(incremental):
        got = batch.trade(i, plan_of(trades, i), candles)
        if got != expected:
            wrong.append((i, plan_of(trades, i), expected, got))
        elif isinstance(expected, TradeResult):
            assert REASONS[batch.reason[i]] == expected.exit_reason
            assert candles.time[batch.exit_index[i]] == expected.exit_time
    assert not wrong, f"{len(wrong)} trades differ, first: {wrong[:3]}"


def assert_both_equal_reference(candles, trades, costs, batch, incremental):
    """Exit candle, reason and P&L to the cent; held candles; MAE/MFE to 1e-9 %."""
    rows = list(
        zip(
            candles.time.tolist(),
            candles.open.tolist(),
            candles.high.tolist(),
            candles.low.tolist(),
            candles.close.tolist(),
            strict=True,
        )
    )
    entry, side, stop, target, max_hold = trades
    wrong = []
    for i, trade in enumerate(incremental):
        want = reference(
            rows,
            int(entry[i]),
            int(side[i]),
            float(stop[i]),
            float(target[i]),
            int(max_hold[i]),
            costs,
        )
        if want is None or trade is None:
            if want is not None or trade is not None or batch.entered[i]:
                wrong.append((i, want, trade))
            continue
        if want["closed"]:
            ok = (
                isinstance(trade, TradeResult)
                and trade.exit_time == rows[want["exit"]][0]
                and trade.exit_reason == want["why"]
                and abs(trade.pnl - want["pnl"]) < 0.005
                and batch.closed[i]
                and batch.exit_index[i] == want["exit"]
                and REASONS[batch.reason[i]] == want["why"]
                and abs(batch.pnl[i] - want["pnl"]) < 0.005
            )
        else:
            ok = isinstance(trade, OpenTrade) and batch.entered[i] and not batch.closed[i]
        # Held candles and excursions, the incremental path's and the kernel's.
        for held, mae, mfe in [
            (trade.held, trade.mae, trade.mfe),
            (batch.held[i], batch.mae[i], batch.mfe[i]),
        ]:
            ok = ok and held == want["held"]
            ok = ok and abs(mae - want["mae"]) < 1e-9 and abs(mfe - want["mfe"]) < 1e-9
        if not ok:
            wrong.append((i, want, trade))
    assert not wrong, f"{len(wrong)} trades differ from the reference, first: {wrong[:3]}"


def check_all(candles: CandleArrays, trades: Trades, costs: FillCosts):
    """Kernel == incremental path exactly; both == the reference. Returns the batch."""
    batch = simulate_batch(candles, *trades, costs)
    incremental = run_incremental(candles, trades, costs)
    assert_kernel_equals_incremental(candles, trades, batch, incremental)
    assert_both_equal_reference(candles, trades, costs, batch, incremental)
    return batch


def reasons_seen(batch) -> set[str]:
    seen = {REASONS[code] for code in batch.reason[batch.closed]}
    if (batch.entered & ~batch.closed).any():
        seen.add("open")
    if (~batch.entered).any():
        seen.add("pending")
    return seen


# --- tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("costs", [FREE, COSTLY])
def test_kernel_equals_incremental_path_on_a_random_walk(costs):
    candles = random_walk(3000, seed=11)
    trades = random_trades(candles, 5000, seed=12)
    batch = simulate_batch(candles, *trades, costs)
    assert_kernel_equals_incremental(
        candles, trades, batch, run_incremental(candles, trades, costs)
    )
    # The walk exercises every rule, and the end of the data leaves trades open or pending.
    assert reasons_seen(batch) == {"gap", "stop", "target", "timeout", "open", "pending"}


@pytest.mark.parametrize("costs", [FREE, COSTLY])
def test_kernel_and_incremental_path_equal_a_plain_reference_on_a_random_walk(costs):
    candles = random_walk(3000, seed=21)
    trades = random_trades(candles, 5000, seed=22)
    batch = simulate_batch(candles, *trades, costs)
    assert_both_equal_reference(
        candles, trades, costs, batch, run_incremental(candles, trades, costs)
    )


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("relative", "holds"),
    [
        ("data/candles/coinbase/Coinbase_BTCUSD_1h.normalized.csv", (1, 6, 24, 48)),
        ("data/candles/ftx/btc-perp-20211231-20220201_1m.csv", (1, 15, 60)),
    ],
)
def test_kernel_incremental_path_and_reference_agree_on_real_candles(shared_dir, relative, holds):
    path = shared_dir / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    candles = load_candles(path)
    batch = check_all(candles, every_seventh_candle(candles, holds), COSTLY)
    assert {"stop", "target", "timeout"} <= reasons_seen(batch)


def test_no_trades():
    candles = random_walk(10, seed=1)
    empty = np.zeros(0)
    batch = simulate_batch(
        candles, empty.astype(np.int64), empty.astype(np.int8), empty, empty, empty, FREE
    )
    assert len(batch) == 0
    assert batch.pnl.shape == (0,)


def test_no_candles_leaves_every_trade_pending():
    candles = random_walk(0, seed=1)
    trades = (np.array([0, 3]), np.array([1, -1], np.int8), np.ones(2), np.ones(2), np.ones(2))
    batch = simulate_batch(candles, *trades, FREE)
    assert not batch.entered.any()
    assert batch.entry_index.tolist() == [-1, -1]
    assert batch.trade(0, plan_of(trades, 0), candles) is None


def test_trades_at_the_end_of_the_data():
    candles = random_walk(50, seed=3)
    entry = np.arange(40, 53)  # up to two candles past the data
    count = len(entry)
    side = np.where(np.arange(count) % 2 == 0, 1, -1).astype(np.int8)
    # Far stops and targets: the trades run until they time out or the data ends.
    stop = np.where(side > 0, 1.0, 1e9)
    target = np.where(side > 0, 1e9, 1.0)
    trades = (entry, side, stop, target, np.full(count, 5))
    batch = check_all(candles, trades, COSTLY)
    assert batch.closed.tolist() == [True] * 6 + [False] * (count - 6)
    assert batch.held.tolist() == [5] * 6 + [4, 3, 2, 1, 0, 0, 0]
    assert batch.entered.tolist() == [True] * 10 + [False] * 3


def test_max_hold_of_one_closes_on_the_entry_candle():
    candles = random_walk(500, seed=4)
    entry, side, stop, target, _ = random_trades(candles, 800, seed=5)
    trades = (entry, side, stop, target, np.ones(len(entry), dtype=np.int64))
    batch = check_all(candles, trades, COSTLY)
    assert (batch.exit_index[batch.closed] == batch.entry_index[batch.closed]).all()
    assert (batch.closed == batch.entered).all()


def test_chunks_give_the_same_answer(monkeypatch):
    candles = random_walk(1000, seed=6)
    trades = random_trades(candles, 2000, seed=7)
    whole = simulate_batch(candles, *trades, COSTLY)
    monkeypatch.setattr(fills, "_MAX_CELLS", 300)  # 5 trades a chunk at 60 columns
    chunked = simulate_batch(candles, *trades, COSTLY)
    for name in whole.__slots__:
        assert np.array_equal(getattr(whole, name), getattr(chunked, name), equal_nan=True), name


def test_an_open_trade_from_a_replay_carries_on_in_the_live_path():
    candles = random_walk(400, seed=8)
    cut = 300
    # Two trades on each of the 60 candles before the cut: many are still open at it.
    entry = np.repeat(np.arange(cut - 60, cut), 2)
    side = np.tile(np.array([1, -1], dtype=np.int8), 60)
    close = candles.close[entry - 1]
    trades = (entry, side, close * (1 - 0.03 * side), close * (1 + 0.05 * side), np.full(120, 60))
    batch = simulate_batch(candles.head(cut), *trades, COSTLY)
    carried = 0
    for i in np.flatnonzero(batch.entered & ~batch.closed):
        plan = plan_of(trades, int(i))
        trade = batch.trade(int(i), plan, candles.head(cut))
        assert isinstance(trade, OpenTrade)
        trade = OpenTrade.from_json(json.loads(json.dumps(trade.to_json())))
        step: OpenTrade | TradeResult = trade
        j = cut
        while isinstance(step, OpenTrade) and j < len(candles):
            step = trade_step(
                step,
                time=int(candles.time[j]),
                open_=float(candles.open[j]),
                high=float(candles.high[j]),
                low=float(candles.low[j]),
                close=float(candles.close[j]),
                costs=COSTLY,
            )
            j += 1
        assert step == simulate(plan, candles, int(trades[0][i]), COSTLY)
        carried += 1
    assert carried >= 20


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"side": np.array([1, 0], np.int8)}, "side"),
        ({"max_hold": np.array([1, 0])}, "max hold"),
        ({"entry_index": np.array([-1, 0])}, "negative"),
        ({"stop": np.ones(3)}, "same length"),
    ],
)
def test_bad_batches_are_refused(change, message):
    arguments = {
        "entry_index": np.array([0, 1]),
        "side": np.array([1, -1], np.int8),
        "stop": np.ones(2),
        "target": np.ones(2),
        "max_hold": np.array([1, 2]),
    } | change
    with pytest.raises(ValueError, match=message):
        simulate_batch(random_walk(5, seed=1), costs=FREE, **arguments)
