"""Learning: per guard with a numeric threshold, the net impact it would have had at
other thresholds (from the observed values its decisions recorded, nothing re-run), with
the closed shadow trades behind each point; the open recommendation with its Apply
button, and the recommendations applied or dismissed before (``analytics.learning``)."""

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Max, Q, Sum
from django.urls import reverse

from analytics import skill
from analytics.charts import chart_spec
from analytics.filters import Filters
from analytics.guard_skill import book_expectancy
from analytics.learning import (
    RULES,
    CurvePoint,
    Fold,
    GuardCurve,
    guard_curves,
    max_block_share,
    min_samples,
    threshold_label,
    walk_forward_folds,
)
from analytics.models import ThresholdRecommendation
from analytics.numbers import cents, probability, rate
from analytics.page_cache import Policy
from analytics.pages import Page, register
from analytics.pages.guards import expectancy_data
from analytics.selectors import book_quote_currency
from markets import admin_format
from signals.models import GuardConfig

CONVENTION = (
    "Net impact is minus the shadow P&L of the signals a guard blocks (or would block): "
    "positive means blocking them saved money, negative means it cost money."
)
ATTRIBUTION = (
    "Each point counts every signal the guard would block, even one another guard blocked "
    "too: the guard page's first-order net impact, so at the current threshold it is the "
    "same figure. The \u201cblocked alone\u201d line counts only signals no other guard "
    "blocked: the part of a change that would reach the book's P&L with the other guards "
    "as they are. Both are first-order estimates: a different threshold would also change "
    "which trades opened later."
)
HISTORY_LIMIT = 50


def _unit(unit: str, currency: str) -> str:
    return currency if unit == "quote" else unit


def _one(unit: str, value: float) -> str:
    """``unit`` after ``value``: "1 position", "2 positions"."""
    counted = ("positions", "stop-outs", "minutes", "timeframes")
    return unit[:-1] if value == 1 and unit in counted else unit


def _point(point: CurvePoint, curve: GuardCurve) -> dict[str, Any]:
    share = curve.share(point)
    return {
        "threshold": int(point.threshold) if curve.integral else point.threshold,
        "label": threshold_label(point.threshold, curve.integral),
        "blocked": point.blocked,
        "share_blocked": rate(share),
        "over_share": share is not None and share > curve.max_share,
        "samples": point.samples,
        "net_impact": cents(point.net_impact),
        "later_samples": point.later_samples,
        "later_net_impact": cents(point.later_net_impact),
        "alone_samples": point.alone_samples,
        "alone_net_impact": cents(point.alone_net_impact),
        "current": point.current,
        "enough": point.samples >= curve.needed,
        "best": curve.best is not None and point.threshold == curve.best.threshold,
        "recommended": curve.recommended is not None
        and point.threshold == curve.recommended.threshold,
    }


def _fold(fold: Fold, curve: GuardCurve) -> dict[str, Any]:
    return {
        "train": fold.train,
        "test": fold.test,
        "test_samples": fold.test_samples,
        "chosen": threshold_label(fold.chosen, curve.integral),
        "chosen_net_impact": cents(fold.chosen_net_impact),
        "current_net_impact": cents(fold.current_net_impact),
        "gain": cents(fold.gain),
    }


def _recommendation(rec: ThresholdRecommendation, integral: bool | None) -> dict[str, Any]:
    whole = bool(integral)
    config = rec.guard_config
    gain = rec.recommended_net_impact - rec.current_net_impact
    return {
        "id": rec.pk,
        "guard": config.name,
        "param": rec.param,
        "current_value": float(rec.current_value),
        "recommended_value": float(rec.recommended_value),
        "current_label": threshold_label(float(rec.current_value), whole),
        "recommended_label": threshold_label(float(rec.recommended_value), whole),
        "current_net_impact": cents(rec.current_net_impact),
        "recommended_net_impact": cents(rec.recommended_net_impact),
        "gain": cents(gain),
        "samples": rec.samples,
        "out_of_sample_gain": cents(rec.out_of_sample_gain),
        "q_value": rec.q_value,
        "share_blocked": rate(rec.share_blocked),
        "reason": rec.reason,
        "status": rec.status,
        "created_at": rec.created_at,
        "applied_at": rec.applied_at,
        "applied_by": rec.applied_by.get_username() if rec.applied_by is not None else None,
        "applied_version": rec.applied_version,
        "config_version": config.version,
        "apply_url": reverse("analytics:apply-recommendation", args=[rec.pk]),
        "confirm": (
            f"Applying saves {rec.param} = {threshold_label(float(rec.recommended_value), whole)} as "
            f"version {config.version + 1} of {config.name} (now v{config.version}), "
            "recorded with your name in its history."
        ),
    }


