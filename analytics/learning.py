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
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import numpy as np
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from analytics import skill
from analytics.models import ThresholdRecommendation
from markets import admin_format
from shadow.models import ShadowTrade
from signals.domain.guards import GUARDS, build_guard, validate_guard_config
from signals.models import Book, BookGuard, GuardConfig, GuardDecision
from signals.services import guard_config_save
from work.task_base import WorkTask

logger = logging.getLogger("analytics")


def threshold_params() -> dict[str, str]:
    """Per guard kind, the parameter its observed value is compared with (the guard
    class's ``tunable``; kinds with a fixed threshold have none)."""
    return {kind: cls.tunable for kind, cls in GUARDS.items() if cls.tunable}


MAX_CANDIDATES = 50
# Recommended float thresholds are kept to the places ThresholdRecommendation stores.
PLACES = 8
MIN_GAIN = Decimal("0.01")
STORED = Decimal("0.00000001")
ZERO = Decimal(0)
RULES = {
    ">=": "blocks when the observed value is at or above the threshold",
    ">": "blocks when the observed value is above the threshold",
    "<": "blocks when the observed value is below the threshold",
}


class RecommendationError(ValueError):
    """A recommendation that cannot be applied or dismissed; the message says why."""


def min_samples() -> int:
    """The fewest closed shadow trades a candidate needs (``GUARD_VERDICT_MIN_SAMPLES``)."""
    return int(getattr(settings, "GUARD_VERDICT_MIN_SAMPLES", 5))


# --- The curve: pure numpy over one query's columns -----------------------------------


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """The guard at one threshold: ``blocked`` signals (with an observed value) it would
    block, ``samples`` of them with a closed shadow trade, ``net_impact`` minus their
    shadow P&L (quote currency, exact); ``alone_*`` the same over the signals no other
    guard blocked."""

    threshold: float
    blocked: int
    samples: int
    net_impact: Decimal
    alone_samples: int
    alone_net_impact: Decimal
    current: bool = False
    # The same threshold over the later history only (the walk-forward's test folds).
    later_samples: int = 0
    later_net_impact: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Observations:
    """One guard version's decisions with an observed value, sorted by that value: the
    closed shadow P&L of each signal (``Decimal``, zero when not closed), whether it is
    closed, and whether another guard blocked the same signal."""

    observed: np.ndarray
    pnl: np.ndarray
    closed: np.ndarray
    others: np.ndarray

    @classmethod
    def of(
        cls,
        observed: Sequence[float] | np.ndarray,
        pnl: Sequence[Decimal | None] | np.ndarray,
        closed: Sequence[bool] | np.ndarray,
        others: Sequence[bool] | np.ndarray,
    ) -> Observations:
        values = np.asarray(observed, dtype=float)
        order = np.argsort(values, kind="stable")
        shut = np.asarray(closed, dtype=bool)[order]
        money = np.empty(len(values), dtype=object)
        money[:] = [p if p is not None else ZERO for p in pnl]
        money = money[order]
        money[~shut] = ZERO
        return cls(values[order], money, shut, np.asarray(others, dtype=bool)[order])


def _prefix(values: np.ndarray, zero: Any) -> np.ndarray:
    """Cumulative sums with a leading zero: ``out[i]`` is the sum of the first ``i``."""
    out = np.empty(len(values) + 1, dtype=object if zero is ZERO else int)
    out[0] = zero
    if len(values):
        out[1:] = np.cumsum(values)
    return out


def threshold_curve(
    data: Observations,
    candidates: Sequence[float],
    *,
    blocks_when: str,
    current: float | None = None,
    tolerance: float = 0.0,
) -> list[CurvePoint]:
    """The guard's figures at each candidate threshold (sorted, as given), from sorted
    observations: two binary searches and four prefix sums, no pass per candidate."""
    alone = ~data.others
    pnl_all = _prefix(data.pnl, ZERO)
    alone_pnl = data.pnl.copy()
    alone_pnl[data.others] = ZERO
    pnl_alone = _prefix(alone_pnl, ZERO)
    closed_all = _prefix(data.closed.astype(int), 0)
    closed_alone = _prefix((data.closed & alone).astype(int), 0)
    points = []
    n = len(data.observed)
    for t in candidates:
        if blocks_when == "<":
            # Blocked: the first ``end`` values (observed < t).
            start, end = 0, int(np.searchsorted(data.observed, t * (1 - tolerance), "left"))
        else:
            side: Literal["left", "right"] = "left" if blocks_when == ">=" else "right"
            start, end = int(np.searchsorted(data.observed, t, side)), n
        points.append(
            CurvePoint(
                threshold=t,
                blocked=end - start,
                samples=int(closed_all[end] - closed_all[start]),
                net_impact=-(pnl_all[end] - pnl_all[start]),
                alone_samples=int(closed_alone[end] - closed_alone[start]),
                alone_net_impact=-(pnl_alone[end] - pnl_alone[start]),
                current=current is not None and t == current,
            )
        )
    return points


