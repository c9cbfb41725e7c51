"""What every strategy shares: the proposal it makes, the scan it returns, its protocol,
and the few steps that are the same in every scan."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from markets.bars import CandleArrays
from signals.domain.fills import LONG, SHORT
from signals.domain.indicators import IndicatorState


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
    """Computes its indicators once over ``candles`` (the candles closed since the scan
    that returned ``state``; ``None`` at the start of the history) and proposes trades on
    candle closes, each using no later candle. The returned state is plain JSON with no
    NaN, and resuming from it gives exactly what one scan of all the candles gives."""

    kind: ClassVar[str]

    def scan(self, candles: CandleArrays, state: IndicatorState | None) -> Scan: ...


def require(condition: bool, kind: str, rule: str) -> None:
    """Refuse a parameter value: ``ValueError("<kind> needs <rule>")`` unless ``condition``."""
    if not condition:
        raise ValueError(f"{kind} needs {rule}")


def positive(value: float) -> bool:
    """A positive, finite number (JSON can spell NaN and Infinity)."""
    return 0 < value < math.inf


def preceding(values: np.ndarray, carried: float | None) -> np.ndarray:
    """Each candle's previous value: ``carried`` (the last value of the previous scan,
    ``None`` when there was none) for the first candle."""
    return np.concatenate(([math.nan if carried is None else carried], values[:-1]))


def last(values: np.ndarray) -> float | None:
    """The last of ``values`` as the state keeps it: ``None`` for NaN."""
    value = float(values[-1])
    return None if math.isnan(value) else value


def atr_proposal(
    *,
    long: bool,
    close: float,
    atr: float,
    stop_atr: float,
    target_atr: float,
    max_hold: int,
    reason: str,
) -> Proposal:
    """Entry at ``close``, stop ``stop_atr`` ATRs against the trade, target ``target_atr``
    ATRs in its favour."""
    sign = 1 if long else -1
    return Proposal(
        side=LONG if long else SHORT,
        entry_price=close,
        stop_loss=close - sign * atr * stop_atr,
        take_profit=close + sign * atr * target_atr,
        max_hold=max_hold,
        reason=reason,
    )
