"""Strategies: pure functions of closed candles that may propose a trade on the last one.

Each strategy is a small class with a ``kind`` name in ``STRATEGIES``. It sees only the
bars it is given (the last ``lookback`` closed candles up to and including the signal
candle), so live generation and replays that pass the same window get the same answer.
Floats are used inside the indicator math; prices leave as ``Decimal``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from markets.bars import Bar
from signals.domain.fills import LONG, SHORT
from signals.domain.params import checked_params


@dataclass(frozen=True, slots=True)
class Proposal:
    """A trade a strategy proposes on the close of the last bar it saw."""

    side: str
    entry_price: Decimal
    stop_loss: Decimal
    take_profit: Decimal
    max_hold: int
    reason: str


class Strategy(Protocol):
    kind: ClassVar[str]

    @property
    def lookback(self) -> int: ...

    def propose(self, bars: Sequence[Bar]) -> Proposal | None: ...


def ema(values: Sequence[float], period: int) -> list[float]:
    """Exponential moving average seeded with the simple average of the first ``period`` values.

    Element i is the EMA through value i; the first ``period - 1`` elements are NaN.
    """
    if len(values) < period:
        return [float("nan")] * len(values)
    alpha = 2.0 / (period + 1)
    out = [float("nan")] * (period - 1)
    current = sum(values[:period]) / period
    out.append(current)
    for value in values[period:]:
        current = alpha * value + (1 - alpha) * current
        out.append(current)
    return out


def atr(bars: Sequence[Bar], period: int) -> float:
    """Wilder's average true range through the last bar (NaN with too few bars)."""
    if len(bars) < period + 1:
        return float("nan")
    ranges = []
    for previous, bar in itertools.pairwise(bars):
        high, low, prev_close = float(bar.high), float(bar.low), float(previous.close)
        ranges.append(max(high - low, abs(high - prev_close), abs(low - prev_close)))
    current = sum(ranges[:period]) / period
    for value in ranges[period:]:
        current = (current * (period - 1) + value) / period
    return current


@dataclass(frozen=True, slots=True)
class EmaCrossover:
    """Long when the fast EMA crosses above the slow one, short when it crosses below.

    Stop and target sit ``stop_atr`` and ``target_atr`` ATRs from the close.
    """

    kind: ClassVar[str] = "ema_crossover"

    fast: int = 12
    slow: int = 26
    atr_period: int = 14
    stop_atr: float = 1.5
    target_atr: float = 3.0
    max_hold: int = 24
    allow_short: bool = True

    def __post_init__(self) -> None:
        if not 1 < self.fast < self.slow:
            raise ValueError("ema_crossover needs 1 < fast < slow")
        if self.atr_period < 1 or self.max_hold < 1:
            raise ValueError("ema_crossover needs atr_period >= 1 and max_hold >= 1")
        if self.stop_atr <= 0 or self.target_atr <= 0:
            raise ValueError("ema_crossover needs positive stop_atr and target_atr")

    @property
    def lookback(self) -> int:
        # Enough history for the EMAs to forget their seed.
        return max(self.slow * 4, self.atr_period + 2)

    def propose(self, bars: Sequence[Bar]) -> Proposal | None:
        if len(bars) < max(self.slow + 1, self.atr_period + 1):
            return None
        closes = [float(bar.close) for bar in bars]
        fast, slow = ema(closes, self.fast), ema(closes, self.slow)
        before, now = fast[-2] - slow[-2], fast[-1] - slow[-1]
        if before <= 0 < now:
            side = LONG
        elif before >= 0 > now and self.allow_short:
            side = SHORT
        else:
            return None
        distance = atr(bars, self.atr_period)
        if not distance > 0:
            return None
        close = bars[-1].close
        stop_move = Decimal(repr(distance * self.stop_atr))
        target_move = Decimal(repr(distance * self.target_atr))
        sign = 1 if side == LONG else -1
        return Proposal(
            side=side,
            entry_price=close,
            stop_loss=close - sign * stop_move,
            take_profit=close + sign * target_move,
            max_hold=self.max_hold,
            reason=(
                f"EMA{self.fast} crossed {'above' if side == LONG else 'below'} "
                f"EMA{self.slow}; ATR{self.atr_period}={distance:.6g}"
            ),
        )


STRATEGIES: Mapping[str, type[EmaCrossover]] = {EmaCrossover.kind: EmaCrossover}


def build_strategy(kind: str, params: Mapping[str, Any]) -> Strategy:
    """The strategy ``kind`` with ``params``; ``ValueError`` naming what is wrong otherwise."""
    try:
        cls = STRATEGIES[kind]
    except KeyError:
        raise ValueError(
            f"unknown strategy kind {kind!r}; known: {', '.join(sorted(STRATEGIES))}"
        ) from None
    return cls(**checked_params(cls, params))


def validate_strategy_config(kind: str, params: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` if ``kind`` and ``params`` do not make a strategy."""
    build_strategy(kind, params)