def candidate_thresholds(
    observed: np.ndarray,
    *,
    current: float,
    integral: bool,
    blocks_when: str,
    limit: int = MAX_CANDIDATES,
) -> list[float]:
    """Thresholds worth trying: the distinct observed values (rounded towards where the
    blocked set changes for an integer parameter), or at most ``limit`` quantiles of
    them, and the current threshold; sorted."""
    values = np.unique(observed[np.isfinite(observed)])
    if integral:
        # Each whole number between two observed values blocks the same signals: keep the
        # one at the boundary, where the blocked set changes.
        values = np.unique(np.floor(values) if blocks_when == ">" else np.ceil(values))
    if len(values) > limit - 1:
        picks = np.quantile(values, _quantiles(limit), method="inverted_cdf")
        values = np.unique(picks)
    return _finish_candidates(values, current=current, integral=integral)


def _quantiles(limit: int) -> np.ndarray:
    """The quantiles the candidates are picked at among more than ``limit - 1`` values."""
    return np.linspace(0, 1, limit - 1)


def _finish_candidates(values: Any, *, current: float, integral: bool) -> list[float]:
    """The picked observed values as thresholds (whole numbers, or kept to ``PLACES``
    places), with the current threshold; sorted."""
    if integral:
        found = {float(int(v)) for v in values}
    else:
        found = {round(float(v), PLACES) for v in values}
    found.add(current)
    return sorted(found)


def best_point(
    points: Sequence[CurvePoint],
    *,
    needed: int,
    decided: int | None = None,
    max_share: float = 1.0,
) -> CurvePoint | None:
    """The candidate with the highest net impact among those resting on at least
    ``needed`` closed shadow trades, if it beats the current threshold by more than a
    cent; on a tie, the one nearest the current threshold. A threshold that would block
    all ``decided`` signals, or more than ``max_share`` of them, is never proposed: that
    is trading less (or switching trading off), not tuning a guard."""
    current = next((p for p in points if p.current), None)
    if current is None:
        return None
    eligible = [
        p
        for p in points
        if p.samples >= needed
        and not p.current
        and (decided is None or (p.blocked < decided and p.blocked <= max_share * decided))
    ]
    if not eligible:
        return None
    best = max(eligible, key=lambda p: (p.net_impact, -abs(p.threshold - current.threshold)))
    return best if best.net_impact - current.net_impact > MIN_GAIN else None


def max_block_share() -> float:
    """The largest share of a guard's decided signals a recommended threshold may block
    (``LEARNING_MAX_BLOCK_SHARE``, default 0.5): past it, a "better" threshold is just
    trading less."""
    return float(getattr(settings, "LEARNING_MAX_BLOCK_SHARE", 0.5))


def walk_forward_folds() -> int:
    """How many test folds the walk-forward has (``LEARNING_FOLDS``, at least 3)."""
    return max(3, int(getattr(settings, "LEARNING_FOLDS", 3)))


@dataclass(frozen=True, slots=True)
class Fold:
    """One walk-forward step: a threshold chosen on the decisions before ``test_from``
    (the expanding training window: ``train`` decisions) and judged on the next chunk
    (``test`` decisions, ``test_samples`` of them with a closed shadow trade) against
    the current threshold over the same chunk."""

    train: int
    test: int
    test_samples: int
    train_until: int  # index (in time order) of the first decision not trained on
    chosen: float
    chosen_net_impact: Decimal
    current_net_impact: Decimal

    @property
    def gain(self) -> Decimal:
        return self.chosen_net_impact - self.current_net_impact


