"""A book's guard curves: one query reads every decision of its tunable guard versions,
``analytics.learning.curves`` does the arithmetic, and each curve is judged (walk-forward,
randomisation test, Benjamini-Hochberg across the book's guards) into what may be
recommended and why. Reads only; ``analytics.learning.recommendations`` writes.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Exists, OuterRef

from analytics import skill
from analytics.learning import histogram
from analytics.learning.curves import (
    MIN_GAIN,
    ZERO,
    CurvePoint,
    Fold,
    Observations,
    best_point,
    blocks,
    candidate_thresholds,
    param_value,
    threshold_curve,
    threshold_label,
    time_chunks,
    walk_forward,
    with_later,
)
from markets import admin_format
from shadow import rollups
from shadow.models import ShadowTrade
from signals.domain.guards import GUARDS, build_guard, validate_guard_config
from signals.models import Book, BookGuard, GuardConfig, GuardDecision


def threshold_params() -> dict[str, str]:
    """Per guard kind, the parameter its observed value is compared with (the guard
    class's ``tunable``; kinds with a fixed threshold have none)."""
    return {kind: cls.tunable for kind, cls in GUARDS.items() if cls.tunable}


def min_samples() -> int:
    """The fewest closed shadow trades a candidate needs (``GUARD_VERDICT_MIN_SAMPLES``)."""
    return int(getattr(settings, "GUARD_VERDICT_MIN_SAMPLES", 5))


def max_block_share() -> float:
    """The largest share of a guard's decided signals a recommended threshold may block
    (``LEARNING_MAX_BLOCK_SHARE``, default 0.5): past it, a "better" threshold is just
    trading less."""
    return float(getattr(settings, "LEARNING_MAX_BLOCK_SHARE", 0.5))


def walk_forward_folds() -> int:
    """How many test folds the walk-forward has (``LEARNING_FOLDS``, at least 3)."""
    return max(3, int(getattr(settings, "LEARNING_FOLDS", 3)))


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

    def curve_fields(self) -> dict[str, Any]:
        """What a ``GuardCurve`` of this guard version says about the guard itself."""
        return {
            "book_guard": self.copy,
            "config": self.copy.config,
            "param": self.param,
            "integral": self.integral,
            "unit": self.unit,
            "blocks_when": self.blocks_when,
            "current": self.current,
        }

    def accepts(self, value: float) -> bool:
        return _accepts(self.kind, self.copy.params, self.param, param_value(value, self.integral))


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


def row_limit() -> int:
    """Past this many decisions of its tunable guard versions (``LEARNING_ROW_LIMIT``,
    default 20,000) a book's curves are read from the guard histograms kept with the
    rollups (``analytics.learning.histogram``, ADR 0024) instead of one row per
    decision."""
    return int(getattr(settings, "LEARNING_ROW_LIMIT", 20_000))


def guard_curves(*, book: Book) -> list[GuardCurve]:
    """Every guard version of ``book`` with a numeric threshold, by name and version, with
    its curve, its walk-forward and what may be recommended. A fixed number of queries
    whatever the number of signals: the tunable guard versions, whether the rollups are
    built (``shadow.rollups.ensure_built``) and the decisions the guard histograms hold, then either one row per decision (numpy does the sums,
    ``_curves_from_rows``) or, past ``row_limit()`` decisions, two grouped reads of the
    histograms (``_curves_from_histogram``)."""
    tunables = _tunables(book)
    if not tunables:
        return []
    # The histograms must be of today's definitions to say how many decisions there are.
    rollups.ensure_built(book.pk)
    if histogram.decision_count(book.pk) > row_limit():
        return _curves_from_histogram(book, tunables)
    return _curves_from_rows(book, tunables)


def _curves_from_histogram(book: Book, tunables: list[_Tunable]) -> list[GuardCurve]:
    """The curves from the guard histograms: every threshold is a grid edge (or the
    current one), the walk-forward's chunks are cut at UTC day boundaries, and the
    randomisation test is its normal approximation; then the verdicts after
    Benjamini-Hochberg across the book's guards, as on the row path."""
    needed, share, folds = min_samples(), max_block_share(), walk_forward_folds()
    edges = [histogram.edges(tunable.copy) for tunable in tunables]
    sums = histogram.read(book.pk, [one for one in edges if one is not None], folds)
    curves = [
        _one_rolled_curve(tunable, sums[tunable.copy.pk], needed, share) for tunable in tunables
    ]
    q_values = skill.benjamini_hochberg([curve.p_value for curve in curves])
    return [_judged(curve, q) for curve, q in zip(curves, q_values, strict=True)]


def _one_rolled_curve(
    tunable: _Tunable, sums: histogram.Sums, needed: int, share: float
) -> GuardCurve:
    everything, later = slice(0, len(sums.decisions)), slice(1, len(sums.decisions))
    # Each fold asks again about the same grid edges: the guard's params checked once each.
    accepts = functools.cache(tunable.accepts)
    indices = histogram.candidates(sums, everything, tunable.current, accepts)
    points = histogram.curve(sums, everything, indices, tunable.current)
    later_points = histogram.curve(sums, later, indices, tunable.current)
    points = [
        with_later(point, later_point)
        for point, later_point in zip(points, later_points, strict=True)
    ]
    fold_results = histogram.walk_forward(
        sums, current=tunable.current, needed=needed, max_share=share, accepts=accepts
    )
    decided = int(sums.decisions.sum())
    best = best_point(points, needed=needed, decided=decided, max_share=share)
    trading_less = _trading_less(points, best, needed=needed, share=share, decided=decided)
    test = histogram.randomisation(sums, best.threshold) if best is not None else None
    later_day = sums.starts[1] if len(sums.starts) > 1 else None
    return GuardCurve(
        **tunable.curve_fields(),
        points=points,
        best=best,
        decided=decided,
        observed=decided - int(sums.decisions[:, 0].sum()),
        mismatches=sums.mismatches,
        needed=needed,
        folds=tuple(fold_results),
        later_from=datetime.combine(later_day, time(), tzinfo=UTC) if later_day else None,
        max_share=share,
        p_value=test.p_value if test is not None else None,
        trading_less=trading_less,
    )


def _trading_less(
    points: list[CurvePoint], best: CurvePoint | None, *, needed: int, share: float, decided: int
) -> CurvePoint | None:
    """Without the share limit, blocking every signal included: what trading less would
    'save', when it blocks more than ``share`` and beats ``best``."""
    unlimited = best_point(points, needed=needed)
    if (
        unlimited is not None
        and unlimited.blocked > share * decided
        and (best is None or unlimited.net_impact > best.net_impact)
    ):
        return unlimited
    return None


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
        replayed = blocks(observed, recorded, tunable.blocks_when, tunable.tolerance)
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
    chunks = time_chunks(len(mine), folds)
    later_start = chunks[1][0] if len(mine) else 0
    later = Observations.of(
        observed[later_start:], pnl[later_start:], closed[later_start:], others[later_start:]
    )
    later_points = threshold_curve(later, candidates, current=tunable.current, **rule)
    points = [
        with_later(point, later_point)
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
    trading_less = _trading_less(points, best, needed=needed, share=share, decided=decided)
    p_value = None
    if best is not None:
        # The pool: every decision of this guard with a closed shadow trade (the ones
        # without an observed value pass at any threshold).
        closed_rows = [r for r in decisions if _closed(r)]
        pool = np.array([float(r[5]) for r in closed_rows])
        seen = np.array([r[1] is not None for r in closed_rows], dtype=bool)
        values = np.array([float(r[1]) if r[1] is not None else 0.0 for r in closed_rows])
        at_best = seen & np.asarray(
            blocks(
                values,
                np.full(len(values), best.threshold),
                tunable.blocks_when,
                tunable.tolerance,
            ),
            dtype=bool,
        )
        test = skill.randomisation_test(pool, at_best, seed=[_seed(), tunable.copy.pk])
        p_value = test.p_value if test is not None else None
    return GuardCurve(
        **tunable.curve_fields(),
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