def _guard(
    curve: GuardCurve, currency: str, open_recs: dict[int, ThresholdRecommendation]
) -> dict[str, Any]:
    frozen = curve.book_guard
    unit = _unit(curve.unit, currency)
    points = [_point(point, curve) for point in curve.points]
    labels = [
        f"{p['label']}{' (now)' if p['current'] else ''} \u00b7 "
        f"{admin_format.percent(p['share_blocked'] or 0)} blocked"
        for p in points
    ]
    current = next((point for point in points if point["current"]), None)
    best = next((point for point in points if point["best"]), None)
    config = curve.config
    rec = (
        open_recs.get(config.pk)
        if config is not None and curve.config_is_current and frozen.active
        else None
    )
    current_label = threshold_label(curve.current, curve.integral)
    return {
        "book_guard_id": frozen.pk,
        "name": frozen.name,
        "version": frozen.config_version,
        "label": curve.label,
        "kind": frozen.kind,
        "active": frozen.active,
        "param": curve.param,
        "unit": unit,
        "blocks_when": curve.blocks_when,
        "rule": RULES[curve.blocks_when],
        "current_threshold": int(curve.current) if curve.integral else curve.current,
        "current_label": current_label,
        "current_unit": _one(unit, curve.current),
        "decided": curve.decided,
        "observed": curve.observed,
        "mismatches": curve.mismatches,
        "current": current,
        "best": best,
        "points": points,
        "folds": [_fold(fold, curve) for fold in curve.folds],
        "later_from": curve.later_from,
        "out_of_sample_gain": cents(curve.out_of_sample_gain) if curve.folds else None,
        "p_value": probability(curve.p_value),
        "q_value": probability(curve.q_value),
        "recommendable": curve.recommended is not None,
        "reason": curve.reason,
        "trading_less": (
            _point(curve.trading_less, curve) if curve.trading_less is not None else None
        ),
        "config": (
            {
                "id": config.pk,
                "name": config.name,
                "version": config.version,
                "runs_this_version": curve.config_is_current,
                "history_url": reverse("admin:signals_guardconfig_history", args=[config.pk]),
            }
            if config is not None
            else None
        ),
        "recommendation": _recommendation(rec, curve.integral) if rec is not None else None,
        "chart": chart_spec(
            "line",
            labels,
            [
                {
                    "name": "Net impact, every block",
                    "values": [point["net_impact"] for point in points],
                    "tone": "neutral",
                },
                {
                    "name": "Net impact, later history only (out of sample)",
                    "values": [point["later_net_impact"] for point in points],
                    "tone": "muted",
                },
                {
                    "name": f"Current threshold ({current_label} {_one(unit, curve.current)})",
                    "values": [
                        point["net_impact"] if point["current"] else None for point in points
                    ],
                    "tone": "neutral",
                    "marker": True,
                },
            ],
            y_label=f"net impact ({currency})",
        ),
        "chart_id": f"curve-{frozen.pk}",
        "chart_caption": (
            f"Net impact had the threshold been each value along the bottom ({unit}, with "
            "the share of signals it blocks), over all history and, in grey, over the "
            "later history the walk-forward judges on. Above zero: blocking would have "
            "saved money. The amber diamond is the current threshold."
        ),
        "chart_label": (
            f"Net impact of {curve.label} at {len(points)} thresholds from "
            f"{labels[0] if labels else '-'} to {labels[-1] if labels else '-'} {unit}; "
            f"current threshold {current_label} {_one(unit, curve.current)}"
        ),
    }


def build(filters: Filters) -> dict[str, Any]:
    book = filters.book
    assert book is not None
    currency = book_quote_currency(book=book)
    curves = guard_curves(book=book)
    expectancy = book_expectancy(book=book)
    recs = list(
        ThresholdRecommendation.objects.filter(book=book)
        .exclude(status=ThresholdRecommendation.Status.SUPERSEDED)
        .select_related("guard_config", "applied_by")
        .order_by("-created_at", "-id")[: HISTORY_LIMIT + 1]
    )
    # One more than shown tells whether the history is cut short (no count query).
    history_complete = len(recs) <= HISTORY_LIMIT
    recs = recs[:HISTORY_LIMIT]
    open_recs: dict[int, ThresholdRecommendation] = {}
    for rec in recs:
        if rec.status == ThresholdRecommendation.Status.OPEN:
            open_recs.setdefault(rec.guard_config_id, rec)
    integral = {curve.config.pk: curve.integral for curve in curves if curve.config is not None}
    guards = [_guard(curve, currency, open_recs) for curve in curves]
    return {
        "convention": CONVENTION,
        "attribution": ATTRIBUTION,
        "min_samples": min_samples(),
        "max_share": max_block_share(),
        "folds": walk_forward_folds(),
        "fdr_level": skill.FDR_LEVEL,
        "expectancy": expectancy_data(expectancy),
        "guards": guards,
        "open": sum(1 for guard in guards if guard["recommendation"] is not None),
        "history": [
            _recommendation(rec, integral.get(rec.guard_config_id))
            for rec in recs
            if rec.status != ThresholdRecommendation.Status.OPEN
        ],
        "history_complete": history_complete,
    }


def _learning_stamp(filters: Filters) -> str:
    """The book's threshold recommendations and the guard configurations."""
    recs = ThresholdRecommendation.objects.filter(book=filters.book).aggregate(
        n=Count("id"),
        last=Max("id"),
        last_applied=Max("applied_at"),
        versions=Sum("applied_version"),
        **{
            f"status_{status}": Count("id", filter=Q(status=status))
            for status in ThresholdRecommendation.Status.values
        },
    )
    configs = GuardConfig.objects.aggregate(n=Count("id"), last=Max("updated_at"))
    return json.dumps([recs, configs], sort_keys=True, cls=DjangoJSONEncoder)


PAGE = register(
    Page(
        name="learning",
        title="Learning",
        template="analytics/pages/learning.html",
        build=build,
        path="learning/",
        order=80,
        default_period="all",
        cache=Policy(extra=_learning_stamp),
    )
)
