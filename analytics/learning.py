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

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np
from celery import shared_task
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from analytics.models import ThresholdRecommendation
from shadow.models import ShadowTrade
from signals.domain.guards import GUARDS, build_guard, validate_guard_config
from signals.models import Book, BookGuard, GuardConfig, GuardDecision
from signals.services import guard_config_save

logger = logging.getLogger("analytics")

# The parameter each guard compares its observed value with. duplicate_position has a
# fixed threshold (one position) and nothing to tune.
THRESHOLD_PARAMS: dict[str, str] = {
    "max_open_positions": "max_open",
    "max_open_per_symbol": "max_open",
    "cooldown_after_stop": "minutes",
    "cooldown_after_close": "minutes",
    "stoploss_guard": "stop_outs",
    "max_drawdown": "max_drawdown",
    "daily_loss_limit": "max_loss",
    "low_profit_markets": "min_profit_pct",
    "volatility_ceiling": "max_atr_pct",
    "liquidity_floor": "min_quote_volume",
    "stale_data": "max_timeframes",
    "min_reward_risk": "min_ratio",
}
# min_reward_risk passes a ratio a few ulps under its minimum (prices at exact ATR
# multiples); the replayed comparison must forgive the same amount.
RELATIVE_TOLERANCE: dict[str, float] = {"min_reward_risk": 1e-9}
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
        observed: Sequence[float],
        pnl: Sequence[Decimal | None],
        closed: Sequence[bool],
        others: Sequence[bool],
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
    points: Sequence[CurvePoint], *, needed: int, decided: int | None = None
) -> CurvePoint | None:
    """The candidate with the highest net impact among those resting on at least
    ``needed`` closed shadow trades, if it beats the current threshold by more than a
    cent; on a tie, the one nearest the current threshold. A threshold that would block
    all ``decided`` signals is never proposed: that is switching trading off, not tuning
    a guard."""
    current = next((p for p in points if p.current), None)
    if current is None:
        return None
    eligible = [
        p
        for p in points
        if p.samples >= needed and not p.current and (decided is None or p.blocked < decided)
    ]
    if not eligible:
        return None
    best = max(eligible, key=lambda p: (p.net_impact, -abs(p.threshold - current.threshold)))
    return best if best.net_impact - current.net_impact > MIN_GAIN else None


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
    """One query: per decision of a tunable guard version of ``book``: (book guard, observed, verdict, recorded threshold, shadow status, shadow
    P&L, blocked by another guard)."""
    another_guard_blocked = GuardDecision.objects.filter(
        signal_id=OuterRef("signal_id"), verdict=GuardDecision.Verdict.BLOCK
    ).exclude(guard=OuterRef("guard"))
    return list(
        GuardDecision.objects.filter(
            signal__book=book,
            book_guard__isnull=False,
            book_guard__kind__in=list(THRESHOLD_PARAMS),
        )
        .annotate(others=Exists(another_guard_blocked))
        .order_by("book_guard_id")
        .values_list(
            "book_guard_id",
            "observed_value",
            "verdict",
            "threshold",
            "signal__shadow_trade__status",
            "signal__shadow_trade__pnl",
            "others",
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
        BookGuard.objects.filter(book=book, kind__in=list(THRESHOLD_PARAMS))
        .select_related("config")
        .order_by("name", "config_version")
    )
    for copy in frozen:
        kind, param = copy.kind, THRESHOLD_PARAMS[copy.kind]
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
                tolerance=RELATIVE_TOLERANCE.get(kind, 0.0),
            )
        )
    return tunables


def _curve(
    tunable: _Tunable,
    points: list[CurvePoint],
    *,
    decided: int,
    observed: int,
    mismatches: int,
    needed: int,
) -> GuardCurve:
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
        best=best_point(points, needed=needed, decided=decided),
        decided=decided,
        observed=observed,
        mismatches=mismatches,
        needed=needed,
    )


