"""Bollinger-band mean reversion: fade a move outside the bands once price comes back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from markets.bars import CandleArrays
from signals.domain.fills import LONG, SHORT
from signals.domain.indicators import IndicatorState, rolling_mean_std, wilder_atr
from signals.domain.strategies.base import (
    Proposal,
    Scan,
    last,
    positive,
    preceding,
    require,
)


@dataclass(frozen=True, slots=True)
class BollingerReversion:
    """Long when the close comes back inside the lower Bollinger band, short when it comes
    back inside the upper one, betting on a return to the mean.

    The bands of a candle are the mean of the last ``period`` closes (the middle band),
    plus and minus ``width`` population standard deviations of those closes. Long on a
    candle whose close is above its lower band when the previous close was below the
    previous candle's lower band; short mirrored at the upper band. Entry at the close;
    the stop sits ``stop_atr`` Wilder ATRs beyond it; the target is this candle's middle
    band. A close already at or past the middle band leaves nothing to win: no proposal.
    Nothing is proposed before the bands of both candles and the ATR exist.
    """

    kind: ClassVar[str] = "bollinger_reversion"

    period: int = 20
    width: float = 2.0
    atr_period: int = 14
    stop_atr: float = 1.5
    max_hold: int = 24
    allow_short: bool = True

    def __post_init__(self) -> None:
        require(self.period >= 2, self.kind, "period >= 2")
        require(positive(self.width), self.kind, "a positive width")
        require(self.atr_period >= 1, self.kind, "atr_period >= 1")
        require(positive(self.stop_atr), self.kind, "a positive stop_atr")
        require(self.max_hold >= 1, self.kind, "max_hold >= 1")

    def scan(self, candles: CandleArrays, state: IndicatorState | None) -> Scan:
        state = state or {}
        if not len(candles):
            return Scan(index=[], proposals=[], state=state)
        close = candles.close
        middle, deviation, bands_state = rolling_mean_std(close, self.period, state.get("bands"))
        upper = middle + self.width * deviation
        lower = middle - self.width * deviation
        atr, atr_state = wilder_atr(
            candles.high, candles.low, close, self.atr_period, state.get("atr")
        )
        close_before = preceding(close, state.get("close"))
        with np.errstate(invalid="ignore"):
            up = (close_before < preceding(lower, state.get("lower"))) & (lower < close)
            up &= close < middle
            down = (close_before > preceding(upper, state.get("upper"))) & (close < upper)
            down &= (middle < close) & self.allow_short
            fired = (up | down) & (atr > 0)
        index = np.flatnonzero(fired).tolist()
        proposals = [
            self._proposal(
                bool(up[i]),
                float(close[i]),
                float(lower[i] if up[i] else upper[i]),
                float(middle[i]),
                float(atr[i]),
            )
            for i in index
        ]
        new_state = {
            "bands": bands_state,
            "atr": atr_state,
            "close": last(close),
            "lower": last(lower),
            "upper": last(upper),
        }
        return Scan(index=index, proposals=proposals, state=new_state)

    def _proposal(
        self, long: bool, close: float, band: float, middle: float, atr: float
    ) -> Proposal:
        sign = 1 if long else -1
        which = "lower" if long else "upper"
        return Proposal(
            side=LONG if long else SHORT,
            entry_price=close,
            stop_loss=close - sign * atr * self.stop_atr,
            take_profit=middle,
            max_hold=self.max_hold,
            reason=(
                f"Close {close:.6g} back {'above' if long else 'below'} the {which} "
                f"Bollinger band {band:.6g} ({self.period}, {self.width:g} SD); "
                f"target the middle band {middle:.6g}; ATR{self.atr_period}={atr:.6g}"
            ),
        )