def _time_chunks(count: int, folds: int) -> list[tuple[int, int]]:
    """``folds + 1`` contiguous chunks of ``count`` decisions in time order."""
    edges = np.linspace(0, count, folds + 2).round().astype(int)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(folds + 1)]


def walk_forward(
    *,
    observed: np.ndarray,
    pnl: np.ndarray,
    closed: np.ndarray,
    others: np.ndarray,
    decided_before: np.ndarray,
    current: float,
    blocks_when: str,
    tolerance: float,
    integral: bool,
    needed: int,
    max_share: float,
    folds: int,
    accepts: Any = None,
) -> list[Fold]:
    """Expanding-window walk-forward over one guard version's observed decisions in
    time order: for each of ``folds`` steps, the best threshold on every decision before
    the step (``best_point`` on that history alone, the current threshold when none
    beats it) is judged on the step's chunk, which it never saw. ``decided_before[i]``
    counts the guard's decisions (observed or not) before observed decision ``i``, so
    the share limit uses the training window's own count."""
    n = len(observed)
    result = []
    for start, end in _time_chunks(n, folds)[1:]:
        if start == 0 or end <= start:
            continue
        train = Observations.of(observed[:start], pnl[:start], closed[:start], others[:start])
        candidates = candidate_thresholds(
            train.observed, current=current, integral=integral, blocks_when=blocks_when
        )
        if accepts is not None:
            candidates = [t for t in candidates if accepts(t)]
        curve = threshold_curve(
            train, candidates, blocks_when=blocks_when, current=current, tolerance=tolerance
        )
        best = best_point(
            curve, needed=needed, decided=int(decided_before[start]), max_share=max_share
        )
        chosen = best.threshold if best is not None else current
        test = Observations.of(
            observed[start:end], pnl[start:end], closed[start:end], others[start:end]
        )
        judged = {
            p.threshold: p
            for p in threshold_curve(
                test,
                sorted({chosen, current}),
                blocks_when=blocks_when,
                tolerance=tolerance,
            )
        }
        result.append(
            Fold(
                train=start,
                test=end - start,
                test_samples=int(np.count_nonzero(closed[start:end])),
                train_until=start,
                chosen=chosen,
                chosen_net_impact=judged[chosen].net_impact,
                current_net_impact=judged[current].net_impact,
            )
        )
    return result


# --- Reading the book ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GuardCurve:
    """One guard configuration version of a book with its threshold curve.

    ``config`` is the guard configuration it was frozen from (``None`` once deleted);
    ``current`` its own threshold; ``decided`` its decisions, ``observed`` those with an
    observed value (the others pass at any threshold); ``mismatches`` decisions whose recorded verdict the
    comparison at their recorded threshold does not reproduce (should be zero).
    """

    book_guard: BookGuard
    config: GuardConfig | None
    param: str
    integral: bool
    unit: str
    blocks_when: str
    current: float
    points: list[CurvePoint]
    best: CurvePoint | None
    decided: int
    observed: int
    mismatches: int
    needed: int
    # Walk-forward (thresholds chosen on earlier history, judged on later history).
    folds: tuple[Fold, ...] = ()
    later_from: datetime | None = None
    max_share: float = 1.0
    # The randomisation test of ``best`` against blocking as many signals at random, and
    # its Benjamini-Hochberg q-value across the book's guards.
    p_value: float | None = None
    q_value: float | None = None
    # A threshold better in sample that blocks more than ``max_share``: trading less.
    trading_less: CurvePoint | None = None
    # ``best`` when it wins out of sample, beats random and keeps to the share; else None.
    recommended: CurvePoint | None = None
    reason: str = ""

    @property
    def out_of_sample_gain(self) -> Decimal:
        """What the walk-forward's chosen thresholds gained over the current one, summed
        over the test folds (money no fold was tuned on)."""
        return sum((fold.gain for fold in self.folds), ZERO)

    def share(self, point: CurvePoint) -> float | None:
        """The share of the guard's decided signals ``point`` blocks."""
        return point.blocked / self.decided if self.decided else None

    @property
    def current_point(self) -> CurvePoint | None:
        return next((p for p in self.points if p.current), None)

    @property
    def label(self) -> str:
        return f"{self.book_guard.name} v{self.book_guard.config_version}"

    @property
    def config_is_current(self) -> bool:
        """The configuration still runs what this book froze (a recommendation applies)."""
        return (
            self.config is not None
            and self.config.kind == self.book_guard.kind
            and self.config.version == self.book_guard.config_version
        )


