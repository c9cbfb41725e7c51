"""Honest verdicts: each guard configuration's skill apart from trading less, and the
strategies' own expectancy, for one book, period and filter (``analytics.skill`` holds
the statistics; this module reads the book and applies them).

The **pool** is every decided signal of the book whose shadow trade closed in the period
(the same money rule as the guard page: a trade counts when it exits in the period) and
that matches the strategy and symbol filters: the signals a guard blocked and the
control group it let through. Two queries whatever the number of guards: the pool in
time order and its blocking decisions.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import QuerySet

from analytics import skill
from analytics.confidence import mean_interval
from shadow.models import ShadowTrade
from signals.models import Book, GuardDecision

Key = tuple[str, int | None]


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def seed() -> int:
    """The seed of every randomisation and bootstrap (``GUARD_STATS_SEED``)."""
    return int(_setting("GUARD_STATS_SEED", skill.DEFAULT_SEED))


@dataclass(frozen=True, slots=True)
class Expectancy:
    """A strategy's unguarded expectancy: mean shadow P&L per trade over the pool (every
    decided signal, blocked or not), with its stationary-bootstrap interval."""

    name: str
    trades: int
    mean_pnl: Decimal | None
    low: Decimal | None
    high: Decimal | None

    @property
    def losing(self) -> bool:
        """The whole interval is below zero: on such a strategy any block looks good."""
        return self.high is not None and self.high < 0

    @property
    def negative(self) -> bool:
        return self.mean_pnl is not None and self.mean_pnl < 0


@dataclass(frozen=True, slots=True)
class SkillReport:
    """One guard configuration over one set of its blocks (every block, or alone)."""

    pool: int
    pool_mean_pnl: Decimal | None
    blocked: int
    blocked_mean_pnl: Decimal | None
    passed_mean_pnl: Decimal | None
    # mean(let through) - mean(blocked): positive = it blocked worse signals than it kept.
    difference: Decimal | None
    difference_low: Decimal | None
    difference_high: Decimal | None
    decomposition: skill.Decomposition
    # Mean net impact per blocked trade: its interval is the wider of the stationary
    # bootstrap and Student t (``_wider``); Student t alone as the reference.
    mean_net_impact: Decimal | None
    ci_low: Decimal | None
    ci_high: Decimal | None
    t_low: Decimal | None
    t_high: Decimal | None
    p_value: float | None
    q_value: float | None
    test_method: str
    verdict: str


@dataclass(frozen=True, slots=True)
class BookSkill:
    """Every guard configuration's skill reports and the strategies' expectancy."""

    every: dict[Key, SkillReport]
    alone: dict[Key, SkillReport]
    expectancy: list[Expectancy]
    book_expectancy: Expectancy
    pool: int


def _money(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(round(float(value), 10)))


def _pool_trades(
    book: Book,
    since: datetime | None,
    until: datetime | None,
    strategy: str,
    symbol: str,
) -> QuerySet[ShadowTrade]:
    """The closed shadow trades of the pool: exited in the period, matching the filters."""
    trades = ShadowTrade.objects.filter(
        book=book, status=ShadowTrade.Status.CLOSED, pnl__isnull=False
    )
    if since is not None:
        trades = trades.filter(exit_time__gte=since)
    if until is not None:
        trades = trades.filter(exit_time__lt=until)
    if strategy:
        trades = trades.filter(signal__book_strategy__name=strategy)
    if symbol:
        trades = trades.filter(signal__symbol=symbol)
    return trades


def _pool(
    trades: QuerySet[ShadowTrade],
) -> tuple[np.ndarray, np.ndarray, list[Decimal], np.ndarray, list[str]]:
    """The pool in time order: signal ids, P&L as floats, P&L as exact decimals, strategy
    index per signal and the strategy names."""
    rows = list(
        trades.order_by("signal__candle_time", "signal_id").values_list(
            "signal_id", "pnl", "signal__book_strategy__name"
        )
    )
    names = sorted({row[2] or "" for row in rows})
    position = {name: i for i, name in enumerate(names)}
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    exact = [row[1] if isinstance(row[1], Decimal) else Decimal(str(row[1])) for row in rows]
    pnl = np.fromiter((float(value) for value in exact), dtype=float, count=len(rows))
    which = np.fromiter((position[row[2] or ""] for row in rows), dtype=np.int64, count=len(rows))
    return ids, pnl, exact, which, names


def _blocks(
    trades: QuerySet[ShadowTrade], ids: np.ndarray
) -> tuple[dict[Key, np.ndarray], np.ndarray]:
    """Per guard configuration, the pool positions it blocked; and per pool position how
    many guards blocked it. Only the pool's blocking decisions are read, and matched to
    pool positions with numpy (a sorted search), not per row in Python."""
    rows = (
        GuardDecision.objects.filter(
            signal_id__in=trades.values("signal_id"),
            verdict=GuardDecision.Verdict.BLOCK,
        )
        .order_by()
        .values_list("signal_id", "guard", "book_guard_id")
    )
    codes: dict[Key, int] = {}
    signal_ids: list[int] = []
    keyed: list[int] = []
    for signal_id, guard, config_id in rows.iterator(chunk_size=20_000):
        signal_ids.append(signal_id)
        keyed.append(codes.setdefault((guard, config_id), len(codes)))
    blockers = np.zeros(len(ids), dtype=np.int64)
    if not signal_ids or not len(ids):
        return {}, blockers
    wanted = np.asarray(signal_ids, dtype=np.int64)
    code = np.asarray(keyed, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    at = np.searchsorted(ids[order], wanted)
    inside = at < len(ids)
    inside[inside] = ids[order][at[inside]] == wanted[inside]
    positions = order[at[inside]]
    code = code[inside]
    blockers += np.bincount(positions, minlength=len(ids))
    found = {}
    for key, number in codes.items():
        mine = np.sort(positions[code == number])
        if len(mine):
            found[key] = mine
    return found, blockers


def _expectancy(name: str, pnl: np.ndarray, exact: list[Decimal], stream: int) -> Expectancy:
    if not len(pnl):
        return Expectancy(name=name, trades=0, mean_pnl=None, low=None, high=None)
    interval = skill.bootstrap_mean_interval(pnl, seed=[seed(), stream])
    return Expectancy(
        name=name,
        trades=len(pnl),
        mean_pnl=sum(exact, Decimal(0)) / len(exact),
        low=_money(interval.low),
        high=_money(interval.high),
    )


def _report(
    *,
    positions: np.ndarray,
    pnl: np.ndarray,
    exact: list[Decimal],
    pool_sum: Decimal,
    stream: int,
) -> tuple[SkillReport, skill.RandomisationTest | None]:
    n, k = len(pnl), len(positions)
    mask = np.zeros(n, dtype=bool)
    mask[positions] = True
    blocked_pnl = pnl[mask]
    kept_pnl = pnl[~mask]
    blocked_sum = sum((exact[i] for i in positions.tolist()), Decimal(0))
    parts = skill.decompose(blocked_pnl=blocked_sum, blocked=k, pool_pnl=pool_sum, pool=n)
    test = skill.randomisation_test(pnl, mask, seed=[seed(), stream, 1]) if k else None
    net = skill.bootstrap_mean_interval(-blocked_pnl, seed=[seed(), stream, 2])
    difference = skill.bootstrap_difference_interval(
        kept_pnl, blocked_pnl, seed=[seed(), stream, 3]
    )
    squares = sum((exact[i] * exact[i] for i in positions.tolist()), Decimal(0))
    t = mean_interval(k, -blocked_sum, squares)
    blocked_mean = blocked_sum / k if k else None
    kept_mean = (pool_sum - blocked_sum) / (n - k) if n - k else None
    report = SkillReport(
        pool=n,
        pool_mean_pnl=pool_sum / n if n else None,
        blocked=k,
        blocked_mean_pnl=blocked_mean,
        passed_mean_pnl=kept_mean,
        difference=kept_mean - blocked_mean
        if kept_mean is not None and blocked_mean is not None
        else None,
        difference_low=_money(difference.low),
        difference_high=_money(difference.high),
        decomposition=parts,
        mean_net_impact=-blocked_mean if blocked_mean is not None else None,
        ci_low=_wider(_money(net.low), t.low, min),
        ci_high=_wider(_money(net.high), t.high, max),
        t_low=t.low,
        t_high=t.high,
        p_value=test.p_value if test is not None else None,
        q_value=None,
        test_method=test.method if test is not None else "",
        verdict=skill.NOT_ENOUGH_DATA,
    )
    return report, test


def _wider(bootstrap: Decimal | None, t: Decimal | None, pick: Any) -> Decimal | None:
    """The verdict's interval is the wider of the stationary bootstrap (right when trades
    cluster, too narrow on a handful: ADR 0012) and Student t (right on a handful of
    independent trades, too narrow when they cluster)."""
    if bootstrap is None or t is None:
        return bootstrap if t is None else t
    return pick(bootstrap, t)


def _with_verdicts(reports: dict[Key, SkillReport], min_samples: int) -> dict[Key, SkillReport]:
    """Benjamini-Hochberg over the family's p-values, then each verdict."""
    keys = list(reports)
    q_values = skill.benjamini_hochberg([reports[key].p_value for key in keys])
    out = {}
    for key, q in zip(keys, q_values, strict=True):
        report = reports[key]
        verdict = skill.skill_verdict(
            samples=report.blocked,
            min_samples=min_samples,
            net_low=float(report.ci_low) if report.ci_low is not None else None,
            net_high=float(report.ci_high) if report.ci_high is not None else None,
            q_value=q,
        )
        out[key] = _replace(report, q_value=q, verdict=verdict)
    return out


