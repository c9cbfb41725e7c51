"""Read-side queries: every number is aggregated in the database, per book.

Works the same on PostgreSQL and SQLite (SQLite sums decimals as floats, so its money
totals are exact only to about 15 significant digits).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Context as DecimalContext
from decimal import Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connections
from django.db.models import (
    BooleanField,
    Case,
    Count,
    ExpressionWrapper,
    F,
    IntegerField,
    Min,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)

from analytics.breakdowns import EpochMs, float_columns
from analytics.confidence import MeanInterval, mean_interval
from analytics.equity import (
    EquityCurve,
    PositionArrays,
    equity_curve,
    equity_curve_arrays,
)
from analytics.page_cache import book_signal_counts
from analytics.stamps import with_stamp
from analytics.stuck import overdue
from markets.admin_format import quote_currency
from markets.bars import timeframe_delta
from markets.selectors import candle_arrays, candle_sources
from markets.timestamps import ms_from_utc, utc_from_ms
from shadow import rollups
from shadow.ablation import ablation_guards, ablation_requested_at
from shadow.models import BookRollup, ShadowTrade
from shadow.selectors import (
    BookSummary,
    OpportunityCost,
    book_summary,
    opportunity_cost,
)
from signals.domain.guards import GUARDS
from signals.models import (
    Book,
    BookGuard,
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
# Below this many evaluated shadow trades a verdict would be noise; the default of
# settings.GUARD_VERDICT_MIN_SAMPLES (docs/adr/0012-guard-interval-student-t.md).
MIN_SAMPLES_FOR_VERDICT = 5

# The deadlines before a signal counts as stuck are in ``analytics.stuck``.

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
    guard blocked (its marginal effect). One per configuration version of the guard.
    """

    guard: str
    blocked: int
    sole_blocked: int
    outcome: ShadowOutcome
    sole_outcome: ShadowOutcome
    kind: str = ""
    # The configuration version; None for decisions from before books froze their guards.
    version: int | None = None
    book_guard_id: int | None = None


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


def verdict_min_samples() -> int:
    """The fewest closed shadow trades a verdict needs: ``settings.GUARD_VERDICT_MIN_SAMPLES``
    (default ``MIN_SAMPLES_FOR_VERDICT``); below it a guard is inconclusive."""
    return int(getattr(settings, "GUARD_VERDICT_MIN_SAMPLES", MIN_SAMPLES_FOR_VERDICT))


def _verdict(interval: MeanInterval, min_samples: int | None = None) -> str:
    """Saves money when the whole interval of the mean net impact is above zero, costs
    money when it is wholly below; inconclusive when it touches or straddles zero or rests
    on fewer than ``min_samples`` trades."""
    needed = verdict_min_samples() if min_samples is None else min_samples
    if interval.count < needed or interval.low is None:
        return INCONCLUSIVE
    assert interval.high is not None
    if interval.low > 0:
        return SAVES_MONEY
    if interval.high < 0:
        return COSTS_MONEY
    return INCONCLUSIVE


def _shadow_outcome(
    evaluated: int,
    wins: int,
    pnl: Decimal | None,
    pnl_squares: Decimal | None,
    min_samples: int | None = None,
) -> ShadowOutcome:
    needed = verdict_min_samples() if min_samples is None else min_samples
    # SQLite sums decimals as floats; PostgreSQL's numeric sums stay exact.
    shadow_pnl = Decimal(str(pnl)) if pnl is not None else ZERO
    squares = Decimal(str(pnl_squares)) if pnl_squares is not None else ZERO
    net = mean_interval(evaluated, -shadow_pnl, squares)
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
        verdict=_verdict(net, needed),
        too_few_samples=evaluated < needed,
    )


