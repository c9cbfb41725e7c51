"""Books, strategy and guard configuration, signals with their state machine, decisions
and paper trades.

Models hold tables and transitions only; the work is in ``signals.services``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django_fsm import ConcurrentTransitionMixin, FSMField, transition
from simple_history.models import HistoricalRecords  # type: ignore[import-untyped]

from markets.bars import timeframe_delta
from markets.models import decimal_field
from signals.domain.guards import validate_guard_config
from signals.domain.strategies import validate_strategy_config


def engine_number(**options: Any) -> models.DecimalField:
    """A price, quantity or money figure the engine computed in float64, stored so that
    it gives the engine's float back: 18 digits before the point and 30 after, room for
    the 17 significant digits of any float from 1e-13 up (``repr(float)`` written as
    it is, see ``shadow.persistence.decimal_text``), where ``decimal_field``'s 12 fixed
    places kept 4 significant digits of a price near 1e-8."""
    return models.DecimalField(max_digits=48, decimal_places=30, **options)


class Book(models.Model):
    """Where signals, trades and shadow trades are kept apart: the live book or a named run."""

    class Kind(models.TextChoices):
        LIVE = "live", "live"
        REPLAY = "replay", "replay"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.TextField(blank=True)
    since = models.DateTimeField(
        null=True, blank=True, help_text="A replay's first signal candle (earlier: history)."
    )
    until = models.DateTimeField(null=True, blank=True, help_text="A replay's last candle.")
    ablation_of = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="ablation_legs",
        help_text="The book this one replays with one guard removed.",
    )
    without_guard = models.CharField(max_length=100, blank=True)
    economics = models.JSONField(
        default=dict,
        blank=True,
        help_text="Fee, slippage, sizing and paper balance per quote currency, frozen at "
        "the book's start from the settings (signals.economics); its ablation legs and later "
        "runs trade on this copy.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        # analytics.roles.START_ABLATION: the guard page's "Ablate this book".
        permissions = [("start_ablation", "Can start an ablation of a book from the pages")]

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
    live = models.BooleanField(
        default=False,
        help_text="Place real orders for this strategy's approved signals when the "
        "process runs with TRADING_MODE=live; otherwise it paper-trades.",
    )
    version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Raised by every change of the parameters."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Who changed what and when, one row per save with the version it left; the row's
    # own time stands for ``updated_at``.
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            validate_strategy_config(self.kind, self.params)
        except ValueError as error:
            raise ValidationError({"params": str(error)}) from None
        try:
            timeframe_delta(self.timeframe)
        except ValueError as error:
            raise ValidationError({"timeframe": str(error)}) from None


class GuardConfig(models.Model):
    """A risk guard: kind (a registry name) and its parameters. A kind may be configured
    several times under different names (e.g. two thresholds); the live book runs the
    enabled ones, and each book keeps the versions it started with."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=50)
    params = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Raised by every change of the parameters."
    )
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            validate_guard_config(self.kind, self.params)
        except ValueError as error:
            raise ValidationError({"params": str(error)}) from None


class FrozenConfig(models.Model):
    """A configuration as a book runs it: kind and parameters frozen at the book's start
    (a version, never a live reference), so editing the configuration later never
    changes the book."""

    config_version = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=50)
    params = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(
        default=True, help_text="Runs in the book (the live book retires replaced versions)."
    )

    class Meta:
        abstract = True
        ordering = ["book", "name"]

    def __str__(self) -> str:
        return f"{self.name} v{self.config_version}"


class BookStrategy(FrozenConfig):
    """A strategy configuration of a book, on its market."""

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="strategies")
    config = models.ForeignKey(StrategyConfig, on_delete=models.PROTECT, related_name="+")
    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=8)
    live = models.BooleanField(default=False)
    fee_rate = models.DecimalField(
        max_digits=10,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Fee per side the book pays on this market: the exchange's taker fee as "
        "ccxt knows it, else FILL_FEE_RATE (frozen at the book's start).",
    )

    class Meta(FrozenConfig.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["book", "name", "config_version"], name="book_strategy_unique_version"
            )
        ]


class BookGuard(FrozenConfig):
    """A guard configuration of a book."""

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="guards")
    config = models.ForeignKey(
        GuardConfig, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta(FrozenConfig.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["book", "name", "config_version"], name="book_guard_unique_version"
            )
        ]


class BookState(models.Model):
    """Where the engine stopped in a book (``signals.domain.engine.EngineState`` as JSON):
    the live driver's carry-over between runs. ``revision`` is its optimistic lock."""

    book = models.OneToOneField(Book, on_delete=models.CASCADE, related_name="engine_state")
    state = models.JSONField(default=dict)
    revision = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.book} state r{self.revision}"


