"""Every row a book holds, keyed by what identifies a signal, so two books can be compared."""

from __future__ import annotations

from typing import Any

from shadow.models import ShadowTrade
from shadow.persistence import OUTCOME_COLUMNS
from signals.models import EquityPoint, GuardDecision, PaperTrade, Signal, SignalTransition


def book_rows(book) -> dict[str, Any]:
    """Signals, transitions, decisions, paper and shadow trades and equity of ``book``,
    without ids and wall-clock times."""
    signals = Signal.objects.filter(book=book)
    key = {s.pk: (s.strategy_config_id, s.symbol, s.candle_time, s.side) for s in signals}
    transitions: dict = {}
    for t in SignalTransition.objects.filter(signal__book=book).order_by("id"):
        transitions.setdefault(key[t.signal_id], []).append(
            (t.name, t.from_state, t.to_state, t.simulated_at, t.payload)
        )
    decisions: dict = {}
    for d in GuardDecision.objects.filter(signal__book=book).order_by("guard"):
        decisions.setdefault(key[d.signal_id], []).append(
            (d.guard, d.verdict, d.observed_value, d.threshold, d.reason)
        )
    return {
        "signals": sorted(
            (
                key[s.pk],
                s.state,
                s.entry_price,
                s.stop_loss,
                s.take_profit,
                s.max_hold_candles,
                s.reason,
                s.decided_at,
            )
            for s in signals
        ),
        "transitions": transitions,
        "decisions": decisions,
        "paper": {
            key[p["signal_id"]]: tuple(p[f] for f in OUTCOME_COLUMNS)
            for p in PaperTrade.objects.filter(book=book).values("signal_id", *OUTCOME_COLUMNS)
        },
        "shadow": {
            key[s["signal_id"]]: (s["group"], *(s[f] for f in OUTCOME_COLUMNS))
            for s in ShadowTrade.objects.filter(book=book).values(
                "signal_id", "group", *OUTCOME_COLUMNS
            )
        },
        "equity": list(
            EquityPoint.objects.filter(book=book)
            .order_by("time", "id")
            .values_list("time", "equity")
        ),
    }
