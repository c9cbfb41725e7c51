"""The fill model shared by paper trading, the shadow engine and replays.

A signal fires on the close of candle ``i`` with absolute stop and target prices. The
trade enters at the open of candle ``i + 1``; until that candle exists it is pending.

Entry fill: the entry open moved against the trade by the slippage
``s = slippage_bps / 10000`` (a long buys at ``open * (1 + s)``, a short sells at
``open * (1 - s)``); ``quantity = notional / entry_price``, where the notional (quote
currency) is the plan's own when the signal fixed one (``TradePlan.notional``, see the
book's sizing in ``signals.domain.engine``), else the costs' ``notional``.

Every candle from the entry candle on (the entry candle is candle 1 of the max hold)
is checked in this order, and the first rule that applies closes the trade:

1. it opens beyond the stop: exit at that open, reason ``gap``;
2. it opens beyond the target: exit at that open, reason ``target``;
3. its range touches the stop: exit at the stop, reason ``stop`` (so the stop wins
   when both are touched in one candle: the candle does not tell which came first);
4. its range touches the target: exit at the target, reason ``target``;
5. it is the ``max_hold``-th candle: exit at its close, reason ``timeout``.

Otherwise the trade stays open, also when the candles run out: nothing is closed at
a price the data does not contain. The exit fill is the raw exit price moved against
the trade (a long sells at ``raw * (1 - s)``, a short buys at ``raw * (1 + s)``).

``fees = fee_rate * quantity * (entry_price + exit_price)``;
``pnl = direction * (exit_price - entry_price) * quantity - fees``;
``return_pct = pnl / notional * 100`` (the same notional); ``r_multiple = pnl / (|entry_price - stop| *
quantity)`` (undefined when that risk is 0).

MAE and MFE are the worst and best raw prices the trade saw, in % of the entry
candle's open, positive in the trade's favour. A candle held without an exit adds its
low and high; an exit candle by gap, stop or target adds only the raw exit price (the
trade saw no further); a timeout candle was held whole, so it adds its low and high as
well as its close.

There are two paths with identical results, bit for bit: ``trade_enter`` and
``trade_step`` advance one trade one candle at a time (the live driver carries open
trades between runs), and ``simulate_batch`` evaluates many trades at once over one
market's candle arrays (replays). Both use the shared arithmetic helpers below with
the same operation order, so their floats agree exactly; the kernel compares and takes
extremes on prices multiplied by the direction (+-1), which is exact too. Prices are
assumed finite (no NaN candles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from markets.bars import CandleArrays

LONG = "long"
SHORT = "short"
STOP, TARGET, TIMEOUT, GAP = "stop", "target", "timeout", "gap"
REASONS: tuple[str, ...] = ("", STOP, TARGET, TIMEOUT, GAP)

_STOP_CODE, _TARGET_CODE, _TIMEOUT_CODE, _GAP_CODE = (
    REASONS.index(STOP),
    REASONS.index(TARGET),
    REASONS.index(TIMEOUT),
    REASONS.index(GAP),
)
# The kernel works on (trades x candles) matrices, taking the trades in chunks of at
# most this many cells. Measured: chunks of ~100k cells (800 kB per float matrix, cache
# sized and reused by the allocator) run about twice as fast as chunks of 2M cells.
_MAX_CELLS = 100_000

# Scalar (incremental path) or array (kernel): the helpers below serve both, which is
# what keeps the two paths' floats identical.
_Num = TypeVar("_Num", float, np.ndarray)


@dataclass(frozen=True, slots=True)
class FillCosts:
    """Costs and size: slippage in basis points per fill, fee rate per side, quote notional."""

    slippage_bps: float
    fee_rate: float
    notional: float

    def __post_init__(self) -> None:
        if self.slippage_bps < 0 or self.fee_rate < 0:
            raise ValueError("slippage and fees cannot be negative")
        if self.notional <= 0:
            raise ValueError("the notional per trade must be positive")


@dataclass(frozen=True, slots=True)
class TradePlan:
    """What the signal fixed on its candle's close; ``notional`` (quote currency) is the
    size the book gave it, ``None`` for the costs' fixed notional."""

    side: str
    stop: float
    target: float
    max_hold: int
    notional: float | None = None

    def __post_init__(self) -> None:
        if self.side not in (LONG, SHORT):
            raise ValueError(f"side must be {LONG!r} or {SHORT!r}, not {self.side!r}")
        if self.max_hold < 1:
            raise ValueError("max hold must be at least one candle")
        if self.notional is not None and not (math.isfinite(self.notional) and self.notional > 0):
            raise ValueError("the notional per trade must be positive")

    def notional_in(self, costs: FillCosts) -> float:
        """The quote notional this trade is sized at under ``costs``."""
        return costs.notional if self.notional is None else self.notional


