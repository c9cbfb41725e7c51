"""One signal as its page shows it: every guard's verdict, the transitions and the paper and shadow trades."""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Prefetch,
)

from markets.admin_format import quote_currency
from shadow.models import ShadowTrade
from signals.domain.guards import GUARDS
from signals.models import (
    BookStrategy,
    GuardDecision,
    PaperTrade,
    Signal,
    SignalTransition,
)


@dataclass(frozen=True, slots=True)
class DecisionLine:
    """One guard's verdict on a signal, as the configuration version that made it saw it.

    ``unit`` says how observed value and threshold read ("positions", "minutes",
    "stop-outs", "quote", "%", "ratio", "timeframes"; "" when the guard kind is unknown),
    ``blocks_when`` the comparison of observed with threshold that blocks. ``config_id``
    is the guard configuration the version was frozen from, ``None`` once it is deleted.
    """

    guard: str
    kind: str
    config_version: int | None
    config_id: int | None
    blocked: bool
    observed_value: Decimal | None
    threshold: Decimal | None
    unit: str
    blocks_when: str
    reason: str


@dataclass(frozen=True, slots=True)
class SignalDetail:
    """Everything recorded about one signal: the strategy version that made it, every
    guard's verdict, its transition log and its paper and shadow trades (if any). Money
    and prices are in ``quote_currency``."""

    signal: Signal
    quote_currency: str
    strategy: BookStrategy | None
    decisions: list[DecisionLine]
    transitions: list[SignalTransition]
    paper_trade: PaperTrade | None
    shadow_trade: ShadowTrade | None


def signal_detail(*, signal_id: int) -> SignalDetail | None:
    """The signal ``signal_id`` with all it was decided on, or ``None``; three queries
    whatever the number of decisions and transitions."""
    signal = (
        Signal.objects.select_related(
            "book", "book_strategy", "strategy_config", "paper_trade", "shadow_trade"
        )
        .prefetch_related(
            Prefetch(
                "decisions",
                queryset=GuardDecision.objects.select_related("book_guard").order_by("guard"),
            ),
            Prefetch("transitions", queryset=SignalTransition.objects.order_by("id")),
        )
        .filter(pk=signal_id)
        .first()
    )
    if signal is None:
        return None
    return SignalDetail(
        signal=signal,
        quote_currency=quote_currency(signal.symbol),
        strategy=signal.book_strategy,
        decisions=[_decision_line(decision) for decision in signal.decisions.all()],
        transitions=list(signal.transitions.all()),
        paper_trade=getattr(signal, "paper_trade", None),
        shadow_trade=getattr(signal, "shadow_trade", None),
    )


def _decision_line(decision: GuardDecision) -> DecisionLine:
    frozen = decision.book_guard
    kind = frozen.kind if frozen is not None else ""
    # Decisions from before books froze their guards name the guard after its kind.
    guard_class = GUARDS.get(kind) or GUARDS.get(decision.guard)
    return DecisionLine(
        guard=decision.guard,
        kind=kind,
        config_version=frozen.config_version if frozen is not None else None,
        config_id=frozen.config_id if frozen is not None else None,
        blocked=decision.verdict == GuardDecision.Verdict.BLOCK,
        observed_value=decision.observed_value,
        threshold=decision.threshold,
        unit=getattr(guard_class, "unit", ""),
        blocks_when=getattr(guard_class, "blocks_when", ""),
        reason=decision.reason,
    )
