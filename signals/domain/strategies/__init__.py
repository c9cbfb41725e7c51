"""Strategies: pure, vectorised functions of closed candles that propose trades.

A strategy computes its indicators once over a whole candle array (``scan``) and
returns every proposal it makes, each on the close of one candle, using no value after
that candle. It also returns its indicator state, so the next call (the live driver's
next run, with the candles that closed since) continues exactly where this one stopped:
a live run and a replay of the same candles compute the same values (ADR 0008).

Each strategy is a small frozen dataclass in a module of its own, with a ``kind`` name;
its parameters are the dataclass fields, checked by ``build_strategy``. Adding one is a
new module and one line in ``STRATEGIES`` (a ``Registry``, the same mechanism as the
guards'). Prices are floats in here; the drivers store them as ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from signals.domain.registry import Registry
from signals.domain.strategies.base import Proposal, Scan, Strategy
from signals.domain.strategies.bollinger_reversion import BollingerReversion
from signals.domain.strategies.donchian_breakout import DonchianBreakout
from signals.domain.strategies.ema_crossover import EmaCrossover
from signals.domain.strategies.macd_crossover import MacdCrossover
from signals.domain.strategies.rsi_reversion import RsiReversion

__all__ = [
    "STRATEGIES",
    "BollingerReversion",
    "DonchianBreakout",
    "EmaCrossover",
    "MacdCrossover",
    "Proposal",
    "RsiReversion",
    "Scan",
    "Strategy",
    "build_strategy",
    "validate_strategy_config",
]

STRATEGIES: Registry[Strategy] = Registry(
    "strategy",
    [EmaCrossover, MacdCrossover, DonchianBreakout, BollingerReversion, RsiReversion],
)


def build_strategy(kind: str, params: Mapping[str, Any]) -> Strategy:
    """The strategy ``kind`` with ``params``; ``ValueError`` naming what is wrong otherwise."""
    return STRATEGIES.build(kind, params)


def validate_strategy_config(kind: str, params: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` if ``kind`` and ``params`` do not make a strategy."""
    STRATEGIES.validate(kind, params)