def guard_curves(*, book: Book) -> list[GuardCurve]:
    """Every guard version of ``book`` with a numeric threshold, by name and version, with
    its curve and best candidate. Two queries whatever the number of signals (a third,
    rarely, see ``_curves_in_sql``).

    On PostgreSQL the decisions are summed in the database per bucket between candidate
    thresholds (``_curves_in_sql``); elsewhere one row per decision comes back and numpy
    does the sums (``_curves_from_rows``). Both give the same figures to the last digit."""
    tunables = _tunables(book)
    if not tunables:
        return []
    if connection.vendor == "postgresql":
        curves = _curves_in_sql(book, tunables)
        if curves is not None:
            return curves
    return _curves_from_rows(book, tunables)


def _curves_from_rows(book: Book, tunables: list[_Tunable]) -> list[GuardCurve]:
    """The curves from one row per decision (one query), summed with numpy."""
    rows = _observation_rows(book)
    grouped: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    needed = min_samples()
    curves = []
    for tunable in tunables:
        decisions = grouped.get(tunable.copy.pk, [])
        # Nothing observed (no stop-out yet, too few candles): passes at any threshold.
        mine = [r for r in decisions if r[1] is not None]
        data = Observations.of(
            [float(r[1]) for r in mine],
            [_decimal(r[5]) if r[5] is not None else None for r in mine],
            [r[4] == ShadowTrade.Status.CLOSED and r[5] is not None for r in mine],
            [bool(r[6]) for r in mine],
        )
        mismatches = 0
        if mine:
            recorded = np.array([float(r[3]) if r[3] is not None else np.nan for r in mine])
            blocked = np.array([r[2] == GuardDecision.Verdict.BLOCK for r in mine])
            observed = np.array([float(r[1]) for r in mine])
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
        points = threshold_curve(
            data,
            candidates,
            blocks_when=tunable.blocks_when,
            current=tunable.current,
            tolerance=tunable.tolerance,
        )
        curves.append(
            _curve(
                tunable,
                points,
                decided=len(decisions),
                observed=len(mine),
                mismatches=mismatches,
                needed=needed,
            )
        )
    return curves


