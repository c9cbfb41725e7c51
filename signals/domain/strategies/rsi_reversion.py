"""RSI mean reversion: buy when an oversold market turns, sell when an overbought one does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from markets.bars import CandleArrays
from signals.domain.indicators import IndicatorState, wilder_atr, wilder_rsi
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
class RsiReversion:
    """Long when Wilder's RSI climbs back out of oversold, short when it falls back out
    of overbought.

    Long on a candle whose RSI is at or above ``oversold`` when the previous candle's
    RSI was below it; short on a candle whose RSI is at or below ``overbought`` when the
    previous one was above it. Entry at the close; stop and target sit ``stop_atr`` and
    ``target_atr`` Wilder ATRs from it. Nothing is proposed before the RSI of both
    candles (``period + 2`` candles of history) and the ATR exist.
    """

    kind: ClassVar[str] = "rsi_reversion"

    period: int = 14
    oversold: float = 30.0
    overbought: float = 70.0
    atr_period: int = 14
    stop_atr: float = 1.5
    target_atr: float = 3.0
    max_hold: int = 24
    allow_short: bool = True

    def __post_init__(self) -> None:
        require(self.period >= 1, self.kind, "period >= 1")
        require(
            0 < self.oversold < self.overbought < 100, self.kind, "0 < oversold < overbought < 100"
        )
        require(self.atr_period >= 1, self.kind, "atr_period >= 1")
        require(positive(self.stop_atr), self.kind, "a positive stop_atr")
        require(positive(self.target_atr), self.kind, "a positive target_atr")
        require(self.max_hold >= 1, self.kind, "max_hold >= 1")

    def scan(self, candles: CandleArrays, state: IndicatorState | None) -> Scan:
        state = state or {}
        if not len(candles):
            return Scan(index=[], proposals=[], state=state)
        close = candles.close
        rsi, rsi_state = wilder_rsi(close, self.period, state.get("rsi"))
        atr, atr_state = wilder_atr(
            candles.high, candles.low, close, self.atr_period, state.get("atr")
        )
        before = preceding(rsi, state.get("value"))
        with np.errstate(invalid="ignore"):
            up = (before < self.oversold) & (rsi >= self.oversold)
            down = (before > self.overbought) & (rsi <= self.overbought) & self.allow_short
            fired = (up | down) & (atr > 0)
        index = np.flatnonzero(fired).tolist()
        proposals = [
            self._proposal(
                bool(up[i]), float(close[i]), float(before[i]), float(rsi[i]), float(atr[i])
            )
            for i in index
        ]
        new_state = {"rsi": rsi_state, "atr": atr_state, "value": last(rsi)}
        return Scan(index=index, proposals=proposals, state=new_state)

    def _proposal(
        self, long: bool, close: float, before: float, rsi: float, atr: float
    ) -> Proposal:
        level = self.oversold if long else self.overbought
        return atr_proposal(
            long=long,
            close=close,
            atr=atr,
            stop_atr=self.stop_atr,
            target_atr=self.target_atr,
            max_hold=self.max_hold,
            reason=(
                f"RSI{self.period} back {'above' if long else 'below'} {level:g} at "
                f"{rsi:.4g} (was {before:.4g}); ATR{self.atr_period}={atr:.6g}"
            ),
        )
