"""Strategies: pure, vectorised functions of closed candles that propose trades.

A strategy computes its indicators once over a whole candle array (``scan``) and
returns every proposal it makes, each on the close of one candle, using no value after
that candle. It also returns its indicator state, so the next call (the live driver's
next run, with the candles that closed since) continues exactly where this one stopped:
a live run and a replay of the same candles compute the same values.

Each strategy is a small class with a ``kind`` name in ``STRATEGIES``; its parameters
are dataclass fields, checked by ``build_strategy``. Prices are floats in here; the
drivers store them as ``Decimal``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from markets.bars import CandleArrays
from signals.domain.fills import LONG, SHORT
from signals.domain.indicators import IndicatorState, ema, wilder_atr
from signals.domain.params import checked_params


@dataclass(frozen=True, slots=True)
class Proposal:
    """A trade a strategy proposes on the close of one candle."""

    side: str
    entry_price: float
    stop_loss: float
    take_profit: float
    max_hold: int
    reason: str


@dataclass(frozen=True, slots=True)
class Scan:
    """What one ``scan`` found: ``index`` is the candle each proposal closed on."""

    index: list[int]
    proposals: list[Proposal]
    state: IndicatorState


class Strategy(Protocol):
    kind: ClassVar[str]

    def scan(self, candles: CandleArrays, state: IndicatorState | None) -> Scan: ...


@dataclass(frozen=True, slots=True)
class EmaCrossover:
    """Long when the fast EMA crosses above the slow one, short when it crosses below.

    Stop and target sit ``stop_atr`` and ``target_atr`` Wilder ATRs from the close.
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

    def scan(self, candles: CandleArrays, state: IndicatorState | None) -> Scan:
        state = state or {}
        if not len(candles):
            return Scan(index=[], proposals=[], state=state)
        fast, fast_state = ema(candles.close, self.fast, state.get("fast"))
        slow, slow_state = ema(candles.close, self.slow, state.get("slow"))
        atr, atr_state = wilder_atr(
            candles.high, candles.low, candles.close, self.atr_period, state.get("atr")
        )
        difference = fast - slow
        previous = state.get("difference")
        before = np.concatenate(([math.nan if previous is None else previous], difference[:-1]))
        with np.errstate(invalid="ignore"):
            up = (before <= 0) & (difference > 0)
            down = (before >= 0) & (difference < 0) if self.allow_short else np.zeros_like(up)
            fired = (up | down) & (atr > 0)
        index = np.flatnonzero(fired).tolist()
        proposals = [
            self._proposal(float(candles.close[i]), float(atr[i]), bool(up[i])) for i in index
        ]
        last = float(difference[-1]) if len(difference) else previous
        new_state = {
            "fast": fast_state,
            "slow": slow_state,
            "atr": atr_state,
            "difference": None if last is None or math.isnan(last) else last,
        }
        return Scan(index=index, proposals=proposals, state=new_state)

    def _proposal(self, close: float, distance: float, long: bool) -> Proposal:
        sign = 1 if long else -1
        return Proposal(
            side=LONG if long else SHORT,
            entry_price=close,
            stop_loss=close - sign * distance * self.stop_atr,
            take_profit=close + sign * distance * self.target_atr,
            max_hold=self.max_hold,
            reason=(
                f"EMA{self.fast} crossed {'above' if long else 'below'} "
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