@dataclass(frozen=True, slots=True)
class OpenTrade:
    """A trade between entry and exit: everything the next candle needs."""

    plan: TradePlan
    entry_time: int  # epoch ms, the entry candle's open time
    entry_open: float  # raw open of the entry candle (the MAE/MFE reference)
    entry_price: float  # filled
    quantity: float
    held: int  # candles already stepped through
    worst: float  # raw extremes seen so far
    best: float

    def __post_init__(self) -> None:
        if not 0 <= self.held < self.plan.max_hold:
            raise ValueError(f"an open trade has held 0 to {self.plan.max_hold - 1} candles")

    @property
    def mae(self) -> float:
        """Maximum adverse excursion so far, % of the entry open (negative = against)."""
        return _excursion(self.worst, self.entry_open, _direction(self.plan.side))

    @property
    def mfe(self) -> float:
        """Maximum favourable excursion so far, % of the entry open."""
        return _excursion(self.best, self.entry_open, _direction(self.plan.side))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types; ``from_json`` restores an equal trade (JSON floats round-trip)."""
        plan: dict[str, Any] = {
            "side": self.plan.side,
            "stop": self.plan.stop,
            "target": self.plan.target,
            "max_hold": self.plan.max_hold,
        }
        if self.plan.notional is not None:
            plan["notional"] = self.plan.notional
        return {
            "plan": plan,
            "entry_time": self.entry_time,
            "entry_open": self.entry_open,
            "entry_price": self.entry_price,
            "quantity": self.quantity,
            "held": self.held,
            "worst": self.worst,
            "best": self.best,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OpenTrade:
        """The trade ``to_json`` wrote."""
        plan = data["plan"]
        return cls(
            plan=TradePlan(
                side=str(plan["side"]),
                stop=float(plan["stop"]),
                target=float(plan["target"]),
                max_hold=int(plan["max_hold"]),
                notional=float(plan["notional"]) if plan.get("notional") is not None else None,
            ),
            entry_time=int(data["entry_time"]),
            entry_open=float(data["entry_open"]),
            entry_price=float(data["entry_price"]),
            quantity=float(data["quantity"]),
            held=int(data["held"]),
            worst=float(data["worst"]),
            best=float(data["best"]),
        )


@dataclass(frozen=True, slots=True)
class TradeResult:
    """A closed trade."""

    entry_time: int  # epoch ms, the entry candle's open time
    entry_price: float  # filled
    quantity: float
    exit_time: int  # epoch ms, the exit candle's OPEN time
    exit_price: float  # filled
    exit_reason: str
    fees: float
    pnl: float
    return_pct: float
    r_multiple: float | None  # None when the risk to the stop is 0
    mae: float
    mfe: float
    held: int  # candles, the exit candle included


# --- arithmetic shared by both paths (same formulas, same operation order) -------------


def _slip_factors(costs: FillCosts) -> tuple[float, float]:
    """``(buy, sell)``: what a buying and a selling fill multiply the raw price by."""
    slip = costs.slippage_bps / 10_000.0
    return 1.0 + slip, 1.0 - slip


def _direction(side: str) -> float:
    return 1.0 if side == LONG else -1.0


def _fees(fee_rate: float, quantity: _Num, entry_price: _Num, exit_price: _Num) -> _Num:
    return fee_rate * quantity * (entry_price + exit_price)


def _pnl(direction: _Num, entry_price: _Num, exit_price: _Num, quantity: _Num, fees: _Num) -> _Num:
    return direction * (exit_price - entry_price) * quantity - fees


def _return_pct(pnl: _Num, notional: _Num) -> _Num:
    return pnl / notional * 100.0


def _risk(entry_price: _Num, stop: _Num, quantity: _Num) -> _Num:
    return abs(entry_price - stop) * quantity


def _excursion(price: _Num, reference: _Num, direction: _Num) -> _Num:
    """Move from ``reference`` to ``price`` in % of ``reference``, positive = in the trade's favour."""
    # Multiplying by +-1.0 is exact, so this equals ``move`` or ``-move`` bit for bit.
    return direction * ((price - reference) / reference * 100.0)


