"""Guard effectiveness (the guards page, reports and alerts): per guard configuration, what it blocked and what that blocking was worth, and the ablation legs' results."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Context as DecimalContext
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
    Window,
)

from analytics.confidence import MeanInterval, mean_interval
from shadow.ablation import ablation_guards, ablation_requested_at
from shadow.models import ShadowTrade
from signals.models import (
    Book,
    BookGuard,
    GuardDecision,
    PaperTrade,
)

SAVES_MONEY = "saves money"
COSTS_MONEY = "costs money"
INCONCLUSIVE = "inconclusive"
# Below this many evaluated shadow trades a verdict would be noise; the default of
# settings.GUARD_VERDICT_MIN_SAMPLES (docs/adr/0012-guard-interval-student-t.md).
MIN_SAMPLES_FOR_VERDICT = 5

ZERO = Decimal(0)


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