def _observation_rows(book: Book) -> list[tuple[Any, ...]]:
    """One query: per decision of a tunable guard version of ``book``, in time order:
    (book guard, observed, verdict, recorded threshold, shadow status, shadow P&L,
    blocked by another guard, signal candle time)."""
    another_guard_blocked = GuardDecision.objects.filter(
        signal_id=OuterRef("signal_id"), verdict=GuardDecision.Verdict.BLOCK
    ).exclude(guard=OuterRef("guard"))
    return list(
        GuardDecision.objects.filter(
            signal__book=book,
            book_guard__isnull=False,
            book_guard__kind__in=list(threshold_params()),
        )
        .annotate(others=Exists(another_guard_blocked))
        .order_by("book_guard_id", "signal__candle_time", "signal_id")
        .values_list(
            "book_guard_id",
            "observed_value",
            "verdict",
            "threshold",
            "signal__shadow_trade__status",
            "signal__shadow_trade__pnl",
            "others",
            "signal__candle_time",
        )
    )


def _blocks(observed: np.ndarray, threshold: np.ndarray, blocks_when: str, tol: float) -> Any:
    if blocks_when == ">=":
        return observed >= threshold
    if blocks_when == ">":
        return observed > threshold
    return observed < threshold * (1 - tol)


def _decimal(value: Any) -> Decimal:
    # SQLite hands back floats for sums and sometimes for numerics.
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclass(frozen=True, slots=True)
class _Tunable:
    """A tunable guard version of the book as the curves read it."""

    copy: BookGuard
    kind: str
    param: str
    blocks_when: str
    unit: str
    current: float
    integral: bool
    tolerance: float

    @property
    def rounding(self) -> str:
        """How its observed values become candidates: to the boundary whole number."""
        if not self.integral:
            return "none"
        return "floor" if self.blocks_when == ">" else "ceil"

    def accepts(self, value: float) -> bool:
        return _accepts(self.kind, self.copy.params, self.param, _param_value(value, self.integral))


def _tunables(book: Book) -> list[_Tunable]:
    """The book's guard versions with a numeric threshold, by name and version (one query)."""
    tunables = []
    frozen = (
        BookGuard.objects.filter(book=book, kind__in=list(threshold_params()))
        .select_related("config")
        .order_by("name", "config_version")
    )
    for copy in frozen:
        kind, param = copy.kind, threshold_params()[copy.kind]
        cls = GUARDS[kind]
        try:
            guard = build_guard(kind, copy.params)
        except ValueError:
            continue
        tunables.append(
            _Tunable(
                copy=copy,
                kind=kind,
                param=param,
                blocks_when=cls.blocks_when,
                unit=cls.unit,
                current=float(getattr(guard, param)),
                integral=isinstance(getattr(guard, param), int),
                tolerance=cls.tolerance,
            )
        )
    return tunables


def guard_curves(*, book: Book) -> list[GuardCurve]:
    """Every guard version of ``book`` with a numeric threshold, by name and version, with
    its curve, its walk-forward and what may be recommended. Two queries whatever the
    number of signals: the tunable guard versions, and one row per decision (numpy does
    the sums, ``_curves_from_rows``)."""
    tunables = _tunables(book)
    if not tunables:
        return []
    return _curves_from_rows(book, tunables)


def _curves_from_rows(book: Book, tunables: list[_Tunable]) -> list[GuardCurve]:
    """The curves from one row per decision (one query), summed with numpy; the
    walk-forward and the randomisation test of each best threshold; then the verdicts
    after Benjamini-Hochberg across the book's guards."""
    rows = _observation_rows(book)
    grouped: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    needed, share, folds = min_samples(), max_block_share(), walk_forward_folds()
    curves = [
        _one_curve(tunable, grouped.get(tunable.copy.pk, []), needed, share, folds)
        for tunable in tunables
    ]
    q_values = skill.benjamini_hochberg([curve.p_value for curve in curves])
    return [_judged(curve, q) for curve, q in zip(curves, q_values, strict=True)]