# --- the incremental path ---------------------------------------------------------------


def trade_enter(plan: TradePlan, *, time: int, open_: float, costs: FillCosts) -> OpenTrade:
    """Fill the entry at this candle's open. The caller then steps the SAME candle."""
    buy, sell = _slip_factors(costs)
    entry_price = open_ * (buy if plan.side == LONG else sell)
    return OpenTrade(
        plan=plan,
        entry_time=time,
        entry_open=open_,
        entry_price=entry_price,
        quantity=plan.notional_in(costs) / entry_price,
        held=0,
        worst=open_,
        best=open_,
    )


def trade_step(
    trade: OpenTrade,
    *,
    time: int,
    open_: float,
    high: float,
    low: float,
    close: float,
    costs: FillCosts,
) -> OpenTrade | TradeResult:
    """Advance ``trade`` through one candle: the trade still open, or its result.

    ``costs`` must be the ones the trade entered with.
    """
    plan = trade.plan
    long = plan.side == LONG
    held = trade.held + 1
    adverse, favourable = (low, high) if long else (high, low)

    def beyond_stop(price: float) -> bool:
        return price <= plan.stop if long else price >= plan.stop

    def beyond_target(price: float) -> bool:
        return price >= plan.target if long else price <= plan.target

    def worse(a: float, b: float) -> float:
        return min(a, b) if long else max(a, b)

    def better(a: float, b: float) -> float:
        return max(a, b) if long else min(a, b)

    worst, best = trade.worst, trade.best
    if beyond_stop(open_):
        raw, reason = open_, GAP
    elif beyond_target(open_):
        raw, reason = open_, TARGET
    elif beyond_stop(adverse):
        raw, reason = plan.stop, STOP
    elif beyond_target(favourable):
        raw, reason = plan.target, TARGET
    elif held >= plan.max_hold:
        raw, reason = close, TIMEOUT
        # Held to the close: the trade lived through the whole candle.
        worst, best = worse(worst, adverse), better(best, favourable)
    else:
        return OpenTrade(
            plan=plan,
            entry_time=trade.entry_time,
            entry_open=trade.entry_open,
            entry_price=trade.entry_price,
            quantity=trade.quantity,
            held=held,
            worst=worse(worst, adverse),
            best=better(best, favourable),
        )
    # Gap, stop or target: the trade ended at ``raw`` inside this candle and saw no further.
    worst, best = worse(worst, raw), better(best, raw)

    buy, sell = _slip_factors(costs)
    exit_price = raw * (sell if long else buy)
    direction = _direction(plan.side)
    fees = _fees(costs.fee_rate, trade.quantity, trade.entry_price, exit_price)
    pnl = _pnl(direction, trade.entry_price, exit_price, trade.quantity, fees)
    risk = _risk(trade.entry_price, plan.stop, trade.quantity)
    return TradeResult(
        entry_time=trade.entry_time,
        entry_price=trade.entry_price,
        quantity=trade.quantity,
        exit_time=time,
        exit_price=exit_price,
        exit_reason=reason,
        fees=fees,
        pnl=pnl,
        return_pct=_return_pct(pnl, plan.notional_in(costs)),
        r_multiple=pnl / risk if risk > 0 else None,
        mae=_excursion(worst, trade.entry_open, direction),
        mfe=_excursion(best, trade.entry_open, direction),
        held=held,
    )


def simulate(
    plan: TradePlan, candles: CandleArrays, entry_index: int, costs: FillCosts
) -> OpenTrade | TradeResult | None:
    """Run ``plan`` from the entry candle ``candles[entry_index]`` until it exits.

    None while the entry candle is not in ``candles`` (pending); an ``OpenTrade`` when
    the candles run out first. Free of lookahead: more candles never change a result.
    """
    if entry_index < 0:
        raise ValueError("the entry index cannot be negative")
    if entry_index >= len(candles):
        return None
    # A trade closes by its max_hold-th candle: later candles are never needed.
    window = slice(entry_index, entry_index + plan.max_hold)
    rows = zip(
        candles.time[window].tolist(),
        candles.open[window].tolist(),
        candles.high[window].tolist(),
        candles.low[window].tolist(),
        candles.close[window].tolist(),
        strict=True,
    )
    time, open_, high, low, close = next(rows)
    trade = trade_enter(plan, time=time, open_=open_, costs=costs)
    while True:
        stepped = trade_step(
            trade, time=time, open_=open_, high=high, low=low, close=close, costs=costs
        )
        if isinstance(stepped, TradeResult):
            return stepped
        trade = stepped
        try:
            time, open_, high, low, close = next(rows)
        except StopIteration:
            return trade


