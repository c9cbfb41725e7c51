"""The EMA crossover: follow the trend when a fast EMA crosses a slow one."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from markets.bars import CandleArrays
from signals.domain.indicators import IndicatorState, ema, wilder_atr
from signals.domain.strategies.base import Proposal, Scan, atr_proposal, positive


@dataclass(frozen=True, slots=True)
class EmaCrossover:
    """Long when the fast EMA crosses above the slow one (fast - slow was <= 0 on the
    previous candle and is > 0 on this one), short when it crosses below.

    Entry at the close; stop and target sit ``stop_atr`` and ``target_atr`` Wilder ATRs
    from it. Nothing is proposed before both EMAs and the ATR exist.
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
        if not (positive(self.stop_atr) and positive(self.target_atr)):
            raise ValueError("ema_crossover needs positive, finite stop_atr and target_atr")

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
        return atr_proposal(
            long=long,
            close=close,
            atr=distance,
            stop_atr=self.stop_atr,
            target_atr=self.target_atr,
            max_hold=self.max_hold,
            reason=(
                f"EMA{self.fast} crossed {'above' if long else 'below'} "
                f"EMA{self.slow}; ATR{self.atr_period}={distance:.6g}"
            ),
        )
