"""The learning engine's arithmetic, pure (numpy and ``Decimal``; no database, no Django):
a guard's net impact at candidate thresholds from its sorted observations, the candidate
thresholds worth trying, the best supported one, and the expanding-window walk-forward
that judges a choice on later history. ``analytics.learning.book`` feeds it one query's
columns; the import contract in ``.importlinter`` keeps it free of Django.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np

MAX_CANDIDATES = 50
# Recommended float thresholds are kept to the places ThresholdRecommendation stores.
PLACES = 8
MIN_GAIN = Decimal("0.01")
ZERO = Decimal(0)
RULES = {
    ">=": "blocks when the observed value is at or above the threshold",
    ">": "blocks when the observed value is above the threshold",
    "<": "blocks when the observed value is below the threshold",
}


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


def time_chunks(count: int, folds: int) -> list[tuple[int, int]]:
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
    for start, end in time_chunks(n, folds)[1:]:
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


def blocks(observed: np.ndarray, threshold: np.ndarray, blocks_when: str, tol: float) -> Any:
    if blocks_when == ">=":
        return observed >= threshold
    if blocks_when == ">":
        return observed > threshold
    return observed < threshold * (1 - tol)


def with_later(point: CurvePoint, later: CurvePoint) -> CurvePoint:
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


def param_value(value: float | Decimal, integral: bool) -> int | float:
    return int(value) if integral else round(float(value), PLACES)


def threshold_label(value: float, integral: bool) -> str:
    if integral:
        return f"{int(value):,}"
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"
