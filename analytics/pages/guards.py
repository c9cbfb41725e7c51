"""Guard effectiveness: per guard configuration of the book, what it blocked (every block
and the blocks no other guard made), what the shadow trades of those signals made, the
net impact (minus that shadow P&L: positive = the guard saved money), a 95 % interval of
the mean net impact per trade and a verdict; and, when the book was ablated, each guard's
path-dependent value beside its first-order net impact."""

from typing import Any

from django.conf import settings

from analytics import skill
from analytics.charts import chart_spec
from analytics.confidence import CONFIDENCE
from analytics.filters import Filters
from analytics.guard_skill import (
    BOOTSTRAP,
    CLUSTERED,
    BookSkill,
    Expectancy,
    SkillReport,
    book_skill,
)
from analytics.numbers import cents, probability, rate
from analytics.page_cache import Policy
from analytics.pages import Page, register
from analytics.paper_balance import balance_failures_by_guard
from analytics.selectors import (
    AblationRow,
    GuardEffectiveness,
    ShadowOutcome,
    ablation_report,
    guard_effectiveness,
    verdict_min_samples,
)
from shadow.ablation import ablation_refusal, ablation_requested_at
from signals.domain.guards import GUARDS
from signals.models import Book

INTERVAL_NOTES = {
    BOOTSTRAP: f"{skill.BOOTSTRAP_RESAMPLES:,} resamples of the trades in time order, seeded; "
    "its closed-form variance on long series",
    CLUSTERED: "from the P&L summed per UTC exit day, so that trades of one day may move "
    "together; used past "
    "a pool of GUARD_STATS_ROW_LIMIT trades",
}

CONVENTION = (
    "Net impact is minus the shadow P&L of the signals a guard blocked: positive means "
    "blocking them saved money, negative means it cost money."
)


def _outcome(outcome: ShadowOutcome, report: SkillReport) -> dict[str, Any]:
    """One set of a guard's blocks: the money, the honest verdict and its statistics.

    ``ci_low``/``ci_high`` are the stationary-bootstrap interval of the mean net impact
    per trade; ``t_low``/``t_high`` and ``t_verdict`` the Student t reference."""
    parts = report.decomposition
    return {
        "evaluated": outcome.evaluated,
        "wins": outcome.wins,
        "win_rate": rate(outcome.win_rate),
        "shadow_pnl": cents(outcome.shadow_pnl),
        "net_impact": cents(outcome.net_impact),
        "volume": cents(parts.volume),
        "selection": cents(parts.selection),
        "mean_net_impact": cents(outcome.mean_net_impact),
        "ci_low": cents(report.ci_low),
        "ci_high": cents(report.ci_high),
        "t_low": cents(outcome.ci_low),
        "t_high": cents(outcome.ci_high),
        "t_verdict": outcome.verdict,
        "blocked_mean_pnl": cents(report.blocked_mean_pnl),
        "passed_mean_pnl": cents(report.passed_mean_pnl),
        "difference": cents(report.difference),
        "difference_low": cents(report.difference_low),
        "difference_high": cents(report.difference_high),
        "p_value": probability(report.p_value),
        "q_value": probability(report.q_value),
        "test": report.test_method,
        "verdict": report.verdict,
        "too_few_samples": outcome.too_few_samples,
    }


def _guard(
    effect: GuardEffectiveness, skills: BookSkill, short: dict[int | None, int]
) -> dict[str, Any]:
    key = (effect.guard, effect.book_guard_id)
    return {
        "name": effect.guard,
        "kind": effect.kind,
        "version": effect.version,
        "label": f"{effect.guard} v{effect.version}" if effect.version else effect.guard,
        "blocked": effect.blocked,
        "sole_blocked": effect.sole_blocked,
        "any": _outcome(effect.outcome, skills.every[key]),
        "sole": _outcome(effect.sole_outcome, skills.alone[key]),
        # Signals it let through that the paper balance could not pay: they never held a
        # position, so what the guards saw afterwards differs from trading.
        "balance_failed": short.get(effect.book_guard_id, 0),
        # stale_data: a replayed candle is known at its close, so it never blocks there.
        "live_only": bool(getattr(GUARDS.get(effect.kind), "live_only", False)),
    }


def expectancy_data(expectancy: Expectancy) -> dict[str, Any]:
    """A strategy's unguarded expectancy as the pages show it."""
    return {
        "name": expectancy.name,
        "trades": expectancy.trades,
        "mean_pnl": cents(expectancy.mean_pnl),
        "low": cents(expectancy.low),
        "high": cents(expectancy.high),
        "losing": expectancy.losing,
        "negative": expectancy.negative,
    }