def _one_curve(
    tunable: _Tunable, decisions: list[tuple[Any, ...]], needed: int, share: float, folds: int
) -> GuardCurve:
    # Nothing observed (no stop-out yet, too few candles): passes at any threshold.
    mine = [r for r in decisions if r[1] is not None]
    observed = np.array([float(r[1]) for r in mine])
    pnl = [_decimal(r[5]) if r[5] is not None else None for r in mine]
    closed = np.array([r[4] == ShadowTrade.Status.CLOSED and r[5] is not None for r in mine])
    others = np.array([bool(r[6]) for r in mine])
    data = Observations.of(observed, pnl, closed, others)
    mismatches = 0
    if mine:
        recorded = np.array([float(r[3]) if r[3] is not None else np.nan for r in mine])
        blocked = np.array([r[2] == GuardDecision.Verdict.BLOCK for r in mine])
        replayed = _blocks(observed, recorded, tunable.blocks_when, tunable.tolerance)
        mismatches = int(np.count_nonzero(replayed != blocked))
    candidates = [
        t
        for t in candidate_thresholds(
            data.observed,
            current=tunable.current,
            integral=tunable.integral,
            blocks_when=tunable.blocks_when,
        )
        if tunable.accepts(t)
    ]
    rule: dict[str, Any] = {"blocks_when": tunable.blocks_when, "tolerance": tunable.tolerance}
    points = threshold_curve(data, candidates, current=tunable.current, **rule)
    # The later history: every chunk after the first, where the walk-forward judges.
    chunks = _time_chunks(len(mine), folds)
    later_start = chunks[1][0] if len(mine) else 0
    later = Observations.of(
        observed[later_start:], pnl[later_start:], closed[later_start:], others[later_start:]
    )
    later_points = threshold_curve(later, candidates, current=tunable.current, **rule)
    points = [
        _with_later(point, later_point)
        for point, later_point in zip(points, later_points, strict=True)
    ]
    # How many of the guard's decisions (observed or not) came before each observed one.
    observed_at = [i for i, r in enumerate(decisions) if r[1] is not None]
    decided_before = np.array([*observed_at, len(decisions)], dtype=int)
    fold_results = walk_forward(
        observed=observed,
        pnl=np.array(pnl, dtype=object),
        closed=closed,
        others=others,
        decided_before=decided_before,
        current=tunable.current,
        integral=tunable.integral,
        needed=needed,
        max_share=share,
        folds=folds,
        accepts=tunable.accepts,
        **rule,
    )
    decided = len(decisions)
    best = best_point(points, needed=needed, decided=decided, max_share=share)
    # Without the share limit, blocking every signal included: what trading less would 'save'.
    unlimited = best_point(points, needed=needed)
    trading_less = (
        unlimited
        if unlimited is not None
        and unlimited.blocked > share * decided
        and (best is None or unlimited.net_impact > best.net_impact)
        else None
    )
    p_value = None
    if best is not None:
        # The pool: every decision of this guard with a closed shadow trade (the ones
        # without an observed value pass at any threshold).
        closed_rows = [r for r in decisions if _closed(r)]
        pool = np.array([float(r[5]) for r in closed_rows])
        seen = np.array([r[1] is not None for r in closed_rows], dtype=bool)
        values = np.array([float(r[1]) if r[1] is not None else 0.0 for r in closed_rows])
        at_best = seen & np.asarray(
            _blocks(
                values,
                np.full(len(values), best.threshold),
                tunable.blocks_when,
                tunable.tolerance,
            ),
            dtype=bool,
        )
        test = skill.randomisation_test(pool, at_best, seed=[_seed(), tunable.copy.pk])
        p_value = test.p_value if test is not None else None
    copy = tunable.copy
    return GuardCurve(
        book_guard=copy,
        config=copy.config,
        param=tunable.param,
        integral=tunable.integral,
        unit=tunable.unit,
        blocks_when=tunable.blocks_when,
        current=tunable.current,
        points=points,
        best=best,
        decided=decided,
        observed=len(mine),
        mismatches=mismatches,
        needed=needed,
        folds=tuple(fold_results),
        later_from=mine[later_start][7] if later_start < len(mine) else None,
        max_share=share,
        p_value=p_value,
        trading_less=trading_less,
    )


def _closed(row: tuple[Any, ...]) -> bool:
    return row[4] == ShadowTrade.Status.CLOSED and row[5] is not None


def _seed() -> int:
    return int(getattr(settings, "GUARD_STATS_SEED", skill.DEFAULT_SEED))