class EquityPoint(models.Model):
    """The book's realised equity (cumulative paper P&L, quote currency) after a close."""

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="equity_points")
    time = models.DateTimeField(help_text="When the closing trade's exit became known.")
    equity = engine_number()

    class Meta:
        ordering = ["book", "time", "id"]
        indexes = [models.Index(fields=["book", "time"])]

    def __str__(self) -> str:
        return f"{self.book_id} {self.time:%Y-%m-%d %H:%M} {self.equity}"


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
    book_strategy = models.ForeignKey(
        "BookStrategy",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="signals",
        help_text="The strategy configuration version that made the signal.",
    )
    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=8)
    candle_time = models.DateTimeField(help_text="Open time of the candle the signal closed on.")
    side = models.CharField(max_length=8, choices=Side.choices)
    entry_price = engine_number(help_text="Reference price: the candle's close.")
    stop_loss = engine_number()
    take_profit = engine_number()
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
    simulated_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When it happened in market time (a candle's open or close).",
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text="When it was written (wall clock)."
    )

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
    guard = models.CharField(max_length=100, help_text="The guard's name in its book.")
    book_guard = models.ForeignKey(
        BookGuard,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="decisions",
        help_text="The configuration version that made the decision.",
    )
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
        EXPIRED = "expired", "expired (no entry)"

    class ExitReason(models.TextChoices):
        STOP = "stop", "stop"
        TARGET = "target", "target"
        TIMEOUT = "timeout", "timeout"
        GAP = "gap", "gap"

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="+")
    side = models.CharField(max_length=8, choices=Side.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    quantity = engine_number(null=True, blank=True)
    entry_time = models.DateTimeField(null=True, blank=True)
    entry_price = engine_number(null=True, blank=True)
    exit_time = models.DateTimeField(null=True, blank=True)
    exit_price = engine_number(null=True, blank=True)
    exit_reason = models.CharField(max_length=8, choices=ExitReason.choices, blank=True)
    fees = engine_number(null=True, blank=True)
    pnl = engine_number(null=True, blank=True, help_text="Quote currency, net.")
    return_pct = engine_number(null=True, blank=True)
    r_multiple = engine_number(null=True, blank=True)
    mae = engine_number(null=True, blank=True, help_text="Worst excursion, %.")
    mfe = engine_number(null=True, blank=True, help_text="Best excursion, %.")
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


class ExchangeOrder(models.Model):
    """A real order placed for a signal of a live-flagged strategy in ``TRADING_MODE=live``.

    The row is written, with its client order id, before the order is sent, so a worker
    that dies mid-send finds it again: the order is then looked up by that id and never
    sent twice blindly. Each send is claimed first (``new``/``unknown`` -> ``sending``
    by a conditional update on the status and ``sends`` read, signals.execution), so
    of two passes that meet one order only one sends it. The signal's state keeps
    following the fill model; this row is what the exchange did.
    """

    class Purpose(models.TextChoices):
        ENTRY = "entry", "entry"
        EXIT = "exit", "exit"

    class Status(models.TextChoices):
        NEW = "new", "recorded, never sent"
        SENDING = "sending", "claimed by a pass and being sent"
        OPEN = "open", "open"
        CLOSED = "closed", "filled"
        CANCELED = "canceled", "canceled"
        REJECTED = "rejected", "rejected"
        UNKNOWN = "unknown", "sent, but the exchange has not told its fate yet"

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="orders")
    signal = models.ForeignKey(Signal, on_delete=models.CASCADE, related_name="orders")
    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4, help_text="buy or sell")
    amount = decimal_field(help_text="Base currency.")
    client_order_id = models.CharField(max_length=64, unique=True)
    exchange_order_id = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    filled = decimal_field(null=True, blank=True)
    average_price = decimal_field(null=True, blank=True)
    fee_cost = decimal_field(null=True, blank=True)
    fee_currency = models.CharField(max_length=16, blank=True)
    reason = models.TextField(blank=True)
    sends = models.PositiveSmallIntegerField(
        default=0, help_text="How many times a pass claimed this order to send it."
    )
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last send was claimed (database clock)."
    )
    visible_by = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The last send, if the exchange took it, is listed there by then (claim + "
        "client timeout + the exchange's visibility delay): only a lookup begun after this "
        "moment can prove the order absent and allow another send.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["signal", "purpose"], name="order_one_per_purpose")
        ]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.purpose} {self.side} {self.amount} {self.symbol} ({self.status})"