def _ablation_row(row: AblationRow) -> dict[str, Any]:
    return {
        "guard": row.guard,
        "first_order": cents(row.first_order),
        "path_dependent": cents(row.path_dependent),
        "leg": {"id": row.leg.pk, "name": row.leg.name} if row.leg is not None else None,
        "leg_paper_pnl": cents(row.leg_paper_pnl),
        "status": row.status,
    }


def _ablation(book: Book, filters: Filters, effects: list[GuardEffectiveness]) -> dict[str, Any]:
    refusal = ablation_refusal(book=book)
    unfiltered = not (filters.since or filters.until or filters.strategy or filters.symbol)
    rows = ablation_report(book=book, effects=effects if unfiltered else None)
    return {
        "can_ablate": refusal is None,
        # Under ``make run`` (no broker) the legs run in the web process, not on workers.
        "where": "in this web process" if settings.TASKS_IN_WEB_PROCESS else "on the workers",
        "refusal": refusal,
        "rows": [_ablation_row(row) for row in rows]
        if any(r.status != "not run" for r in rows)
        else [],
        "legs": len(rows),
        "pending": sum(row.status == "pending" for row in rows),
        "done": sum(row.status == "done" for row in rows),
    }


def build(filters: Filters) -> dict[str, Any]:
    book = filters.book
    assert book is not None
    effects = guard_effectiveness(
        book=book,
        since=filters.since,
        until=filters.until,
        strategy=filters.strategy,
        symbol=filters.symbol,
    )
    skills = book_skill(
        book=book,
        keys=[(effect.guard, effect.book_guard_id) for effect in effects],
        min_samples=verdict_min_samples(),
        since=filters.since,
        until=filters.until,
        strategy=filters.strategy,
        symbol=filters.symbol,
    )
    short = balance_failures_by_guard(
        book=book,
        since=filters.since,
        until=filters.until,
        strategy=filters.strategy,
        symbol=filters.symbol,
    )
    guards = [_guard(effect, skills, short) for effect in effects]
    labels = [guard["label"] for guard in guards]
    return {
        "convention": CONVENTION,
        "confidence": CONFIDENCE,
        "interval": skills.interval,
        "interval_note": INTERVAL_NOTES[skills.interval],
        "test_note": (
            f"{skill.RANDOMISATION_DRAWS:,} random draws on a pool of at most "
            f"{skill.MONTE_CARLO_BUDGET // skill.RANDOMISATION_DRAWS:,} signals, "
            "the normal approximation of such draws on a larger one"
        ),
        "reference_interval": "Student t",
        "resamples": skill.BOOTSTRAP_RESAMPLES,
        "draws": skill.RANDOMISATION_DRAWS,
        "fdr_level": skill.FDR_LEVEL,
        "fdr_family": sum(guard["any"]["p_value"] is not None for guard in guards),
        "verdicts": skill.VERDICT_MEANINGS,
        "min_samples": verdict_min_samples(),
        "pool": skills.pool,
        "expectancy": expectancy_data(skills.book_expectancy),
        "strategies": [expectancy_data(e) for e in skills.expectancy],
        "guards": guards,
        "chart": chart_spec(
            "barh",
            labels,
            [
                {
                    "name": "Net impact, every block",
                    "values": [guard["any"]["net_impact"] for guard in guards],
                    "tone": "signed",
                },
                {
                    "name": "of which: trading less",
                    "values": [guard["any"]["volume"] for guard in guards],
                    "tone": "muted",
                },
                {
                    "name": "of which: choosing which signals",
                    "values": [guard["any"]["selection"] for guard in guards],
                    "tone": "signed",
                },
            ],
            y_label="net impact",
        ),
        "ablation": _ablation(book, filters, effects),
    }


def _ablation_stamp(filters: Filters) -> str:
    """An ablation requested from the page shows as pending at once (the request is kept
    in the cache by ``shadow.ablation``, not in the book)."""
    if filters.book is None:
        return ""
    try:
        return str(ablation_requested_at(book=filters.book))
    except Exception:  # the cache is down: the page will say so when it is built
        return "unknown"


PAGE = register(
    Page(
        name="guards",
        title="Guard effectiveness",
        template="analytics/pages/guards.html",
        build=build,
        path="guards/",
        order=30,
        default_period="all",
        filters=("period", "strategy", "symbol"),
        cache=Policy(extra=_ablation_stamp),
    )
)