def guard_effectiveness(
    *,
    book: Book,
    since: datetime | None = None,
    until: datetime | None = None,
    strategy: str = "",
    symbol: str = "",
) -> list[GuardEffectiveness]:
    """Per guard configuration of ``book`` (name and version), by name: the signals it
    blocked and blocked alone, and what the closed shadow trades of those signals made,
    with a verdict. Guard configurations that blocked nothing are listed with zeros.

    ``since``/``until`` (until exclusive) count a block by its signal's candle time and its
    money by its shadow trade's exit time; ``strategy`` (a strategy configuration's name in
    the book) and ``symbol`` narrow the signals. Two queries at most, whatever the number
    of signals: one pass over the blocking decisions (``_guard_sums``: every block, and
    the blocks no other guard made) and the book's guard configurations.
    """
    decisions = GuardDecision.objects.filter(signal__book=book, verdict=GuardDecision.Verdict.BLOCK)
    if strategy:
        decisions = decisions.filter(signal__book_strategy__name=strategy)
    if symbol:
        decisions = decisions.filter(signal__symbol=symbol)
    counted = Q()
    closed = Q(
        signal__shadow_trade__status=ShadowTrade.Status.CLOSED,
        signal__shadow_trade__pnl__isnull=False,
    )
    exited = Q()
    if since is not None:
        counted &= Q(signal__candle_time__gte=since)
        exited &= Q(signal__shadow_trade__exit_time__gte=since)
    if until is not None:
        counted &= Q(signal__candle_time__lt=until)
        exited &= Q(signal__shadow_trade__exit_time__lt=until)
    if since is not None or until is not None:
        decisions = decisions.filter(counted | (closed & exited))
    money = closed & exited
    every, alone = _guard_sums(decisions, counted, money)
    configs = {
        frozen.pk: frozen
        for frozen in BookGuard.objects.filter(book=book).only(
            "name", "kind", "config_version", "active"
        )
    }
    found = set(every)
    found.update((frozen.name, frozen.pk) for frozen in configs.values() if frozen.active)
    if not configs:
        # Books from before guards were frozen per book: their guards are in the decisions.
        found.update(
            (name, None)
            for name in GuardDecision.objects.filter(signal__book=book)
            .order_by()
            .values_list("guard", flat=True)
            .distinct()
        )
    min_samples = verdict_min_samples()
    empty = {"blocked": 0, "evaluated": 0, "wins": 0, "pnl": None, "pnl_squares": None}

    def outcome(row: dict[str, Any]) -> ShadowOutcome:
        return _shadow_outcome(
            row["evaluated"], row["wins"], row["pnl"], row["pnl_squares"], min_samples
        )

    effects = []
    for key in found:
        name, config_id = key
        frozen = configs.get(config_id) if config_id is not None else None
        row, sole = every.get(key, empty), alone.get(key, empty)
        effects.append(
            GuardEffectiveness(
                guard=name,
                blocked=row["blocked"],
                sole_blocked=sole["blocked"],
                outcome=outcome(row),
                sole_outcome=outcome(sole),
                kind=frozen.kind if frozen is not None else "",
                version=frozen.config_version if frozen is not None else None,
                book_guard_id=config_id,
            )
        )
    effects.sort(key=lambda effect: (effect.guard, effect.version or 0))
    return effects


def _db_decimal(value: Any) -> Any:
    """A sum read from a raw cursor as the ORM would give it: PostgreSQL's numeric is a
    ``Decimal`` already; SQLite's float becomes one at 15 significant digits."""
    if value is None or isinstance(value, Decimal):
        return value
    return DecimalContext(prec=15).create_decimal_from_float(float(value))


def _guard_sums(
    decisions: QuerySet[GuardDecision], counted: Q, money: Q
) -> tuple[dict[tuple[str, int | None], dict[str, Any]], ...]:
    """Per (guard, configuration) of ``decisions`` (blocking ones): blocks counted, closed
    shadow trades, wins, P&L and P&L squared, over every block and over the blocks no
    other guard made, in ONE pass. A signal's other blockers are counted by a window over
    its blocking decisions (one per guard: ``decision_unique_per_guard``); every filter is
    per signal, so the window sees all the blocks of each signal kept. The ORM writes the
    per-decision rows; the grouping around them is plain SQL (PostgreSQL and SQLite)."""
    flag: BooleanField[Any, Any] = BooleanField()
    rows = decisions.annotate(
        is_counted=ExpressionWrapper(counted, output_field=flag) if counted else Value(True),
        is_money=ExpressionWrapper(money, output_field=flag),
        trade_pnl=F("signal__shadow_trade__pnl"),
        # signal_id (in the index) rather than id: the pass reads only the index.
        blockers=Window(Count("signal_id"), partition_by=[F("signal_id")]),
    ).values("guard", "book_guard_id", "is_counted", "is_money", "trade_pnl", "blockers")
    inner, params = rows.order_by().query.sql_with_params()
    names = ("blocked", "evaluated", "wins", "pnl", "pnl_squares")

    def sums(only: str) -> str:
        return (
            f"COUNT(CASE WHEN is_counted{only} THEN 1 END), "
            f"COUNT(CASE WHEN is_money{only} THEN 1 END), "
            f"COUNT(CASE WHEN is_money{only} AND trade_pnl > 0 THEN 1 END), "
            f"SUM(CASE WHEN is_money{only} THEN trade_pnl END), "
            f"SUM(CASE WHEN is_money{only} THEN trade_pnl * trade_pnl END)"
        )

    query = (
        f"SELECT guard, book_guard_id, {sums('')}, {sums(' AND blockers = 1')} "
        f"FROM ({inner}) blocks GROUP BY guard, book_guard_id"
    )
    every: dict[tuple[str, int | None], dict[str, Any]] = {}
    alone: dict[tuple[str, int | None], dict[str, Any]] = {}
    with connections[decisions.db].cursor() as cursor:
        cursor.execute(query, params)
        for guard, config_id, *values in cursor.fetchall():
            key = (guard, config_id)
            for target, part in ((every, values[:5]), (alone, values[5:])):
                row = dict(zip(names, part, strict=True))
                row["pnl"], row["pnl_squares"] = (
                    _db_decimal(row["pnl"]),
                    _db_decimal(row["pnl_squares"]),
                )
                if target is every or row["blocked"] or row["evaluated"]:
                    target[key] = row
    return every, alone