def _replace(report: SkillReport, **changes: Any) -> SkillReport:
    fields = {name: getattr(report, name) for name in SkillReport.__slots__}
    fields.update(changes)
    return SkillReport(**fields)


def book_skill(
    *,
    book: Book,
    keys: list[Key],
    min_samples: int,
    since: datetime | None = None,
    until: datetime | None = None,
    strategy: str = "",
    symbol: str = "",
) -> BookSkill:
    """The skill report of each guard configuration in ``keys`` (every block and blocked
    alone; verdicts after false discovery rate control within each family) and the
    unguarded expectancy of the book and of each strategy, for one period and filter."""
    trades = _pool_trades(book, since, until, strategy, symbol)
    ids, pnl, exact, which, names = _pool(trades)
    blocked, blockers = _blocks(trades, ids)
    pool_sum = sum(exact, Decimal(0))
    every: dict[Key, SkillReport] = {}
    alone: dict[Key, SkillReport] = {}
    empty = np.zeros(0, dtype=np.int64)
    for key in keys:
        # Each guard's draws depend on its own identity, not on which other guards exist.
        stream = 2 * (key[1] if key[1] is not None else zlib.crc32(key[0].encode()))
        positions = blocked.get(key, empty)
        sole = positions[blockers[positions] == 1] if len(positions) else empty
        every[key], _ = _report(
            positions=positions, pnl=pnl, exact=exact, pool_sum=pool_sum, stream=stream
        )
        alone[key], _ = _report(
            positions=sole, pnl=pnl, exact=exact, pool_sum=pool_sum, stream=stream + 1
        )
    expectancy = [
        _expectancy(
            name,
            pnl[which == i],
            [exact[j] for j in np.flatnonzero(which == i).tolist()],
            stream=i + 1000,
        )
        for i, name in enumerate(names)
    ]
    return BookSkill(
        every=_with_verdicts(every, min_samples),
        alone=_with_verdicts(alone, min_samples),
        expectancy=expectancy,
        book_expectancy=_expectancy("every strategy", pnl, exact, stream=999),
        pool=len(pnl),
    )


def book_expectancy(*, book: Book) -> Expectancy:
    """The book's unguarded expectancy over all its history (every strategy)."""
    _, pnl, exact, _, _ = _pool(_pool_trades(book, None, None, "", ""))
    return _expectancy("every strategy", pnl, exact, stream=999)
