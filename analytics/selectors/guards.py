"""Guard effectiveness (the guards page, reports and alerts): per guard configuration, what it blocked and what that blocking was worth, and the ablation legs' results."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from analytics.confidence import MeanInterval, mean_interval
from analytics.filters import book_clock
from shadow import rollups
from shadow.ablation import ablation_guards, ablation_requested_at
from shadow.rollups import Fact
from signals.models import (
    Book,
    BookGuard,
    BookStrategy,
    GuardDecision,
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
    the book) and ``symbol`` narrow the signals. Read from the book's rollups
    (``shadow.rollups``), four grouped reads whatever the number of signals: blocks and
    their closed shadow trades per guard (``guard_blocked``, ``guard_shadow``), and the
    same for the signals one guard blocked alone (``blocked``, ``shadow``, by blocker).
    """
    rollups.ensure_built(book.pk)
    strategies = None
    if strategy:
        strategies = list(
            BookStrategy.objects.filter(book=book, name=strategy).values_list("pk", flat=True)
        )
    clock = book_clock(book)
    by = ("guard", "guard_config_id")

    def read(fact: str) -> dict[tuple[str, int | None], dict[str, Any]]:
        rows = rollups.totals(
            book.pk,
            fact,
            by=by,
            since=since,
            until=until,
            strategies=strategies,
            symbol=symbol,
            check=False,
            clock=clock,
        )
        return {(row["guard"], row["guard_config_id"]): row for row in rows}

    blocks, money = read(Fact.GUARD_BLOCKED), read(Fact.GUARD_SHADOW)
    sole_blocks, sole_money = read(Fact.BLOCKED), read(Fact.SHADOW)
    configs = {
        frozen.pk: frozen
        for frozen in BookGuard.objects.filter(book=book).only(
            "name", "kind", "config_version", "active"
        )
    }
    found = set(blocks) | set(money)
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

    def outcome(row: dict[str, Any] | None) -> ShadowOutcome:
        if row is None:
            return _shadow_outcome(0, 0, None, None, min_samples)
        return _shadow_outcome(
            row["n"], row["wins"], row["pnl"], Decimal(repr(row["pnl_sq"])), min_samples
        )

    def count(rows: dict[tuple[str, int | None], dict[str, Any]], key: Any) -> int:
        return int(rows[key]["n"]) if key in rows else 0

    effects = []
    for key in found:
        name, config_id = key
        frozen = configs.get(config_id) if config_id is not None else None
        effects.append(
            GuardEffectiveness(
                guard=name,
                blocked=count(blocks, key),
                sole_blocked=count(sole_blocks, key),
                outcome=outcome(money.get(key)),
                sole_outcome=outcome(sole_money.get(key)),
                kind=frozen.kind if frozen is not None else "",
                version=frozen.config_version if frozen is not None else None,
                book_guard_id=config_id,
            )
        )
    effects.sort(key=lambda effect: (effect.guard, effect.version or 0))
    return effects


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
    # Closed paper P&L of the book and of each leg, from their rollups.
    paper_pnl = {}
    for book_id in (book.pk, *(leg.pk for leg in legs.values())):
        summed = rollups.totals(book_id, Fact.PAPER, check=book_id != book.pk)
        paper_pnl[book_id] = summed[0]["pnl"] if summed else None
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