def signal_state_counts(*, book: Book) -> dict[str, int]:
    """Signals of ``book`` per state, every state present (zero when empty), in pipeline
    order: the book's ``signals`` rollups summed by state (``shadow.rollups``), a read of
    the rollups whatever the number of signals."""
    found: dict[str, int] = {}
    for row in rollups.totals(book.pk, BookRollup.Fact.SIGNALS, by=("state",)):
        found[row["state"]] = found.get(row["state"], 0) + row["n"]
    return {state.value: found.get(state.value, 0) for state in SignalState}


def books() -> list[Book]:
    """The book picker's books: every book that is not an ablation leg, newest first, each
    with ``signal_count`` and ``legs``, its ablation legs (a leg's own legs included) by
    name, each with ``signal_count``.

    The counts come from the page cache under each book's data stamp (one query for every
    book's stamp, index probes only); only the books written since their count was cached
    are counted again, in one grouped query."""
    found = list(with_stamp(Book.objects.order_by("-created_at", "-id")))
    counts = book_signal_counts(found)
    by_id = {book.pk: book for book in found}
    for book in found:
        book.signal_count = counts.get(book.pk, 0)  # type: ignore[attr-defined]
        book.legs = []  # type: ignore[attr-defined]
    top = []
    for book in found:
        root, seen = book, {book.pk}
        while root.ablation_of_id in by_id and root.ablation_of_id not in seen:
            root = by_id[root.ablation_of_id]
            seen.add(root.pk)
        if root is book:
            top.append(book)
        else:
            root.legs.append(book)  # type: ignore[attr-defined]
    for book in top:
        book.legs.sort(key=lambda leg: (leg.name, leg.pk))  # type: ignore[attr-defined]
    return top