def _with_later(point: CurvePoint, later: CurvePoint) -> CurvePoint:
    return CurvePoint(
        threshold=point.threshold,
        blocked=point.blocked,
        samples=point.samples,
        net_impact=point.net_impact,
        alone_samples=point.alone_samples,
        alone_net_impact=point.alone_net_impact,
        current=point.current,
        later_samples=later.samples,
        later_net_impact=later.net_impact,
    )


def _judged(curve: GuardCurve, q_value: float | None) -> GuardCurve:
    """``curve`` with its q-value, what may be recommended and why (or why not)."""
    best, current = curve.best, curve.current_point
    label = lambda v: threshold_label(v, curve.integral)  # noqa: E731
    recommended, reason, less = None, "", ""
    limit = admin_format.compact(curve.max_share * 100, "%")
    if curve.trading_less is not None:
        point = curve.trading_less
        share = curve.share(point) or 0.0
        less = (
            f"{curve.param} = {label(point.threshold)} would have saved more in sample "
            f"({admin_format.signed_money(point.net_impact)}), but it blocks {point.blocked} of {curve.decided} "
            f"signals ({admin_format.percent(share)}, over the {limit} limit): this amounts to trading less, "
            "not to a better guard"
        )
    if best is None or current is None:
        reason = (
            f"no threshold blocking at most {limit} of the signals, with at least "
            f"{curve.needed} closed shadow trades, beats the current one by more than a cent"
        )
    elif not curve.folds:
        reason = "too few decisions to judge a threshold on later history"
    elif curve.out_of_sample_gain <= MIN_GAIN:
        reason = (
            f"{curve.param} = {label(best.threshold)} is better in sample, but thresholds "
            f"chosen on earlier history did not beat the current one on later history "
            f"({admin_format.signed_money(curve.out_of_sample_gain)} over {len(curve.folds)} folds)"
        )
    elif q_value is None or q_value >= skill.FDR_LEVEL:
        reason = (
            f"{curve.param} = {label(best.threshold)} wins out of sample, but blocking as "
            f"many signals at random does as well too often (p {curve.p_value or 1:.3f}, "
            f"q {q_value or 1:.3f} across the book's guards)"
        )
    else:
        recommended = best
        reason = (
            f"{curve.param} = {label(best.threshold)} wins out of sample "
            f"({admin_format.signed_money(curve.out_of_sample_gain)} over {len(curve.folds)} folds), "
            "beats random "
            f"blocking (q {q_value:.3f}) and blocks {admin_format.percent(curve.share(best) or 0)} "
            "of the signals"
        )
    if less:
        reason = f"{less}. Within the {limit} limit: {reason}"
    return dataclasses.replace(curve, q_value=q_value, recommended=recommended, reason=reason)


def _accepts(kind: str, params: dict[str, Any], param: str, value: int | float) -> bool:
    """Whether the guard can run with ``param`` at ``value`` (e.g. at least one stop-out)."""
    try:
        validate_guard_config(kind, {**params, param: value})
    except ValueError:
        return False
    return True


def _stored(value: float | int | Decimal) -> Decimal:
    """``value`` as ThresholdRecommendation stores it (8 decimal places)."""
    return Decimal(str(value)).quantize(STORED)


def _param_value(value: float | Decimal, integral: bool) -> int | float:
    return int(value) if integral else round(float(value), PLACES)


# --- Writes: recommending, applying, dismissing ----------------------------------------


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
            "recommended_value": _stored(_param_value(best.threshold, curve.integral)),
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


def threshold_label(value: float, integral: bool) -> str:
    if integral:
        return f"{int(value):,}"
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


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
        config.params = {**config.params, param: _param_value(rec.recommended_value, integral)}
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


@shared_task(name="analytics.recommend_thresholds", base=WorkTask)
def recommend_thresholds() -> dict[str, int]:
    """Recommend thresholds for every live book (a daily beat entry); changes no
    configuration. Returns how many recommendations each action produced."""
    from analytics.selectors import live_books

    counts: dict[str, int] = {}
    for book in live_books():
        for outcome in thresholds_recommend(book=book):
            counts[outcome.action] = counts.get(outcome.action, 0) + 1
            logger.info(
                "[LEARNING] %s %s: %s: %s", book.name, outcome.guard, outcome.action, outcome.detail
            )
    return counts
