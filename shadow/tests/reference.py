"""A plain reference of the whole pipeline, for the equal-results tests.

One candle at a time, plain Python floats, no vectorisation, nothing imported from the
engine: the textbook EMA (seeded with the SMA of its first n closes) and Wilder's ATR,
the crossover, the two default guards, and the fill model as DESIGN.md states it. All
markets advance in one time order: at each candle close, first every open trade steps
through the candles closing then, then the strategies look at those candles and the
guards decide, as of that close.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class Candle:
    time: datetime
    open: float
    high: float
    low: float
    close: float


@dataclass
class Trade:
    symbol: str
    side: str
    stop: float
    target: float
    max_hold: int
    candle_time: datetime
    paper: bool
    status: str = "pending"
    entry_time: datetime | None = None
    entry_open: float = 0.0
    entry_price: float = 0.0
    quantity: float = 0.0
    held: int = 0
    worst: float = 0.0
    best: float = 0.0
    exit_time: datetime | None = None
    exit_price: float = 0.0
    exit_reason: str = ""
    pnl: float = 0.0
    known_at: datetime | None = None


@dataclass
class RefSignal:
    symbol: str
    candle_time: datetime
    side: str
    entry: float
    stop: float
    target: float
    verdicts: dict[str, tuple[bool, float | None]] = field(default_factory=dict)
    trade: Trade | None = None
    failed: bool = False  # approved, but the paper balance could not pay it

    @property
    def blocked(self) -> bool:
        return not all(passed for passed, _ in self.verdicts.values())


@dataclass
class Params:
    fast: int = 12
    slow: int = 26
    atr_period: int = 14
    stop_atr: float = 1.5
    target_atr: float = 3.0
    max_hold: int = 24
    max_open: int = 1
    cooldown_minutes: int = 240
    slippage_bps: float = 5.0
    fee_rate: float = 0.0026
    notional: float = 1000.0
    starting_balance: float = 10000.0


class _Indicators:
    def __init__(self, p: Params) -> None:
        self.p = p
        self.fast: list[float] = []
        self.slow: list[float] = []
        self.fast_value: float | None = None
        self.slow_value: float | None = None
        self.ranges: list[float] = []
        self.atr: float | None = None
        self.previous_close: float | None = None
        self.previous_difference: float | None = None

    def _ema(self, seen: list[float], value: float | None, x: float, n: int) -> float | None:
        if len(seen) < n:
            seen.append(x)
            return sum(seen) / n if len(seen) == n else None
        alpha = 2 / (n + 1)
        assert value is not None
        return alpha * x + (1 - alpha) * value

    def update(self, c: Candle) -> tuple[float | None, float | None, float | None]:
        """Returns (difference before, difference now, atr) after candle ``c``."""
        self.fast_value = self._ema(self.fast, self.fast_value, c.close, self.p.fast)
        self.slow_value = self._ema(self.slow, self.slow_value, c.close, self.p.slow)
        if self.previous_close is not None:
            tr = max(
                c.high - c.low, abs(c.high - self.previous_close), abs(c.low - self.previous_close)
            )
            n = self.p.atr_period
            if len(self.ranges) < n:
                self.ranges.append(tr)
                if len(self.ranges) == n:
                    self.atr = sum(self.ranges) / n
            else:
                assert self.atr is not None
                self.atr = (self.atr * (n - 1) + tr) / n
        self.previous_close = c.close
        before = self.previous_difference
        now = (
            self.fast_value - self.slow_value
            if self.fast_value is not None and self.slow_value is not None
            else None
        )
        self.previous_difference = now
        return before, now, self.atr


def _step(t: Trade, c: Candle, p: Params, step: timedelta) -> None:
    slip = p.slippage_bps / 10000
    long = t.side == "long"
    if t.status == "pending":
        if c.time > t.candle_time + t.max_hold * step:
            t.status, t.known_at = "expired", c.time + step
            return
        t.status = "open"
        t.entry_time, t.entry_open = c.time, c.open
        t.entry_price = c.open * (1 + slip) if long else c.open * (1 - slip)
        t.quantity = p.notional / t.entry_price
        t.worst = t.best = c.open
    exit_raw = None
    if (c.open <= t.stop) if long else (c.open >= t.stop):
        exit_raw, reason = c.open, "gap"
    elif (c.open >= t.target) if long else (c.open <= t.target):
        exit_raw, reason = c.open, "target"
    elif (c.low <= t.stop) if long else (c.high >= t.stop):
        exit_raw, reason = t.stop, "stop"
    elif (c.high >= t.target) if long else (c.low <= t.target):
        exit_raw, reason = t.target, "target"
    elif t.held + 1 == t.max_hold:
        exit_raw, reason = c.close, "timeout"
    t.held += 1
    if exit_raw is None or reason == "timeout":
        low, high = c.low, c.high
        t.worst = min(t.worst, low) if long else max(t.worst, high)
        t.best = max(t.best, high) if long else min(t.best, low)
    if exit_raw is None:
        return
    t.worst = min(t.worst, exit_raw) if long else max(t.worst, exit_raw)
    t.best = max(t.best, exit_raw) if long else min(t.best, exit_raw)
    t.exit_price = exit_raw * (1 - slip) if long else exit_raw * (1 + slip)
    fees = p.fee_rate * t.quantity * (t.entry_price + t.exit_price)
    direction = 1 if long else -1
    t.pnl = direction * (t.exit_price - t.entry_price) * t.quantity - fees
    t.status, t.exit_time, t.exit_reason = "closed", c.time, reason
    t.known_at = c.time + step


def reference_run(markets: dict[str, list[Candle]], step: timedelta, p: Params) -> list[RefSignal]:
    """Every signal of the book, each with its verdicts and its trade, in decision order.
    ``markets`` maps a symbol to its candles; symbols are decided in name order."""
    by_close: dict[datetime, list[tuple[str, Candle]]] = defaultdict(list)
    for symbol in sorted(markets):
        for candle in markets[symbol]:
            by_close[candle.time + step].append((symbol, candle))
    indicators = {symbol: _Indicators(p) for symbol in markets}
    signals: list[RefSignal] = []
    trades: list[Trade] = []
    for close in sorted(by_close):
        for symbol, candle in by_close[close]:
            for trade in trades:
                if trade.symbol == symbol and trade.status in ("pending", "open"):
                    _step(trade, candle, p, step)
        for symbol, candle in by_close[close]:
            before, now, atr = indicators[symbol].update(candle)
            if before is None or now is None or atr is None or not atr > 0:
                continue
            if before <= 0 < now:
                side = "long"
            elif before >= 0 > now:
                side = "short"
            else:
                continue
            sign = 1 if side == "long" else -1
            signal = RefSignal(
                symbol,
                candle.time,
                side,
                candle.close,
                candle.close - sign * atr * p.stop_atr,
                candle.close + sign * atr * p.target_atr,
            )
            open_positions = sum(1 for t in trades if t.paper and t.status in ("pending", "open"))
            signal.verdicts["max_open_positions"] = (
                open_positions < p.max_open,
                float(open_positions),
            )
            stop_outs = [
                t.known_at
                for t in trades
                if t.paper
                and t.symbol == symbol
                and t.status == "closed"
                and t.exit_reason in ("stop", "gap")
                and t.known_at is not None
                and t.known_at <= close
            ]
            if stop_outs:
                elapsed = (close - max(stop_outs)).total_seconds() / 60
                signal.verdicts["cooldown_after_stop"] = (elapsed >= p.cooldown_minutes, elapsed)
            else:
                signal.verdicts["cooldown_after_stop"] = (True, None)
            if not signal.blocked:
                # One quote currency here: the balance is the start plus the realised P&L
                # of closed paper trades, less the notional each open one holds.
                realised = sum(
                    t.pnl
                    for t in trades
                    if t.paper and t.status == "closed" and t.known_at <= close
                )
                free = p.starting_balance + realised - p.notional * open_positions
                signal.failed = free < p.notional
            signal.trade = Trade(
                symbol,
                side,
                signal.stop,
                signal.target,
                p.max_hold,
                candle.time,
                paper=not signal.blocked and not signal.failed,
            )
            trades.append(signal.trade)
            signals.append(signal)
    return signals