def data_sources(*, book: Book) -> list[str]:
    """The candle sources (exchange, file, synthetic) behind the markets ``book`` trades:
    those of its signals and of the strategy configurations run in it."""
    # A signal's market is that of the strategy configuration that made it: only signals
    # without one (written before configurations were frozen in books) are read, through
    # the index on ``book_strategy_id`` (no scan of the book's signals).
    markets = set(
        Signal.objects.filter(book=book, book_strategy__isnull=True)
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

    The deadlines per state are ``settings.STUCK_SIGNAL_DEADLINES`` (``analytics.stuck``):
    by default generated 10 minutes after creation, approved 2 candles of its timeframe
    after its decision, executed 2 candles past its maximum hold. Signals whose timeframe
    cannot be read are never flagged.
    """
    rows = (
        overdue(book=book, now=now)
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
        stuck_count=overdue(book=book, now=now).count(),
        stuck=stuck_signals(book=book, now=now, limit=limit),
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


def book_equity_curve(*, book: Book) -> EquityCurve:
    """``book``'s equity at every candle close from its first paper entry to the last
    candle it processed, marked to market (``analytics.equity``).

    Its markets and first entry come first (one grouped query), then their candles; the
    trades are read only when there are candles to mark them on, as float columns."""
    trades = PaperTrade.objects.filter(
        book=book, entry_time__isnull=False, quantity__isnull=False, entry_price__isnull=False
    ).order_by()
    market = ("signal__exchange", "signal__symbol", "signal__timeframe")
    found = list(trades.values_list(*market).annotate(first=Min("entry_time")).order_by(*market))
    if not found:
        return equity_curve({}, [], step_ms={})
    state = BookState.objects.filter(book=book).values_list("state", flat=True).first() or {}
    last_times = state.get("last_time", {})
    first_entry = min(ms_from_utc(first) for *_, first in found)
    candles = {}
    for exchange, symbol, timeframe, _ in found:
        key = f"{exchange} {symbol} {timeframe}"
        last = last_times.get(key)
        candles[key] = candle_arrays(
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
            after=utc_from_ms(first_entry - 1),
            until=utc_from_ms(last) if last is not None else None,
        )
    steps = {f"{e} {s} {t}": int(timeframe_delta(t).total_seconds() * 1000) for e, s, t, _ in found}
    if all(len(c) == 0 for c in candles.values()):
        return equity_curve(candles, [], step_ms=steps)
    which = Case(
        *(
            When(signal__exchange=e, signal__symbol=s, signal__timeframe=t, then=Value(i))
            for i, (e, s, t, _) in enumerate(found)
        ),
        output_field=IntegerField(),
    )
    closed = Case(
        When(status=PaperTrade.Status.CLOSED, then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )
    side = Case(When(side="long", then=Value(1)), default=Value(-1), output_field=IntegerField())
    columns = float_columns(
        trades.values_list(
            which,
            side,
            "quantity",
            "entry_price",
            EpochMs("entry_time"),
            EpochMs("exit_time"),
            "pnl",
            closed,
        ),
        8,
    )
    index, direction, quantity, price, entry, exit_, pnl, is_closed = columns.T
    exits = np.where(is_closed == 1, exit_, np.nan)
    return equity_curve_arrays(
        candles,
        PositionArrays(
            market=index.astype(np.int64),
            signed=direction * quantity,
            entry_price=price,
            entry_time=entry.astype(np.int64),
            exit_time=exits,
            pnl=np.where(~np.isnan(exits) & ~np.isnan(pnl), pnl, 0.0),
        ),
        step_ms=steps,
    )


@dataclass(frozen=True, slots=True)
class AblationRow:
    """One guard of a book: its first-order net impact (minus the shadow P&L of what it
    blocked) beside its path-dependent value (the book's paper P&L minus that of the
    same history replayed without the guard). Positive = the guard saved money.

    ``status``: "done" (the leg has run since the last request), "pending" (asked for,
    not written yet) or "not run"."""

    guard: str
    first_order: Decimal | None
    path_dependent: Decimal | None
    leg: Book | None
    leg_paper_pnl: Decimal | None
    status: str = "not run"


def ablation_report(
    *, book: Book, effects: list[GuardEffectiveness] | None = None
) -> list[AblationRow]:
    """Every guard of ``book`` with its ablation leg's result (``None`` where that leg
    has not run). ``effects``: the book's unfiltered ``guard_effectiveness`` when the
    caller has it already. A fixed number of queries whatever the number of legs."""
    if effects is None:
        effects = guard_effectiveness(book=book)
    first_order: dict[str, Decimal] = {}
    for effect in effects:
        first_order[effect.guard] = first_order.get(effect.guard, ZERO) + effect.outcome.net_impact
    legs = {leg.without_guard: leg for leg in Book.objects.filter(ablation_of=book)}
    paper_pnl = dict(
        PaperTrade.objects.filter(
            Q(book=book) | Q(book__ablation_of=book), status=PaperTrade.Status.CLOSED
        )
        .order_by()
        .values("book_id")
        .annotate(pnl=Sum("pnl"))
        .values_list("book_id", "pnl")
    )
    base_pnl = _money(paper_pnl.get(book.pk))
    requested = ablation_requested_at(book=book)
    rows = []
    for guard in ablation_guards(book=book):
        leg = legs.get(guard)
        leg_pnl = _money(paper_pnl.get(leg.pk)) if leg is not None else None
        if leg is not None and (requested is None or leg.created_at >= requested):
            status = "done"
        elif requested is not None:
            status = "pending"
        else:
            status = "not run"
        rows.append(
            AblationRow(
                guard=guard,
                first_order=first_order.get(guard),
                path_dependent=base_pnl - leg_pnl if leg_pnl is not None else None,
                leg=leg,
                leg_paper_pnl=leg_pnl,
                status=status,
            )
        )
    return rows


def _money(value: Decimal | float | None) -> Decimal:
    return Decimal(str(value)) if value is not None else ZERO


def book_quote_currency(*, book: Book) -> str:
    """The quote currency ``book`` trades in (``USD`` for BTC/USD), or ``quote`` when its
    markets mix several."""
    symbols = BookStrategy.objects.filter(book=book).values_list("symbol", flat=True).distinct()
    currencies = {quote_currency(symbol) for symbol in symbols}
    if not currencies:
        currencies = {
            quote_currency(symbol)
            for symbol in Signal.objects.filter(book=book)
            .order_by()
            .values_list("symbol", flat=True)[:1]
        }
    return currencies.pop() if len(currencies) == 1 else "quote"
