"""Risk guards: pure checks of a proposed signal against a snapshot of the book.

Every guard of a book is evaluated on every signal (no short-circuit). Each returns a
``Verdict`` with the value it observed and the threshold it compared it with, so other
thresholds can be replayed later from the stored decisions alone. A guard never reads
the database: the engine hands it a ``Snapshot`` it computed from its own state.

One module per kind; adding a guard is a new module and one line in ``GUARDS`` (a
``Registry``, the same mechanism as the strategies').
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from signals.domain.guards.base import (
    STOP_OUT_REASONS,
    ClosedTrade,
    Guard,
    Snapshot,
    Verdict,
)
from signals.domain.guards.cooldown_after_close import CooldownAfterClose
from signals.domain.guards.cooldown_after_stop import CooldownAfterStop
from signals.domain.guards.daily_loss_limit import DailyLossLimit
from signals.domain.guards.duplicate_position import DuplicatePosition
from signals.domain.guards.liquidity_floor import LiquidityFloor
from signals.domain.guards.low_profit_markets import LowProfitMarkets
from signals.domain.guards.max_drawdown import MaxDrawdown
from signals.domain.guards.max_open_per_symbol import MaxOpenPerSymbol
from signals.domain.guards.max_open_positions import MaxOpenPositions
from signals.domain.guards.min_reward_risk import MinRewardRisk
from signals.domain.guards.stale_data import StaleData
from signals.domain.guards.stoploss_guard import StoplossGuard
from signals.domain.guards.volatility_ceiling import VolatilityCeiling
from signals.domain.registry import Registry
from signals.domain.strategies import Proposal

__all__ = [
    "GUARDS",
    "STOP_OUT_REASONS",
    "ClosedTrade",
    "CooldownAfterClose",
    "CooldownAfterStop",
    "DailyLossLimit",
    "DuplicatePosition",
    "Guard",
    "LiquidityFloor",
    "LowProfitMarkets",
    "MaxDrawdown",
    "MaxOpenPerSymbol",
    "MaxOpenPositions",
    "MinRewardRisk",
    "Snapshot",
    "StaleData",
    "StoplossGuard",
    "Verdict",
    "VolatilityCeiling",
    "build_guard",
    "evaluate_guards",
    "validate_guard_config",
]

GUARDS: Registry[Guard] = Registry(
    "guard",
    [
        MaxOpenPositions,
        MaxOpenPerSymbol,
        DuplicatePosition,
        CooldownAfterStop,
        CooldownAfterClose,
        StoplossGuard,
        MaxDrawdown,
        DailyLossLimit,
        LowProfitMarkets,
        VolatilityCeiling,
        LiquidityFloor,
        StaleData,
        MinRewardRisk,
    ],
)


def build_guard(kind: str, params: Mapping[str, Any]) -> Guard:
    """The guard ``kind`` with ``params``; ``ValueError`` naming what is wrong otherwise."""
    return GUARDS.build(kind, params)


def validate_guard_config(kind: str, params: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` if ``kind`` and ``params`` do not make a guard."""
    GUARDS.validate(kind, params)


def evaluate_guards(
    guards: Sequence[Guard], proposal: Proposal, snapshot: Snapshot
) -> list[Verdict]:
    """Every guard's verdict, in order; none is skipped because another blocked."""
    return [guard.check(proposal, snapshot) for guard in guards]