# PostgreSQL: every figure of every curve in one statement. Observed values and recorded
# thresholds are compared as float8, as numpy compares them (numeric -> float8 and
# Python's float(Decimal) both round correctly). Per decision of a tunable guard version:
# its shadow trade's P&L when closed and whether another guard blocked its signal; summed
# per guard and distinct observed value (``grouped``); the candidates picked among the
# distinct values exactly as ``candidate_thresholds`` picks them (``chosen``: numpy's
# "inverted_cdf" quantile of n values at q is the value of rank ceil(n q) - 1); bucket
# boundaries: those picks, the same kept to 8 places, and the current threshold
# (``bounds``); then the sums per bucket between boundaries, one row per guard version.
_CURVES_SQL = """
WITH spec AS MATERIALIZED (
    SELECT * FROM unnest(
        %(guards)s::bigint[], %(currents)s::float8[], %(factors)s::float8[],
        %(modes)s::text[], %(roundings)s::text[]
    ) AS spec (g, cur, fac, mode, rounding)
), vals AS (
    SELECT DISTINCT sp.g,
        CASE sp.rounding
            WHEN 'floor' THEN floor(d.observed_value::float8)
            WHEN 'ceil' THEN ceil(d.observed_value::float8)
            ELSE d.observed_value::float8
        END AS v
    FROM (
        SELECT DISTINCT d.book_guard_id, d.observed_value
        FROM signals_guarddecision d
        WHERE d.book_guard_id = ANY(%(guards)s::bigint[])
          AND d.observed_value IS NOT NULL AND d.observed_value <> 'NaN'
    ) AS d
    JOIN spec sp ON sp.g = d.book_guard_id
    WHERE d.observed_value::float8 NOT IN ('Infinity', '-Infinity')
), ranked AS (
    SELECT g, v,
        row_number() OVER (PARTITION BY g ORDER BY v) - 1 AS i,
        count(*) OVER (PARTITION BY g) AS n
    FROM vals
), counts AS (
    SELECT g, count(*) AS n FROM vals GROUP BY g
), picked AS (
    SELECT DISTINCT c.g, greatest(0, least(c.n - 1, ceil(c.n * q) - 1))::bigint AS i
    FROM counts c, unnest(%(quantiles)s::float8[]) AS q
    WHERE c.n > %(keep)s
), chosen AS MATERIALIZED (
    SELECT r.g, r.v FROM ranked r
    WHERE r.n <= %(keep)s OR (r.g, r.i) IN (SELECT g, i FROM picked)
), bounds AS MATERIALIZED (
    SELECT sp.g, sp.mode, sp.fac,
        coalesce((SELECT array_agg(c.v ORDER BY c.v) FROM chosen c WHERE c.g = sp.g),
                 '{}'::float8[]) AS picks,
        ARRAY(
            SELECT x FROM (
                SELECT c.v AS x FROM chosen c WHERE c.g = sp.g
                UNION
                SELECT round(c.v::numeric, %(places)s)::float8 FROM chosen c
                WHERE c.g = sp.g AND sp.rounding = 'none'
                UNION
                SELECT sp.cur
            ) AS b ORDER BY x
        ) AS raw
    FROM spec sp
), compared AS MATERIALIZED (
    SELECT bo.*,
        CASE bo.mode
            WHEN '>=' THEN bo.raw
            WHEN '>' THEN ARRAY(SELECT -x FROM unnest(bo.raw) AS x ORDER BY 1)
            ELSE ARRAY(SELECT x * bo.fac FROM unnest(bo.raw) AS x ORDER BY 1)
        END AS edges
    FROM bounds bo
), blocks AS (
    SELECT b.signal_id, count(*) AS n, min(b.guard) AS one
    FROM signals_guarddecision b
    JOIN signals_signal s ON s.id = b.signal_id
    WHERE b.verdict = 'block' AND s.book_id = %(book)s
    GROUP BY b.signal_id
), decided AS (
    SELECT co.g,
        CASE
            WHEN d.v IS NULL THEN NULL
            WHEN co.mode <> '>' THEN width_bucket(d.v, co.edges)
            WHEN d.v = 'NaN' THEN cardinality(co.edges)
            ELSE cardinality(co.edges) - width_bucket(-d.v, co.edges)
        END AS k,
        coalesce(t.status = 'closed' AND t.pnl IS NOT NULL, false) AS closed,
        t.pnl,
        coalesce(b.n > 1 OR b.one <> d.guard, false) AS others,
        CASE
            WHEN d.v IS NULL THEN false
            WHEN d.th IS NULL OR d.th = 'NaN' OR d.v = 'NaN' THEN d.blocked
            WHEN co.mode = '>=' THEN (d.v >= d.th) <> d.blocked
            WHEN co.mode = '>' THEN (d.v > d.th) <> d.blocked
            ELSE (d.v < d.th * co.fac) <> d.blocked
        END AS mismatch
    FROM (
        -- OFFSET 0: each value is converted once, not in every expression using it.
        SELECT d.book_guard_id, d.signal_id, d.guard, d.verdict = 'block' AS blocked,
            d.observed_value::float8 AS v, d.threshold::float8 AS th
        FROM signals_guarddecision d
        WHERE d.book_guard_id = ANY(%(guards)s::bigint[])
        OFFSET 0
    ) AS d
    JOIN compared co ON co.g = d.book_guard_id
    LEFT JOIN shadow_shadowtrade t ON t.signal_id = d.signal_id
    LEFT JOIN blocks b ON b.signal_id = d.signal_id
), buckets AS (
    SELECT g, k,
        count(*) AS n,
        count(*) FILTER (WHERE closed) AS closed,
        sum(pnl) FILTER (WHERE closed) AS pnl,
        count(*) FILTER (WHERE closed AND NOT others) AS alone_closed,
        sum(pnl) FILTER (WHERE closed AND NOT others) AS alone_pnl,
        count(*) FILTER (WHERE mismatch) AS mismatches
    FROM decided
    GROUP BY g, k
)
SELECT bo.g, bo.picks, bo.raw,
    array_agg(bu.k ORDER BY bu.k) FILTER (WHERE bu.g IS NOT NULL),
    array_agg(bu.n ORDER BY bu.k) FILTER (WHERE bu.g IS NOT NULL),
    array_agg(bu.closed ORDER BY bu.k) FILTER (WHERE bu.g IS NOT NULL),
    array_agg(bu.pnl ORDER BY bu.k) FILTER (WHERE bu.g IS NOT NULL),
    array_agg(bu.alone_closed ORDER BY bu.k) FILTER (WHERE bu.g IS NOT NULL),
    array_agg(bu.alone_pnl ORDER BY bu.k) FILTER (WHERE bu.g IS NOT NULL),
    coalesce(sum(bu.mismatches), 0)::bigint
FROM bounds bo
LEFT JOIN buckets bu ON bu.g = bo.g
GROUP BY bo.g, bo.picks, bo.raw
"""