# --- the vectorised kernel --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """``simulate_batch``'s answer: one element per trade, in the order given.

    Price and P&L fields are NaN where they do not apply yet (not entered, not closed).
    """

    entered: np.ndarray  # bool
    closed: np.ndarray  # bool
    entry_index: np.ndarray  # int64, -1 when not entered
    exit_index: np.ndarray  # int64, -1 when not closed
    reason: np.ndarray  # int8 code into REASONS, 0 when not closed
    entry_open: np.ndarray
    entry_price: np.ndarray
    quantity: np.ndarray
    exit_price: np.ndarray
    fees: np.ndarray
    pnl: np.ndarray
    return_pct: np.ndarray
    r_multiple: np.ndarray  # NaN when the risk is 0 or not closed
    mae: np.ndarray  # so far, for open trades
    mfe: np.ndarray
    held: np.ndarray  # int64
    worst: np.ndarray
    best: np.ndarray

    def __len__(self) -> int:
        return len(self.entered)

    def trade(
        self, i: int, plan: TradePlan, candles: CandleArrays
    ) -> OpenTrade | TradeResult | None:
        """Trade ``i`` as the incremental path returns it: None (not entered), an
        ``OpenTrade`` to carry on, or a ``TradeResult``. ``plan`` and ``candles`` must be
        the ones the batch ran with."""
        if not self.entered[i]:
            return None
        entry_time = int(candles.time[self.entry_index[i]])
        if not self.closed[i]:
            return OpenTrade(
                plan=plan,
                entry_time=entry_time,
                entry_open=float(self.entry_open[i]),
                entry_price=float(self.entry_price[i]),
                quantity=float(self.quantity[i]),
                held=int(self.held[i]),
                worst=float(self.worst[i]),
                best=float(self.best[i]),
            )
        r_multiple = float(self.r_multiple[i])
        return TradeResult(
            entry_time=entry_time,
            entry_price=float(self.entry_price[i]),
            quantity=float(self.quantity[i]),
            exit_time=int(candles.time[self.exit_index[i]]),
            exit_price=float(self.exit_price[i]),
            exit_reason=REASONS[int(self.reason[i])],
            fees=float(self.fees[i]),
            pnl=float(self.pnl[i]),
            return_pct=float(self.return_pct[i]),
            r_multiple=None if np.isnan(r_multiple) else r_multiple,
            mae=float(self.mae[i]),
            mfe=float(self.mfe[i]),
            held=int(self.held[i]),
        )


def simulate_batch(
    candles: CandleArrays,
    entry_index: np.ndarray,
    side: np.ndarray,
    stop: np.ndarray,
    target: np.ndarray,
    max_hold: np.ndarray,
    costs: FillCosts,
    notional: np.ndarray | None = None,
) -> BatchOutcome:
    """Run many trades over one market's candles at once; ``side`` is +1 long, -1 short;
    ``notional`` is each trade's quote notional (default the costs' own).

    Trade ``i`` equals ``simulate(plan_i, candles, entry_index[i], costs)`` bit for bit
    (see ``BatchOutcome.trade``), ``plan_i`` carrying ``notional[i]``.
    """
    entry_index = np.asarray(entry_index, dtype=np.int64)
    side = np.asarray(side)
    stop = np.asarray(stop, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    max_hold = np.asarray(max_hold, dtype=np.int64)
    count = entry_index.shape[0] if entry_index.ndim == 1 else -1
    notional = (
        np.full(count if count >= 0 else 0, costs.notional)
        if notional is None
        else np.asarray(notional, dtype=np.float64)
    )
    if any(a.shape != (count,) for a in (entry_index, side, stop, target, max_hold, notional)):
        raise ValueError(
            "entry_index, side, stop, target, max_hold and notional must be 1-D, same length"
        )
    if not (np.isfinite(notional) & (notional > 0)).all():
        raise ValueError("the notional per trade must be positive")
    if (entry_index < 0).any():
        raise ValueError("entry indices cannot be negative")
    if not np.isin(side, (1, -1)).all():
        raise ValueError("side must be +1 (long) or -1 (short)")
    if (max_hold < 1).any():
        raise ValueError("max hold must be at least one candle")

    nan = np.full(count, np.nan)
    out: dict[str, np.ndarray] = {
        "entered": entry_index < len(candles),
        "closed": np.zeros(count, dtype=bool),
        "entry_index": np.full(count, -1, dtype=np.int64),
        "exit_index": np.full(count, -1, dtype=np.int64),
        "reason": np.zeros(count, dtype=np.int8),
        "held": np.zeros(count, dtype=np.int64),
        **{
            name: nan.copy()
            for name in (
                "entry_open",
                "entry_price",
                "quantity",
                "exit_price",
                "fees",
                "pnl",
                "return_pct",
                "r_multiple",
                "mae",
                "mfe",
                "worst",
                "best",
            )
        },
    }
    rows = np.flatnonzero(out["entered"])
    # Columns each trade needs: its max hold, cut where the data ends. Longest first, so
    # a chunk is as wide as its first trade and a few long holds do not widen them all.
    need = np.minimum(max_hold[rows], len(candles) - entry_index[rows])
    order = np.argsort(-need, kind="stable")
    rows, need = rows[order], need[order]
    tables = _signed_tables(candles)
    scratch = _Scratch(max(_MAX_CELLS, int(need[0]) if need.size else 0))
    start = 0
    while start < rows.size:
        width = int(need[start])
        end = start + max(1, _MAX_CELLS // width)
        part = rows[start:end]
        start = end
        columns = _kernel(
            candles,
            tables,
            scratch,
            entry_index[part],
            side[part].astype(np.float64),
            stop[part],
            target[part],
            max_hold[part],
            notional[part],
            costs,
            width,
        )
        for name, values in columns.items():
            out[name][part] = values
    return BatchOutcome(**out)


def _signed_tables(candles: CandleArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Open, adverse and favourable prices times the trade's direction, for both sides.

    Multiplying by -1 is exact, so one comparison then serves longs and shorts alike: a
    long's ``low <= stop`` and a short's ``high >= stop`` are both ``adverse <= stop``
    in signed prices. Each table holds the long half (index ``i``) then the short half
    (index ``n + i``).
    """
    return (
        np.concatenate([candles.open, -candles.open]),
        np.concatenate([candles.low, -candles.high]),
        np.concatenate([candles.high, -candles.low]),
    )


