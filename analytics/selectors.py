"""Read-side queries: every number is aggregated in the database, per book.

Works the same on PostgreSQL and SQLite (SQLite sums decimals as floats, so its money
totals are exact only to about 15 significant digits).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Case, Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Sum, When
from django.db.models.functions import Coalesce

from analytics.confidence import MeanInterval, mean_interval
from analytics.equity import EquityCurve, PaperPosition, equity_curve
from markets.bars import timeframe_delta
from markets.selectors import candle_arrays, candle_sources
from markets.timestamps import ms_from_utc, utc_from_ms
from shadow.ablation import ablation_guards
from shadow.models import ShadowTrade
from shadow.selectors import (
    BookSummary,
    OpportunityCost,
    book_summary,
    opportunity_cost,
)
from signals.domain.guards import GUARDS
from signals.models import (
    Book,
    BookState,
    BookStrategy,
    GuardDecision,
    PaperTrade,
    Signal,
    SignalState,
    SignalTransition,
)

SAVES_MONEY = "saves money"
COSTS_MONEY = "costs money"
INCONCLUSIVE = "inconclusive"
# Below this many evaluated shadow trades a verdict would be noise.
MIN_SAMPLES_FOR_VERDICT = 5

# Deadlines of the non-terminal states before a signal counts as stuck: a generated
# signal is decided in the same task run that created it, and an approved one is
# filled at the next candle's open, so two candles is already late.
GENERATED_DEADLINE = timedelta(minutes=10)
APPROVED_DEADLINE_CANDLES = 2

ZERO = Decimal(0)

__all__ = ["BookSummary", "OpportunityCost", "book_summary", "opportunity_cost"]


@dataclass(frozen=True, slots=True)
class ShadowOutcome:
    """What the closed shadow trades of a set of blocked signals made.

    ``net_impact`` is minus their P&L: positive means blocking them saved money. The
    interval is the 95% Student t interval of the mean net impact per trade.
    """

    evaluated: int
    wins: int
    win_rate: float | None
    shadow_pnl: Decimal
    net_impact: Decimal
    mean_pnl: Decimal | None
    mean_net_impact: Decimal | None
    ci_low: Decimal | None
    ci_high: Decimal | None
    verdict: str
    too_few_samples: bool


@dataclass(frozen=True, slots=True)
class GuardEffectiveness:
    """One guard in one book: what it blocked and what that blocking was worth.

    ``outcome`` covers every signal it blocked; ``sole_outcome`` only those no other
    guard blocked (its marginal effect).
    """

    guard: str
    blocked: int
    sole_blocked: int
    outcome: ShadowOutcome
    sole_outcome: ShadowOutcome


@dataclass(frozen=True, slots=True)
class StuckSignal:
    """A signal past its state's deadline; ``since`` is when it entered that state."""

    id: int
    state: str
    symbol: str
    timeframe: str
    since: datetime
    age: timedelta


@dataclass(frozen=True, slots=True)
class PipelineHealth:
    """Counts per state and the stuck signals (the oldest first, at most a page of them)."""

    book: Book
    state_counts: dict[str, int]
    stuck_count: int
    stuck: list[StuckSignal]


def _verdict(interval: MeanInterval) -> str:
    if interval.count < MIN_SAMPLES_FOR_VERDICT or interval.low is None:
        return INCONCLUSIVE
    assert interval.high is not None
    if interval.low > 0:
        return SAVES_MONEY
    if interval.high < 0:
        return COSTS_MONEY
    return INCONCLUSIVE


def _shadow_outcome(
    evaluated: int, wins: int, pnl: Decimal | None, pnl_squares: Decimal | None
) -> ShadowOutcome:
    shadow_pnl = pnl if pnl is not None else ZERO
    net = mean_interval(evaluated, -shadow_pnl, pnl_squares if pnl_squares is not None else ZERO)
    return ShadowOutcome(
        evaluated=evaluated,
        wins=wins,
        win_rate=wins / evaluated if evaluated else None,
        shadow_pnl=shadow_pnl,
        net_impact=-shadow_pnl,
        mean_pnl=-net.mean if net.mean is not None else None,
        mean_net_impact=net.mean,
        ci_low=net.low,
        ci_high=net.high,
        verdict=_verdict(net),
        too_few_samples=evaluated < MIN_SAMPLES_FOR_VERDICT,
    )


