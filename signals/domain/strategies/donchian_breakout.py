"""The Donchian breakout: follow a close beyond the range of the last n candles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from markets.bars import CandleArrays
from signals.domain.indicators import IndicatorState, donchian, wilder_atr
from signals.domain.strategies.base import (
    Proposal,
    Scan,
    atr_proposal,
    last,
    positive,
    preceding,
    require,
)


@dataclass(frozen=True, slots=True)
class DonchianBreakout:
    """Long when the close breaks above the highest high of the previous ``period``
    candles, short when it breaks below their lowest low (the channel of a candle
    excludes the candle itself).

    Only the first close of a breakout fires: the previous close must have been inside
    its own channel (at or below its highest high for a long), so a run of new highs
    proposes once, not on every candle. Entry at the close; stop and target sit
    ``stop_atr`` and ``target_atr`` Wilder ATRs from it. Nothing is proposed before the
    channels of both candles (``period + 1`` candles of history) and the ATR exist.
    """

    kind: ClassVar[str] = "donchian_breakout"

    period: int = 20
    atr_period: int = 14
    stop_atr: float = 2.0
    target_atr: float = 4.0
    max_hold: int = 24
    allow_short: bool = True

    def __post_init__(self) -> None:
        require(self.period >= 1, self.kind, "period >= 1")
        require(self.atr_period >= 1, self.kind, "atr_period >= 1")
        require(positive(self.stop_atr), self.kind, "a positive stop_atr")
        require(positive(self.target_atr), self.kind, "a positive target_atr")
        require(self.max_hold >= 1, self.kind, "max_hold >= 1")

    def scan(self, candles: CandleArrays, state: IndicatorState | None) -> Scan:
        state = state or {}
        if not len(candles):
            return Scan(index=[], proposals=[], state=state)
        close = candles.close
        upper, lower, channel_state = donchian(
            candles.high, candles.low, self.period, state.get("channel")
        )
        atr, atr_state = wilder_atr(
            candles.high, candles.low, close, self.atr_period, state.get("atr")
        )
        close_before = preceding(close, state.get("close"))
        with np.errstate(invalid="ignore"):
            up = (close > upper) & (close_before <= preceding(upper, state.get("upper")))
            down = (close < lower) & (close_before >= preceding(lower, state.get("lower")))
            down &= self.allow_short
            fired = (up | down) & (atr > 0)
        index = np.flatnonzero(fired).tolist()
        proposals = [
            self._proposal(
                bool(up[i]), float(close[i]), float(upper[i] if up[i] else lower[i]), float(atr[i])
            )
            for i in index
        ]
        new_state = {
            "channel": channel_state,
            "atr": atr_state,
            "close": last(close),
            "upper": last(upper),
            "lower": last(lower),
        }
        return Scan(index=index, proposals=proposals, state=new_state)

    def _proposal(self, long: bool, close: float, edge: float, atr: float) -> Proposal:
        return atr_proposal(
            long=long,
            close=close,
            atr=atr,
            stop_atr=self.stop_atr,
            target_atr=self.target_atr,
            max_hold=self.max_hold,
            reason=(
                f"Close {close:.6g} broke {'above' if long else 'below'} the "
                f"{self.period}-candle {'high' if long else 'low'} {edge:.6g}; "
                f"ATR{self.atr_period}={atr:.6g}"
            ),
        )
