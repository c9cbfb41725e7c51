"""The learning engine: what each guard's numeric threshold would have been worth at
other values, from the observed values its past decisions recorded (nothing is re-run),
and a recommendation a person may apply (task ``analytics.recommend_thresholds``).

For one book and one guard configuration version, every decided signal carries this
guard's decision with its observed value. At a candidate threshold ``t`` the guard would
block the signals whose observed value meets its ``blocks_when`` comparison against
``t``; its **net impact at t** is minus the closed shadow P&L of those signals (positive:
blocking them would have saved money), the product's one sign convention.

The curve counts every signal the guard would block, whether or not another guard
blocked it too: the same first-order estimate as the guard page's "net impact, every
block" (and its ablation's first-order column), so at the current threshold the curve
is that figure to the cent. It judges the threshold on everything the guard sees,
independently of how the other guards happen to be set today. Each point also carries
the part no other guard blocked ("alone"): the only part of a change that would reach
the book's P&L with the other guards as they are. Both are first-order: a different
threshold changes which trades open, and with them later observed values, which only a
replay (or the guard page's ablation) measures.

Nothing changes by itself: the engine writes ``ThresholdRecommendation`` rows only;
``recommendation_apply`` (the learning page's Apply button, or the admin action) saves
the guard configuration through ``signals.services.guard_config_save``, so its version
rises and its history names who applied it and when.

The code by job: ``curves`` the arithmetic (pure), ``book`` reads a book's decisions into
judged curves, ``recommendations`` writes; the daily task is ``analytics.tasks``'s
``recommend_thresholds``. This package re-exports what the pages, views, admin and the
command use.
"""

from analytics.learning.book import (
    GuardCurve,
    guard_curves,
    max_block_share,
    min_samples,
    threshold_params,
    walk_forward_folds,
)
from analytics.learning.curves import (
    RULES,
    CurvePoint,
    Fold,
    Observations,
    best_point,
    candidate_thresholds,
    threshold_curve,
    threshold_label,
    walk_forward,
)
from analytics.learning.recommendations import (
    RecommendationError,
    RecommendOutcome,
    recommendation_apply,
    recommendation_dismiss,
    thresholds_recommend,
)

__all__ = [
    "RULES",
    "CurvePoint",
    "Fold",
    "GuardCurve",
    "Observations",
    "RecommendOutcome",
    "RecommendationError",
    "best_point",
    "candidate_thresholds",
    "guard_curves",
    "max_block_share",
    "min_samples",
    "recommendation_apply",
    "recommendation_dismiss",
    "threshold_curve",
    "threshold_label",
    "threshold_params",
    "thresholds_recommend",
    "walk_forward",
    "walk_forward_folds",
]