def guard_effectiveness(*, book: Book) -> list[GuardEffectiveness]:
    """Per guard with a decision in ``book``, by name: blocked and sole-blocked signals and
    what the closed shadow trades of those signals made, with a verdict."""
    blocking = Q(verdict=GuardDecision.Verdict.BLOCK)
    another_guard_blocked = GuardDecision.objects.filter(
        signal_id=OuterRef("signal_id"), verdict=GuardDecision.Verdict.BLOCK
    ).exclude(guard=OuterRef("guard"))
    sole = Q(blocking, ~Exists(another_guard_blocked))
    closed = Q(
        signal__shadow_trade__status=ShadowTrade.Status.CLOSED,
        signal__shadow_trade__pnl__isnull=False,
    )
    won = Q(signal__shadow_trade__pnl__gt=0)
    pnl = F("signal__shadow_trade__pnl")

    def shadow_sums(prefix: str, among: Q) -> dict[str, Count | Sum]:
        return {
            f"{prefix}evaluated": Count("id", filter=among & closed),
            f"{prefix}wins": Count("id", filter=among & closed & won),
            f"{prefix}pnl": Sum(pnl, filter=among & closed),
            f"{prefix}pnl_squares": Sum(pnl * pnl, filter=among & closed),
        }

    rows = (
        GuardDecision.objects.filter(signal__book=book)
        .values("guard")
        .order_by("guard")
        .annotate(
            blocked=Count("id", filter=blocking),
            sole_blocked=Count("id", filter=sole),
            **shadow_sums("", blocking),
            **shadow_sums("sole_", sole),
        )
    )
    return [
        GuardEffectiveness(
            guard=row["guard"],
            blocked=row["blocked"],
            sole_blocked=row["sole_blocked"],
            outcome=_shadow_outcome(row["evaluated"], row["wins"], row["pnl"], row["pnl_squares"]),
            sole_outcome=_shadow_outcome(
                row["sole_evaluated"], row["sole_wins"], row["sole_pnl"], row["sole_pnl_squares"]
            ),
        )
        for row in rows
    ]


def signal_state_counts(*, book: Book) -> dict[str, int]:
    """Signals of ``book`` per state, every state present (zero when empty), in pipeline order."""
    rows = (
        Signal.objects.filter(book=book).order_by().values_list("state").annotate(count=Count("id"))
    )
    found = dict(rows)
    return {state.value: found.get(state.value, 0) for state in SignalState}


def books() -> list[Book]:
    """Every book, newest first, each annotated with ``signal_count``."""
    return list(Book.objects.annotate(signal_count=Count("signals")).order_by("-created_at", "-id"))


def default_book() -> Book | None:
    """The most recently created book that has signals, or ``None``."""
    with_signals = Book.objects.filter(Exists(Signal.objects.filter(book=OuterRef("pk"))))
    return with_signals.order_by("-created_at", "-id").first()


def data_sources(*, book: Book) -> list[str]:
    """The candle sources (exchange, file, synthetic) behind the markets ``book`` trades:
    those of its signals and of the strategy configurations run in it."""
    markets = set(
        Signal.objects.filter(book=book)
        .order_by()
        .values_list("exchange", "symbol", "timeframe")
        .distinct()
    )
    markets.update(
        BookStrategy.objects.filter(book=book)
        .order_by()
        .values_list("exchange", "symbol", "timeframe")
        .distinct()
    )
    sources: set[str] = set()
    for exchange, symbol, timeframe in markets:
        sources.update(candle_sources(exchange=exchange, symbol=symbol, timeframe=timeframe))
    return sorted(sources)


def live_books() -> list[Book]:
    """The books the running system trades in."""
    return list(Book.objects.filter(kind=Book.Kind.LIVE).order_by("name"))


def stuck_signals(*, book: Book, now: datetime, limit: int = 100) -> list[StuckSignal]:
    """Signals of ``book`` past their state's deadline at ``now``, the oldest first.

    Generated: created more than ``GENERATED_DEADLINE`` ago. Approved: decided (or, lacking
    a decision time, created) more than ``APPROVED_DEADLINE_CANDLES`` candles of its
    timeframe ago. Signals whose timeframe cannot be read are never flagged.
    """
    since = Case(
        When(state=SignalState.APPROVED, then=Coalesce("decided_at", "created_at")),
        default=F("created_at"),
    )
    rows = (
        _stuck(book=book, now=now)
        .annotate(since=since)
        .order_by("since", "id")
        .values_list("id", "state", "symbol", "timeframe", "since")[:limit]
    )
    return [
        StuckSignal(
            id=signal_id,
            state=state,
            symbol=symbol,
            timeframe=timeframe,
            since=entered,
            age=now - entered,
        )
        for signal_id, state, symbol, timeframe, entered in rows
    ]


def pipeline_health(*, book: Book, now: datetime, limit: int = 100) -> PipelineHealth:
    """Counts per state and the stuck signals of ``book`` at ``now``."""
    return PipelineHealth(
        book=book,
        state_counts=signal_state_counts(book=book),
        stuck_count=_stuck(book=book, now=now).count(),
        stuck=stuck_signals(book=book, now=now, limit=limit),
    )


