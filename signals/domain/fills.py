"""The fill model shared by paper trading and the shadow engine.

A signal fires on the close of candle t with absolute stop and target prices. The
trade enters at the open of the next candle and exits at the first candle (the entry
candle included) where the stop or the target is touched; the stop wins when both
are; a candle opening beyond either exits at that open; otherwise it exits at the
close of the last candle of the max hold. Slippage moves every fill against the
trade; fees are paid on both sides. A trade whose candles have not arrived stays
open: nothing is closed at a price the data does not contain.

All arithmetic is ``Decimal``, so outcomes stored in the database are exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from markets.bars import Bar

LONG = "long"
SHORT = "short"
_BPS = Decimal(10_000)
_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class FillCosts:
    """Costs and size: slippage in basis points per fill, fee rate per side, quote notional."""

    slippage_bps: Decimal
    fee_rate: Decimal
    notional: Decimal

    def __post_init__(self) -> None:
        if self.slippage_bps < 0 or self.fee_rate < 0:
            raise ValueError("slippage and fees cannot be negative")
        if self.notional <= 0:
            raise ValueError("the notional per trade must be positive")


@dataclass(frozen=True, slots=True)
class TradePlan:
    """What the signal fixed on its candle's close."""

    side: str
    stop: Decimal
    target: Decimal
    max_hold: int

    def __post_init__(self) -> None:
        if self.side not in (LONG, SHORT):
            raise ValueError(f"side must be {LONG!r} or {SHORT!r}, not {self.side!r}")
        if self.max_hold < 1:
            raise ValueError("max hold must be at least one candle")


@dataclass(frozen=True, slots=True)
class Outcome:
    """The simulated trade so far. ``entry_time is None``: waiting for the entry candle;
    ``exit_time is None``: still open. P&L fields are set once the trade is closed."""

    entry_time: datetime | None = None
    entry_price: Decimal | None = None
    quantity: Decimal | None = None
    exit_time: datetime | None = None
    exit_price: Decimal | None = None
    exit_reason: str = ""
    fees: Decimal | None = None
    pnl: Decimal | None = None
    return_pct: Decimal | None = None
    r_multiple: Decimal | None = None
    mae: Decimal | None = None
    mfe: Decimal | None = None

    @property
    def status(self) -> str:
        if self.entry_time is None:
            return "pending"
        return "open" if self.exit_time is None else "closed"


def simulate(plan: TradePlan, bars: Sequence[Bar], costs: FillCosts) -> Outcome:
    """Run ``plan`` over ``bars``: the candles after the signal candle, oldest first.

    Deterministic and free of lookahead: the outcome depends only on the bars given,
    so calling it again with more bars never changes a closed result.
    """
    if not bars:
        return Outcome()
    long = plan.side == LONG
    slip = costs.slippage_bps / _BPS

    def fill(price: Decimal, entering: bool) -> Decimal:
        # Slippage always hurts: buying costs more, selling gets less.
        buying = long == entering
        return price * (1 + slip) if buying else price * (1 - slip)

    def beyond_stop(price: Decimal) -> bool:
        return price <= plan.stop if long else price >= plan.stop

    def beyond_target(price: Decimal) -> bool:
        return price >= plan.target if long else price <= plan.target

    entry_bar = bars[0]
    entry_price = fill(entry_bar.open, entering=True)
    quantity = costs.notional / entry_price
    worst = best = entry_bar.open

    exit_time: datetime | None = None
    exit_raw: Decimal | None = None
    reason = ""
    for index, bar in enumerate(bars[: plan.max_hold]):
        if beyond_stop(bar.open):
            exit_time, exit_raw, reason = bar.open_time, bar.open, "gap"
        elif beyond_target(bar.open):
            exit_time, exit_raw, reason = bar.open_time, bar.open, "target"
        elif beyond_stop(bar.low if long else bar.high):
            exit_time, exit_raw, reason = bar.open_time, plan.stop, "stop"
        elif beyond_target(bar.high if long else bar.low):
            exit_time, exit_raw, reason = bar.open_time, plan.target, "target"
        elif index == plan.max_hold - 1:
            exit_time, exit_raw, reason = bar.open_time, bar.close, "timeout"
        if exit_raw is not None:
            # The trade ended at the exit price inside this bar: it saw no further.
            worst = _worse(worst, exit_raw, long)
            best = _better(best, exit_raw, long)
            break
        worst = _worse(worst, bar.low if long else bar.high, long)
        best = _better(best, bar.high if long else bar.low, long)

    mae = _excursion(worst, entry_bar.open, long)
    mfe = _excursion(best, entry_bar.open, long)
    if exit_raw is None or exit_time is None:
        return Outcome(
            entry_time=entry_bar.open_time,
            entry_price=entry_price,
            quantity=quantity,
            mae=mae,
            mfe=mfe,
        )

    exit_price = fill(exit_raw, entering=False)
    direction = 1 if long else -1
    fees = costs.fee_rate * quantity * (entry_price + exit_price)
    pnl = direction * (exit_price - entry_price) * quantity - fees
    risk = abs(entry_price - plan.stop) * quantity
    return Outcome(
        entry_time=entry_bar.open_time,
        entry_price=entry_price,
        quantity=quantity,
        exit_time=exit_time,
        exit_price=exit_price,
        exit_reason=reason,
        fees=fees,
        pnl=pnl,
        return_pct=pnl / costs.notional * _HUNDRED,
        r_multiple=pnl / risk if risk > 0 else None,
        mae=mae,
        mfe=mfe,
    )


def _worse(current: Decimal, price: Decimal, long: bool) -> Decimal:
    return min(current, price) if long else max(current, price)


def _better(current: Decimal, price: Decimal, long: bool) -> Decimal:
    return max(current, price) if long else min(current, price)


def _excursion(price: Decimal, reference: Decimal, long: bool) -> Decimal:
    """Move from ``reference`` to ``price`` in % of ``reference``, positive = in the trade's favour."""
    move = (price - reference) / reference * _HUNDRED
    return move if long else -move
