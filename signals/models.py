"""Books, strategy and guard configuration, signals with their state machine, decisions
and paper trades.

Models hold tables and transitions only; the work is in ``signals.services``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from markets.models import decimal_field


class Book(models.Model):
    """Where signals, trades and shadow trades are kept apart: the live book or a named run."""

    class Kind(models.TextChoices):
        LIVE = "live", "live"
        REPLAY = "replay", "replay"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class StrategyConfig(models.Model):
    """An enabled strategy on one market: kind (a registry name) and its parameters."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=50)
    params = models.JSONField(default=dict, blank=True)
    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=8)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from markets.bars import timeframe_delta
        from signals.domain.strategies import validate_strategy_config

        try:
            validate_strategy_config(self.kind, self.params)
        except ValueError as error:
            raise ValidationError({"params": str(error)}) from None
        try:
            timeframe_delta(self.timeframe)
        except ValueError as error:
            raise ValidationError({"timeframe": str(error)}) from None


class GuardConfig(models.Model):
    """A risk guard applied to every signal: kind (a registry name) and its parameters."""

    kind = models.CharField(max_length=50, unique=True)
    params = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind"]

    def __str__(self) -> str:
        return self.kind

    def clean(self) -> None:
        from signals.domain.guards import validate_guard_config

        try:
            validate_guard_config(self.kind, self.params)
        except ValueError as error:
            raise ValidationError({"params": str(error)}) from None


class GenerationCursor(models.Model):
    """The last candle a strategy configuration has been run on, per book."""

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="+")
    strategy_config = models.ForeignKey(StrategyConfig, on_delete=models.CASCADE, related_name="+")
    last_candle_time = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["book", "strategy_config"], name="cursor_unique")
        ]

    def __str__(self) -> str:
        return f"{self.strategy_config_id} through {self.last_candle_time}"


class SignalState(models.TextChoices):
    GENERATED = "generated", "generated"
    APPROVED = "approved", "approved"
    BLOCKED = "blocked", "blocked"
    REJECTED = "rejected", "rejected"
    EXECUTED = "executed", "executed"
    FAILED = "failed", "failed"
    EXPIRED = "expired", "expired"
    CLOSED = "closed", "closed"


class Side(models.TextChoices):
    LONG = "long", "long"
    SHORT = "short", "short"


class Signal(ConcurrentTransitionMixin, models.Model):
    """A strategy's proposal on the close of one candle, and where it is in the pipeline.

    ``state`` is protected: it changes only through the transition methods, which
    ``signals.services.signal_transition`` calls inside a transaction together with the
    ``SignalTransition`` log row.
    """

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="signals")
    strategy_config = models.ForeignKey(
        StrategyConfig, on_delete=models.PROTECT, related_name="signals"
    )
    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=8)
    candle_time = models.DateTimeField(help_text="Open time of the candle the signal closed on.")
    side = models.CharField(max_length=8, choices=Side.choices)
    entry_price = decimal_field(help_text="Reference price: the candle's close.")
    stop_loss = decimal_field()
    take_profit = decimal_field()
    max_hold_candles = models.PositiveIntegerField()
    reason = models.TextField(blank=True)
    state = FSMField(default=SignalState.GENERATED, choices=SignalState.choices, protected=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["book", "candle_time", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["book", "strategy_config", "symbol", "timeframe", "candle_time", "side"],
                name="signal_unique_per_candle",
            )
        ]
        indexes = [models.Index(fields=["book", "state"])]

    def __str__(self) -> str:
        return f"{self.symbol} {self.side} @ {self.candle_time:%Y-%m-%d %H:%M} ({self.state})"

    @transition(field=state, source=SignalState.GENERATED, target=SignalState.APPROVED)
    def approve(self) -> None:
        """All guards passed."""

    @transition(field=state, source=SignalState.GENERATED, target=SignalState.BLOCKED)
    def block(self) -> None:
        """At least one guard blocked it."""

    @transition(field=state, source=SignalState.GENERATED, target=SignalState.REJECTED)
    def reject(self) -> None:
        """Invalid input: bad prices or a stale candle."""

    @transition(field=state, source=SignalState.APPROVED, target=SignalState.EXECUTED)
    def execute(self) -> None:
        """The entry was filled."""

    @transition(field=state, source=SignalState.APPROVED, target=SignalState.FAILED)
    def fail(self) -> None:
        """The entry could not be placed."""

    @transition(field=state, source=SignalState.APPROVED, target=SignalState.EXPIRED)
    def expire(self) -> None:
        """No entry candle arrived in time."""

    @transition(field=state, source=SignalState.EXECUTED, target=SignalState.CLOSED)
    def close(self) -> None:
        """The trade exited."""


class SignalTransition(models.Model):
    """Append-only log of every state change (the seed's "signal bus")."""

    signal = models.ForeignKey(Signal, on_delete=models.CASCADE, related_name="transitions")
    name = models.CharField(max_length=32)
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    actor = models.CharField(max_length=100)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.signal_id}: {self.from_state} -> {self.to_state}"


class GuardDecision(models.Model):
    """One guard's verdict on one signal, with what it saw and what it compared it with."""

    class Verdict(models.TextChoices):
        PASS = "pass", "pass"
        BLOCK = "block", "block"

    signal = models.ForeignKey(Signal, on_delete=models.CASCADE, related_name="decisions")
    guard = models.CharField(max_length=50)
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    reason = models.TextField()
    observed_value = decimal_field(null=True, blank=True)
    threshold = decimal_field(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["signal", "guard"]
        constraints = [
            models.UniqueConstraint(fields=["signal", "guard"], name="decision_unique_per_guard")
        ]

    def __str__(self) -> str:
        return f"{self.guard}: {self.verdict}"


class SimulatedTrade(models.Model):
    """Fields of a trade run through the fill model (paper and shadow alike)."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending entry"
        OPEN = "open", "open"
        CLOSED = "closed", "closed"

    class ExitReason(models.TextChoices):
        STOP = "stop", "stop"
        TARGET = "target", "target"
        TIMEOUT = "timeout", "timeout"
        GAP = "gap", "gap"

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="+")
    side = models.CharField(max_length=8, choices=Side.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    quantity = decimal_field(null=True, blank=True)
    entry_time = models.DateTimeField(null=True, blank=True)
    entry_price = decimal_field(null=True, blank=True)
    exit_time = models.DateTimeField(null=True, blank=True)
    exit_price = decimal_field(null=True, blank=True)
    exit_reason = models.CharField(max_length=8, choices=ExitReason.choices, blank=True)
    fees = decimal_field(null=True, blank=True)
    pnl = decimal_field(null=True, blank=True, help_text="Quote currency, net.")
    return_pct = decimal_field(null=True, blank=True)
    r_multiple = decimal_field(null=True, blank=True)
    mae = decimal_field(null=True, blank=True, help_text="Worst excursion, %.")
    mfe = decimal_field(null=True, blank=True, help_text="Best excursion, %.")
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class PaperTrade(SimulatedTrade):
    """An approved signal executed in paper mode: no order leaves the machine."""

    signal = models.OneToOneField(Signal, on_delete=models.CASCADE, related_name="paper_trade")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["book", "status"])]

    def __str__(self) -> str:
        return f"paper #{self.pk} {self.side} ({self.status})"