class _Scratch:
    """Buffers for the kernel's (trades x candles) matrices, reused from chunk to chunk.

    Why: fresh matrices of this size cost page faults on every chunk, which measured
    several times the arithmetic done on them.
    """

    def __init__(self, cells: int) -> None:
        self._cells = cells
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, int], dtype: type[np.generic]) -> np.ndarray:
        if name not in self._buffers:
            self._buffers[name] = np.empty(self._cells, dtype=dtype)
        return self._buffers[name][: shape[0] * shape[1]].reshape(shape)


def _kernel(
    candles: CandleArrays,
    tables: tuple[np.ndarray, np.ndarray, np.ndarray],
    scratch: _Scratch,
    entry: np.ndarray,
    direction: np.ndarray,
    stop: np.ndarray,
    target: np.ndarray,
    max_hold: np.ndarray,
    notional: np.ndarray,
    costs: FillCosts,
    width: int,
) -> dict[str, np.ndarray]:
    """The fill model for entered trades: row = trade, column = candle held."""
    n = len(candles)
    trades = np.arange(len(entry))
    cols = np.arange(width)
    long = direction > 0
    signed_open, signed_adverse, signed_favourable = tables
    signed_stop, signed_target = direction * stop, direction * target

    # The candles a trade may use: its max hold, cut where the data ends. Cells past the
    # data read the last candle; ``usable`` keeps them and those past the max hold out.
    usable = np.minimum(max_hold, n - entry)
    shape = (len(entry), width)
    half = np.where(long, 0, n)
    cells = np.add((half + entry)[:, None], cols, out=scratch.get("cells", shape, np.int64))
    np.minimum(cells, (half + n - 1)[:, None], out=cells)

    def gather(table: np.ndarray, name: str) -> np.ndarray:
        # The cells are in range already; "clip" spares numpy buffering ``out``.
        return np.take(table, cells, out=scratch.get(name, shape, np.float64), mode="clip")

    open_m = gather(signed_open, "open")
    adverse_m = gather(signed_adverse, "adverse")
    favourable_m = gather(signed_favourable, "favourable")
    stop_m, target_m = signed_stop[:, None], signed_target[:, None]
    # Any price rule on each cell: open beyond the stop or the target, range touching the
    # stop or the target; then only the cells the trade may use.
    exits = np.less_equal(open_m, stop_m, out=scratch.get("exits", shape, np.bool_))
    cell_test = scratch.get("cell_test", shape, np.bool_)
    exits |= np.greater_equal(open_m, target_m, out=cell_test)
    exits |= np.less_equal(adverse_m, stop_m, out=cell_test)
    exits |= np.greater_equal(favourable_m, target_m, out=cell_test)
    exits &= np.less(cols, usable[:, None], out=cell_test)
    first = exits.argmax(axis=1)
    hit = exits[trades, first]
    timeout = ~hit & (usable == max_hold)
    closed = hit | timeout
    # No price exit: the timeout candle, or the last candle seen by a trade still open.
    first = np.where(hit, first, usable - 1)
    exit_at = entry + first

    # The rules in priority order, on each trade's exit candle.
    open_, adverse = open_m[trades, first], adverse_m[trades, first]
    favourable = favourable_m[trades, first]
    rules = [
        open_ <= signed_stop,
        open_ >= signed_target,
        adverse <= signed_stop,
        favourable >= signed_target,
    ]
    codes = [_GAP_CODE, _TARGET_CODE, _STOP_CODE, _TARGET_CODE]
    reason = np.where(closed, np.select(rules, codes, _TIMEOUT_CODE), 0).astype(np.int8)
    raw_open = candles.open[exit_at]
    raw = np.select(rules, [raw_open, raw_open, stop, target], candles.close[exit_at])
    raw = np.where(closed, raw, np.nan)

    # Extremes, signed, so the worst is always a minimum and the best a maximum. The
    # trade lived through every candle before its exit candle, and through the exit
    # candle itself on a timeout or while still open; of a gap, stop or target candle it
    # saw only the exit price.
    entry_open = candles.open[entry]
    lived = np.less_equal(cols, np.where(hit, first - 1, first)[:, None], out=cell_test)
    lowest = np.minimum.reduce(adverse_m, axis=1, where=lived, initial=np.inf)
    highest = np.maximum.reduce(favourable_m, axis=1, where=lived, initial=-np.inf)
    signed_worst = np.minimum(direction * entry_open, lowest)
    signed_best = np.maximum(direction * entry_open, highest)
    signed_raw = direction * raw
    worst = direction * np.minimum(signed_worst, np.where(closed, signed_raw, signed_worst))
    best = direction * np.maximum(signed_best, np.where(closed, signed_raw, signed_best))

    buy, sell = _slip_factors(costs)
    entry_price = entry_open * np.where(long, buy, sell)
    quantity = notional / entry_price
    exit_price = raw * np.where(long, sell, buy)
    fees = _fees(costs.fee_rate, quantity, entry_price, exit_price)
    pnl = _pnl(direction, entry_price, exit_price, quantity, fees)
    risk = _risk(entry_price, stop, quantity)
    r_multiple = np.divide(pnl, risk, out=np.full(len(entry), np.nan), where=closed & (risk > 0))
    return {
        "closed": closed,
        "entry_index": entry,
        "exit_index": np.where(closed, exit_at, -1),
        "reason": reason,
        "entry_open": entry_open,
        "entry_price": entry_price,
        "quantity": quantity,
        "exit_price": exit_price,
        "fees": fees,
        "pnl": pnl,
        "return_pct": _return_pct(pnl, notional),
        "r_multiple": r_multiple,
        "mae": _excursion(worst, entry_open, direction),
        "mfe": _excursion(best, entry_open, direction),
        "held": first + 1,
        "worst": worst,
        "best": best,
    }
