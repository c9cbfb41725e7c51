"""The learning engine's writes: recommendations from a book's judged guard curves
(``ThresholdRecommendation`` rows only), and applying or dismissing one. Applying saves
the guard configuration through ``signals.services.guard_config_save``, so its version
rises and its history names who applied it and when.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from analytics.learning.book import GuardCurve, guard_curves, threshold_params
from analytics.learning.curves import param_value, threshold_label
from analytics.models import ThresholdRecommendation
from signals.domain.guards import build_guard
from signals.models import Book, GuardConfig
from signals.services import guard_config_save

logger = logging.getLogger("analytics")

STORED = Decimal("0.00000001")


class RecommendationError(ValueError):
    """A recommendation that cannot be applied or dismissed; the message says why."""


def _stored(value: float | int | Decimal) -> Decimal:
    """``value`` as ThresholdRecommendation stores it (8 decimal places)."""
    return Decimal(str(value)).quantize(STORED)


@dataclass(frozen=True, slots=True)
class RecommendOutcome:
    """What one run did for one guard version: ``action`` is "created", "refreshed",
    "none" (the current threshold is the best supported one) or "skipped"."""

    guard: str
    action: str
    detail: str
    recommendation: ThresholdRecommendation | None = None


def _curve_json(curve: GuardCurve) -> list[dict[str, Any]]:
    return [
        {
            "threshold": p.threshold,
            "blocked": p.blocked,
            "samples": p.samples,
            "net_impact": str(_stored(p.net_impact)),
            "alone_samples": p.alone_samples,
            "alone_net_impact": str(_stored(p.alone_net_impact)),
            "later_samples": p.later_samples,
            "later_net_impact": str(_stored(p.later_net_impact)),
            "current": p.current,
        }
        for p in curve.points
    ]


def thresholds_recommend(*, book: Book) -> list[RecommendOutcome]:
    """Recommend a threshold for each active guard version of ``book`` whose
    configuration still runs that version. A new recommendation supersedes the older
    open ones of its configuration; the same proposal again refreshes the open row's
    figures. Never changes a configuration."""
    outcomes = []
    for curve in guard_curves(book=book):
        frozen = curve.book_guard
        if not frozen.active:
            continue
        if curve.config is None or not curve.config_is_current:
            now = f"v{curve.config.version}" if curve.config is not None else "deleted"
            outcomes.append(
                RecommendOutcome(
                    curve.label,
                    "skipped",
                    f"the configuration has moved on ({now}) since this book froze it",
                )
            )
            continue
        outcomes.append(_recommend_one(book, curve, curve.config))
    return outcomes


def _recommend_one(book: Book, curve: GuardCurve, config: GuardConfig) -> RecommendOutcome:
    current, best = curve.current_point, curve.recommended
    assert current is not None
    with transaction.atomic():
        # One writer per configuration at a time: a run racing another waits here.
        GuardConfig.objects.select_for_update().filter(pk=config.pk).first()
        open_rows = ThresholdRecommendation.objects.filter(
            guard_config=config, status=ThresholdRecommendation.Status.OPEN
        )
        if best is None:
            stale = open_rows.filter(book=book).update(
                status=ThresholdRecommendation.Status.SUPERSEDED
            )
            detail = (
                f"keep {curve.param} = {threshold_label(curve.current, curve.integral)}: "
                f"{curve.reason}"
            )
            if stale:
                detail += f" ({stale} older recommendation(s) superseded)"
            return RecommendOutcome(curve.label, "none", detail)
        values: dict[str, Any] = {
            "param": curve.param,
            "current_value": _stored(curve.current),
            "recommended_value": _stored(param_value(best.threshold, curve.integral)),
            "current_net_impact": _stored(current.net_impact),
            "recommended_net_impact": _stored(best.net_impact),
            "samples": best.samples,
            "out_of_sample_gain": _stored(curve.out_of_sample_gain),
            "q_value": curve.q_value,
            "share_blocked": curve.share(best),
            "reason": curve.reason,
            "curve": _curve_json(curve),
        }
        same = open_rows.filter(
            book=book,
            param=values["param"],
            current_value=values["current_value"],
            recommended_value=values["recommended_value"],
        ).first()
        if same is not None:
            ThresholdRecommendation.objects.filter(pk=same.pk).update(**values)
            same.refresh_from_db()
            row, action = same, "refreshed"
        else:
            open_rows.update(status=ThresholdRecommendation.Status.SUPERSEDED)
            row = ThresholdRecommendation.objects.create(book=book, guard_config=config, **values)
            action = "created"
    gain = best.net_impact - current.net_impact
    return RecommendOutcome(
        curve.label,
        action,
        f"{curve.param} {threshold_label(curve.current, curve.integral)} -> "
        f"{threshold_label(best.threshold, curve.integral)}: net impact {current.net_impact:.2f} -> "
        f"{best.net_impact:.2f} (+{gain:.2f}) over {best.samples} closed shadow trades; "
        f"{curve.reason}",
        row,
    )


def recommendation_apply(*, recommendation_id: int, user: Any) -> ThresholdRecommendation:
    """Save the recommended threshold into its guard configuration through
    ``guard_config_save`` (the version rises; the history names ``user``), and mark the
    recommendation applied with who, when and the version it made. Raises
    ``RecommendationError`` when it is no longer open or the configuration changed."""
    with transaction.atomic():
        rec = (
            ThresholdRecommendation.objects.select_for_update().filter(pk=recommendation_id).first()
        )
        if rec is None:
            raise RecommendationError("no such recommendation")
        if rec.status != ThresholdRecommendation.Status.OPEN:
            raise RecommendationError(f"this recommendation is {rec.status}, not open")
        config = GuardConfig.objects.select_for_update().get(pk=rec.guard_config_id)
        param = threshold_params().get(config.kind)
        if param != rec.param:
            raise RecommendationError(f"{config.name} is now a {config.kind} guard")
        guard = build_guard(config.kind, config.params)
        integral = isinstance(getattr(guard, param), int)
        if _stored(getattr(guard, param)) != rec.current_value:
            raise RecommendationError(
                f"{config.name} changed since: {param} is {getattr(guard, param)} now, "
                f"not {threshold_label(float(rec.current_value), integral)} (v{config.version})"
            )
        config.params = {**config.params, param: param_value(rec.recommended_value, integral)}
        config._history_user = user  # type: ignore[attr-defined]
        guard_config_save(config=config)
        rec.status = ThresholdRecommendation.Status.APPLIED
        rec.applied_at = timezone.now()
        rec.applied_by = user
        rec.applied_version = config.version
        rec.save(update_fields=["status", "applied_at", "applied_by", "applied_version"])
        # Other open proposals for this configuration were made against the old value.
        ThresholdRecommendation.objects.filter(
            guard_config=config, status=ThresholdRecommendation.Status.OPEN
        ).update(status=ThresholdRecommendation.Status.SUPERSEDED)
    logger.info(
        "[LEARNING] %s %s -> %s applied by %s: v%s",
        config.name,
        param,
        config.params[param],
        getattr(user, "username", user),
        config.version,
    )
    return rec


def recommendation_dismiss(*, recommendation_id: int) -> bool:
    """Mark an open recommendation dismissed; ``False`` when it was not open."""
    changed = ThresholdRecommendation.objects.filter(
        pk=recommendation_id, status=ThresholdRecommendation.Status.OPEN
    ).update(status=ThresholdRecommendation.Status.DISMISSED)
    return bool(changed)
