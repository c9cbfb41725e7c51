"""The MACD crossover: follow momentum when the MACD line crosses its signal line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from markets.bars import CandleArrays
from signals.domain.indicators import IndicatorState, macd, wilder_atr
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
class MacdCrossover:
    """Long when the MACD line crosses above its signal line, short when it crosses below.

    The MACD line is EMA(``fast``) - EMA(``slow``) of the closes, the signal line its
    EMA of period ``signal``; a cross is the histogram (line - signal) going from <= 0 on
    the previous candle to > 0 on this one (long), or from >= 0 to < 0 (short). With
    ``zero_line_filter`` a long needs the MACD line below zero and a short above it (a
    turn after a move, not a cross in the middle of one). Entry at the close; stop and
    target sit ``stop_atr`` and ``target_atr`` Wilder ATRs from it. Nothing is proposed
    before the signal line of both candles and the ATR exist.
    """

    kind: ClassVar[str] = "macd_crossover"

    fast: int = 12
    slow: int = 26
    signal: int = 9
    atr_period: int = 14
    stop_atr: float = 1.5
    target_atr: float = 3.0
    max_hold: int = 24
    allow_short: bool = True
    zero_line_filter: bool = False

    def __post_init__(self) -> None:
        require(1 <= self.fast < self.slow, self.kind, "1 <= fast < slow")
        require(self.signal >= 1, self.kind, "signal >= 1")
        require(self.atr_period >= 1, self.kind, "atr_period >= 1")
        require(positive(self.stop_atr), self.kind, "a positive stop_atr")
        require(positive(self.target_atr), self.kind, "a positive target_atr")
        require(self.max_hold >= 1, self.kind, "max_hold >= 1")

    def scan(self, candles: CandleArrays, state: IndicatorState | None) -> Scan:
        state = state or {}
        if not len(candles):
            return Scan(index=[], proposals=[], state=state)
        close = candles.close
        line, signal, macd_state = macd(close, self.fast, self.slow, self.signal, state.get("macd"))
        atr, atr_state = wilder_atr(
            candles.high, candles.low, close, self.atr_period, state.get("atr")
        )
        histogram = line - signal
        before = preceding(histogram, state.get("histogram"))
        with np.errstate(invalid="ignore"):
            up = (before <= 0) & (histogram > 0)
            down = (before >= 0) & (histogram < 0) & self.allow_short
            if self.zero_line_filter:
                up &= line < 0
                down &= line > 0
            fired = (up | down) & (atr > 0)
        index = np.flatnonzero(fired).tolist()
        proposals = [
            self._proposal(
                bool(up[i]), float(close[i]), float(line[i]), float(signal[i]), float(atr[i])
            )
            for i in index
        ]
        new_state = {"macd": macd_state, "atr": atr_state, "histogram": last(histogram)}
        return Scan(index=index, proposals=proposals, state=new_state)

    def _proposal(
        self, long: bool, close: float, line: float, signal: float, atr: float
    ) -> Proposal:
        return atr_proposal(
            long=long,
            close=close,
            atr=atr,
            stop_atr=self.stop_atr,
            target_atr=self.target_atr,
            max_hold=self.max_hold,
            reason=(
                f"MACD({self.fast},{self.slow}) {line:.6g} crossed "
                f"{'above' if long else 'below'} its signal line ({self.signal}) "
                f"{signal:.6g}; ATR{self.atr_period}={atr:.6g}"
            ),
        )