def _curves_in_sql(book: Book, tunables: list[_Tunable]) -> list[GuardCurve] | None:
    """The curves from one statement (PostgreSQL) that sums the decisions per bucket
    between the boundaries its candidates can take; ``None`` in the rare case where a
    candidate kept to 8 places is not one of them (PostgreSQL rounds a float to 8 places
    from its 15 significant digits, Python from its exact value): then the caller reads
    the decisions row by row."""
    params: dict[str, Any] = {
        "book": book.pk,
        "guards": [t.copy.pk for t in tunables],
        "currents": [t.current for t in tunables],
        "factors": [1 - t.tolerance for t in tunables],
        "modes": [t.blocks_when for t in tunables],
        "roundings": [t.rounding for t in tunables],
        "keep": MAX_CANDIDATES - 1,
        "quantiles": [float(q) for q in _quantiles(MAX_CANDIDATES)],
        "places": PLACES,
    }
    with connection.cursor() as cursor:
        cursor.execute(_CURVES_SQL, params)
        rows = {row[0]: row for row in cursor.fetchall()}
    needed = min_samples()
    curves = []
    for tunable in tunables:
        _g, picks, raw, keys, ns, closed, pnl, alone_closed, alone_pnl, mismatches = rows[
            tunable.copy.pk
        ]
        candidates = [
            t
            for t in _finish_candidates(picks, current=tunable.current, integral=tunable.integral)
            if tunable.accepts(t)
        ]
        position = {float(b): j for j, b in enumerate(raw)}
        if any(t not in position for t in candidates):
            return None
        size = len(raw) + 1  # bucket k: k boundaries at or below the value (width_bucket)
        counts = np.zeros(size, dtype=int)
        samples = np.zeros(size, dtype=int)
        alone = np.zeros(size, dtype=int)
        money = np.full(size, ZERO, dtype=object)
        alone_money = np.full(size, ZERO, dtype=object)
        decided = observed = 0
        for k, n, c, p, ac, ap in zip(
            keys or [],
            ns or [],
            closed or [],
            pnl or [],
            alone_closed or [],
            alone_pnl or [],
            strict=True,
        ):
            decided += n
            if k is None:
                continue
            observed += n
            counts[k] += n
            samples[k] += c
            alone[k] += ac
            money[k] = _decimal(p) if p is not None else ZERO
            alone_money[k] = _decimal(ap) if ap is not None else ZERO
        prefix = [_prefix(counts, 0), _prefix(samples, 0), _prefix(alone, 0)]
        prefix_money = [_prefix(money, ZERO), _prefix(alone_money, ZERO)]
        points = []
        for t in candidates:
            j = position[t]
            # Buckets blocked at t: those above t's boundary, or at and below it for "<".
            start, end = (0, j + 1) if tunable.blocks_when == "<" else (j + 1, size)
            blocked, shut, shut_alone = (int(p[end] - p[start]) for p in prefix)
            pnl_all, pnl_alone = (p[end] - p[start] for p in prefix_money)
            points.append(
                CurvePoint(
                    threshold=t,
                    blocked=blocked,
                    samples=shut,
                    net_impact=-pnl_all,
                    alone_samples=shut_alone,
                    alone_net_impact=-pnl_alone,
                    current=t == tunable.current,
                )
            )
        curves.append(
            _curve(
                tunable,
                points,
                decided=decided,
                observed=observed,
                mismatches=int(mismatches),
                needed=needed,
            )
        )
    return curves


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
    current, best = curve.current_point, curve.best
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
                f"keep {curve.param} = {threshold_label(curve.current, curve.integral)}: no threshold "
                f"with at least {curve.needed} closed shadow trades beats its net impact "
                f"{current.net_impact:.2f} by more than a cent"
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
        f"{best.net_impact:.2f} (+{gain:.2f}) over {best.samples} closed shadow trades",
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
        param = THRESHOLD_PARAMS.get(config.kind)
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


@shared_task(name="analytics.recommend_thresholds")
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