def _stuck(*, book: Book, now: datetime) -> QuerySet[Signal]:
    overdue = Q(state=SignalState.GENERATED, created_at__lt=now - GENERATED_DEADLINE)
    approved = Signal.objects.filter(book=book, state=SignalState.APPROVED)
    for timeframe in approved.order_by().values_list("timeframe", flat=True).distinct():
        try:
            cutoff = now - APPROVED_DEADLINE_CANDLES * timeframe_delta(timeframe)
        except ValueError:
            continue
        overdue |= Q(state=SignalState.APPROVED, timeframe=timeframe) & (
            Q(decided_at__lt=cutoff) | Q(decided_at__isnull=True, created_at__lt=cutoff)
        )
    return Signal.objects.filter(book=book).filter(overdue)


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


def quote_currency(symbol: str) -> str:
    """The quote currency of a ccxt market symbol ("BTC/USD" and "BTC/USD:USD" give
    "USD"), "" when the symbol has none."""
    _, slash, rest = symbol.partition("/")
    return rest.partition(":")[0] if slash else ""


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


def book_equity_curve(*, book: Book) -> EquityCurve:
    """``book``'s equity at every candle close from its first paper entry to the last
    candle it processed, marked to market (``analytics.equity``)."""
    trades = list(
        PaperTrade.objects.filter(book=book, entry_time__isnull=False)
        .order_by()
        .values_list(
            "signal__exchange",
            "signal__symbol",
            "signal__timeframe",
            "side",
            "quantity",
            "entry_price",
            "entry_time",
            "exit_time",
            "pnl",
            "status",
        )
    )
    if not trades:
        return equity_curve({}, [], step_ms={})
    state = BookState.objects.filter(book=book).values_list("state", flat=True).first() or {}
    last_times = state.get("last_time", {})
    positions = []
    markets: dict[str, tuple[str, str, str]] = {}
    for exchange, symbol, timeframe, side, qty, price, entry, exit_, pnl, status in trades:
        if entry is None or qty is None or price is None:
            continue  # filtered out above; the columns are nullable for pending trades
        key = f"{exchange} {symbol} {timeframe}"
        markets[key] = (exchange, symbol, timeframe)
        closed = status == PaperTrade.Status.CLOSED
        positions.append(
            PaperPosition(
                market=key,
                direction=1 if side == "long" else -1,
                quantity=float(qty),
                entry_price=float(price),
                entry_time=ms_from_utc(entry),
                exit_time=ms_from_utc(exit_) if closed and exit_ else None,
                pnl=float(pnl) if closed and pnl is not None else 0.0,
            )
        )
    first_entry = min(p.entry_time for p in positions)
    candles = {}
    for key, (exchange, symbol, timeframe) in markets.items():
        last = last_times.get(key)
        candles[key] = candle_arrays(
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
            after=utc_from_ms(first_entry - 1),
            until=utc_from_ms(last) if last is not None else None,
        )
    steps = {key: int(timeframe_delta(m[2]).total_seconds() * 1000) for key, m in markets.items()}
    return equity_curve(candles, positions, step_ms=steps)


@dataclass(frozen=True, slots=True)
class AblationRow:
    """One guard of a book: its first-order net impact (minus the shadow P&L of what it
    blocked) beside its path-dependent value (the book's paper P&L minus that of the
    same history replayed without the guard). Positive = the guard saved money."""

    guard: str
    first_order: Decimal | None
    path_dependent: Decimal | None
    leg: Book | None
    leg_paper_pnl: Decimal | None


def ablation_report(*, book: Book) -> list[AblationRow]:
    """Every guard of ``book`` with its ablation leg's result (``None`` where that leg
    has not run)."""
    first_order = {
        effect.guard: effect.outcome.net_impact for effect in guard_effectiveness(book=book)
    }
    base_pnl = book_summary(book=book).paper_pnl
    legs = {leg.without_guard: leg for leg in Book.objects.filter(ablation_of=book)}
    rows = []
    for guard in ablation_guards(book=book):
        leg = legs.get(guard)
        leg_pnl = book_summary(book=leg).paper_pnl if leg is not None else None
        rows.append(
            AblationRow(
                guard=guard,
                first_order=first_order.get(guard),
                path_dependent=base_pnl - leg_pnl if leg_pnl is not None else None,
                leg=leg,
                leg_paper_pnl=leg_pnl,
            )
        )
    return rows


def book_quote_currency(*, book: Book) -> str:
    """The quote currency ``book`` trades in (``USD`` for BTC/USD), or ``quote`` when its
    markets mix several."""
    symbols = BookStrategy.objects.filter(book=book).values_list("symbol", flat=True).distinct()
    currencies = {quote_currency(symbol) for symbol in symbols}
    if not currencies:
        currencies = {
            quote_currency(symbol)
            for symbol in Signal.objects.filter(book=book).values_list("symbol", flat=True)[:1]
        }
    return currencies.pop() if len(currencies) == 1 else "quote"
