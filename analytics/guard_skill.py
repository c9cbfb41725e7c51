"""Honest verdicts: each guard configuration's skill apart from trading less, and the
strategies' own expectancy, for one book, period and filter (``analytics.skill`` holds
the statistics; this module reads the book and applies them).

The **pool** is every decided signal of the book whose shadow trade closed in the period
(the same money rule as the guard page: a trade counts when it exits in the period) and
that matches the strategy and symbol filters: the signals a guard blocked and the
control group it let through.

Two ways to read it, chosen by the pool's size (ADR 0023):

- up to ``GUARD_STATS_ROW_LIMIT`` trades (default 20,000), every trade: two queries
  whatever the number of guards (the pool in time order and its blocking decisions),
  stationary-bootstrap intervals and, on small pools, a Monte Carlo randomisation test;
- past it, the book's rollups (``shadow.rollups``: the ``pool`` and ``guard_shadow``
  facts, sums per UTC exit day): intervals clustered by day
  (``skill.clustered_mean_interval``), the randomisation test's normal approximation
  (what the row path uses at those sizes too). The money (net impact, its split into
  trading less and choosing, the means) is the same exact sum either way; a page then
  costs the rollup rows of its window, not the book's trades, so the first request
  after a live write stays fast at a million signals.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Context, Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import BigIntegerField, Max, Min, QuerySet, Sum, Value
from django.db.models.functions import Cast

from analytics import skill
from analytics.confidence import mean_interval
from analytics.filters import book_clock
from shadow import rollups
from shadow.models import BookRollup, ShadowTrade
from signals.models import Book, BookStrategy, GuardDecision

Key = tuple[str, int | None]
# Past this many trades in the pool the statistics read the rollups (module docstring).
ROW_LIMIT = 20_000
BOOTSTRAP = "stationary bootstrap"
CLUSTERED = "clustered by UTC day"


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def row_limit() -> int:
    """The largest pool read trade by trade (``GUARD_STATS_ROW_LIMIT``)."""
    return int(_setting("GUARD_STATS_ROW_LIMIT", ROW_LIMIT))


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
    # How the intervals were computed: ``BOOTSTRAP`` (every trade) or ``CLUSTERED``.
    interval: str = BOOTSTRAP


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
    test = skill.randomisation_test(pnl, mask, seed=[seed(), stream, 1]) if k else None
    net = skill.bootstrap_mean_interval(-blocked_pnl, seed=[seed(), stream, 2])
    difference = skill.bootstrap_difference_interval(
        kept_pnl, blocked_pnl, seed=[seed(), stream, 3]
    )
    squares = sum((exact[i] * exact[i] for i in positions.tolist()), Decimal(0))
    return _assemble(
        pool=n,
        blocked=k,
        pool_sum=pool_sum,
        blocked_sum=blocked_sum,
        squares=squares,
        net=net,
        difference=difference,
        test=test,
    ), test


def _assemble(
    *,
    pool: int,
    blocked: int,
    pool_sum: Decimal,
    blocked_sum: Decimal,
    squares: Decimal,
    net: skill.Interval,
    difference: skill.Interval,
    test: skill.RandomisationTest | None,
) -> SkillReport:
    """A guard's report from its money (exact sums), its intervals and its test, however
    they were computed."""
    n, k = pool, blocked
    parts = skill.decompose(blocked_pnl=blocked_sum, blocked=k, pool_pnl=pool_sum, pool=n)
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
    return report


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
    unguarded expectancy of the book and of each strategy, for one period and filter.
    A pool past ``row_limit()`` trades is read from the rollups (module docstring)."""
    window = _Window.of(book, since, until, strategy, symbol)
    if window.pool_size() > row_limit():
        return _rolled_skill(window, keys, min_samples)
    trades = _pool_trades(book, since, until, strategy, symbol)
    ids, pnl, exact, which, names = _pool(trades)
    blocked, blockers = _blocks(trades, ids)
    pool_sum = sum(exact, Decimal(0))
    every: dict[Key, SkillReport] = {}
    alone: dict[Key, SkillReport] = {}
    empty = np.zeros(0, dtype=np.int64)
    for key in keys:
        stream = _stream(key)
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


def _stream(key: Key) -> int:
    """Each guard's draws depend on its own identity, not on which other guards exist."""
    return 2 * (key[1] if key[1] is not None else zlib.crc32(key[0].encode()))


def book_expectancy(*, book: Book) -> Expectancy:
    """The book's unguarded expectancy over all its history (every strategy)."""
    window = _Window.of(book, None, None, "", "")
    if window.pool_size() > row_limit():
        days, series = window.day_sums((POOL,))
        return _rolled_expectancy("every strategy", _days(list(series.values()), days))
    _, pnl, exact, _, _ = _pool(_pool_trades(book, None, None, "", ""))
    return _expectancy("every strategy", pnl, exact, stream=999)


# --- Large pools: the rollups ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Days:
    """Closed trades summed per UTC exit day (``count``/``pnl`` aligned on the window's
    days), with their exact total and their sum of squares."""

    count: np.ndarray
    pnl: np.ndarray
    total: Decimal
    squares: float

    @property
    def n(self) -> int:
        return int(self.count.sum())


@dataclass(slots=True)
class _Series:
    """What ``_Window.day_sums`` reads: the rows of one strategy version or guard
    configuration (their day positions, counts and P&L as floats, each the float of a
    day's exact sum), with their exact total and their sum of squares."""

    at: list[int]
    count: list[int]
    pnl: list[float]
    total: Decimal
    squares: float

    def days(self, days: int) -> _Days:
        return _days([self], days)


def _days(series: list[_Series], days: int) -> _Days:
    """The series summed per day: ``days`` positions."""
    at = np.fromiter((i for s in series for i in s.at), dtype=np.int64)
    count = np.fromiter((c for s in series for c in s.count), dtype=float)
    pnl = np.fromiter((p for s in series for p in s.pnl), dtype=float)
    return _Days(
        count=np.bincount(at, weights=count, minlength=days),
        pnl=np.bincount(at, weights=pnl, minlength=days),
        total=sum((s.total for s in series), Decimal(0)),
        squares=sum((s.squares for s in series), 0.0),
    )


# The series a window's days are read in (``_Window.day_sums``): its fact and what a
# series is per. ``ALONE`` keeps the trades blocked by one guard only (the pool's
# blocker: not empty, not several).
STRATEGY, ALONE, EVERY, POOL = "strategy", "alone", "every", "pool"
_SERIES: dict[str, tuple[str, tuple[str, ...]]] = {
    STRATEGY: (rollups.Fact.POOL, ("strategy_id",)),
    ALONE: (rollups.Fact.POOL, ("guard", "guard_config_id")),
    EVERY: (rollups.Fact.GUARD_SHADOW, ("guard", "guard_config_id")),
    POOL: (rollups.Fact.POOL, ()),
}
_NOT_ALONE = ("", rollups.SEVERAL)
_NO_ID = Cast(Value(None), BigIntegerField())
_SUMS = {"n": Sum("n"), "pnl": Sum("pnl"), "pnl_sq": Sum("pnl_sq")}
SeriesKey = tuple[str, Any]
_FIFTEEN_DIGITS = Context(prec=15)


@dataclass(frozen=True, slots=True)
class _Window:
    book: Book
    since: datetime | None
    until: datetime | None
    strategies: Collection[int] | None
    symbol: str
    clock: datetime | None

    @classmethod
    def of(
        cls, book: Book, since: datetime | None, until: datetime | None, strategy: str, symbol: str
    ) -> _Window:
        strategies = None
        if strategy:
            strategies = list(
                BookStrategy.objects.filter(book=book, name=strategy).values_list("pk", flat=True)
            )
        return cls(book, since, until, strategies, symbol, book_clock(book))

    def totals(self, fact: str, by: tuple[str, ...], **window: Any) -> list[dict[str, Any]]:
        bounds = {"since": self.since, "until": self.until, **window}
        return rollups.totals(
            self.book.pk,
            fact,
            by=by,
            strategies=self.strategies,
            symbol=self.symbol,
            check=False,
            clock=self.clock,
            **bounds,
        )

    def pool_size(self) -> int:
        """The number of trades in the pool (from the rollups' month rows)."""
        rollups.ensure_built(self.book.pk)
        return sum(row["n"] for row in self.totals(rollups.Fact.POOL, ()))

    def day_sums(
        self, kinds: tuple[str, ...], *, unconfigured: bool = True
    ) -> tuple[int, dict[SeriesKey, _Series]]:
        """The window's closed trades summed per UTC exit day for each series of
        ``kinds`` (``_SERIES``), keyed ``(kind, strategy version)`` or ``(kind, (guard,
        configuration))`` (``(POOL, None)``), and the number of days. The whole days'
        series are one statement over the day rows (a sum per day needs day rows: the
        month rows cannot give it); a partial first or last day comes from the rows, as
        ``rollups.totals`` reads it. ``unconfigured=False``: no guard series without a
        configuration (a book from before guards were frozen per book) is wanted."""
        until = self.until
        if until is not None and self.clock is not None and until > self.clock:
            until = None
        first, stop, edges, whole = rollups.split_window(self.since, until)
        rows: list[tuple[Any, ...]] = []
        if whole:
            rows = self._whole_days(kinds, first, stop, unconfigured=unconfigured)
            if any(row[3] != row[8] for row in rows):
                # A configuration that blocked under two names in the window: read per name.
                rows = self._whole_days(kinds, first, stop, by_name=True)
        for low, high in edges:
            for kind in kinds:
                fact, by = _SERIES[kind]
                for row in self.totals(fact, ("day", *by), since=low, until=high):
                    if kind == ALONE and row["guard"] in _NOT_ALONE:
                        continue
                    rows.append(
                        (
                            kind,
                            row["day"],
                            row.get("strategy_id"),
                            row.get("guard", ""),
                            row.get("guard_config_id"),
                            row["n"],
                            row["pnl"],
                            row["pnl_sq"],
                            row.get("guard", ""),
                        )
                    )
        position = {
            day: i for i, day in enumerate(sorted({rollups.as_date(row[1]) for row in rows}))
        }
        series: dict[SeriesKey, _Series] = {}
        for kind, day, strategy_id, guard, config_id, n, pnl, squares, _ in rows:
            if kind == STRATEGY:
                key: SeriesKey = (kind, strategy_id)
            elif kind == POOL:
                key = (kind, None)
            else:
                key = (kind, (guard, config_id))
            found = series.get(key)
            if found is None:
                found = series[key] = _Series([], [], [], Decimal(0), 0.0)
            found.at.append(position[rollups.as_date(day)])
            found.count.append(int(n or 0))
            if pnl is None:
                found.pnl.append(0.0)
            else:
                exact = pnl if isinstance(pnl, Decimal) else _float_sum(pnl)
                found.pnl.append(float(exact))
                found.total += exact
            found.squares += float(squares or 0.0)
        return len(position), series

    def _whole_days(
        self,
        kinds: tuple[str, ...],
        first: date | None,
        stop: date | None,
        *,
        unconfigured: bool = True,
        by_name: bool = False,
    ) -> list[tuple[Any, ...]]:
        """The whole days' rows of ``day_sums`` (kind, day, strategy version, guard,
        configuration, the sums, and the guard's other name): one ``UNION ALL`` of a
        grouped read per series (PostgreSQL runs them side by side), read without
        per-row converters.

        A guard series is grouped by configuration, its name the least and the greatest
        of its rows' (equal unless it was renamed in the window: then ``by_name``
        groups by both, as the guard page lists them). Grouped by day, name and
        configuration, PostgreSQL expects about ten times the groups there are and
        sorts its ~80,000 day rows on disk instead of hashing them."""
        stored = BookRollup.objects.filter(
            book_id=self.book.pk, grain=BookRollup.Grain.DAY
        ).order_by()
        if first is not None:
            stored = stored.filter(day__gte=first)
        if stop is not None:
            stored = stored.filter(day__lt=stop)
        if self.strategies is not None:
            stored = stored.filter(strategy_id__in=list(self.strategies))
        if self.symbol:
            stored = stored.filter(symbol=self.symbol)
        reads: list[QuerySet[Any, Any]] = []
        for kind in kinds:
            fact, by = _SERIES[kind]
            facts = stored.filter(fact=fact)
            common = {"kind": Value(kind), "no_strategy": _NO_ID, **_SUMS}
            sums = ("n", "pnl", "pnl_sq")
            if "guard" not in by:
                reads.append(
                    facts.values("day", *by)
                    .annotate(**common, no_guard=Value(""), no_config=_NO_ID)
                    .values_list(
                        "kind",
                        "day",
                        by[0] if by else "no_strategy",
                        "no_guard",
                        "no_config",
                        *sums,
                        "no_guard",
                    )
                )
                continue
            if kind == ALONE:
                facts = facts.exclude(guard__in=_NOT_ALONE)
            named = {"least": Min("guard"), "greatest": Max("guard")}
            groups: list[QuerySet[Any, Any]]
            if by_name:
                groups = [facts.values("day", "guard", "guard_config_id")]
            else:
                groups = [
                    facts.filter(guard_config_id__isnull=False).values("day", "guard_config_id")
                ]
                if unconfigured:
                    groups.append(facts.filter(guard_config_id__isnull=True).values("day", "guard"))
            for group in groups:
                reads.append(
                    group.annotate(**common, **named).values_list(
                        "kind",
                        "day",
                        "no_strategy",
                        "least",
                        "guard_config_id",
                        *sums,
                        "greatest",
                    )
                )
        combined = reads[0].union(*reads[1:], all=True) if len(reads) > 1 else reads[0]
        try:
            sql, params = combined.query.sql_with_params()
        except EmptyResultSet:  # narrowed to no strategy version
            return []
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())


def _float_sum(value: float) -> Decimal:
    """A sum SQLite gives as a float, as Django converts it for a ``DecimalField`` (15
    significant digits): the same figure as ``rollups.totals`` reads."""
    return _FIFTEEN_DIGITS.create_decimal_from_float(value)


def _rolled_report(pool: _Days, blocked: _Days) -> SkillReport:
    n, k = pool.n, blocked.n
    test = None
    if 0 < k < n:
        mean = float(pool.total) / n
        test = skill.randomisation_normal(
            pool=n,
            blocked=k,
            mean=mean,
            variance=max(pool.squares / n - mean * mean, 0.0),
            observed=-float(blocked.total),
        )
    net = skill.clustered_mean_interval(blocked.count, -blocked.pnl)
    difference = skill.clustered_difference_interval(
        pool.count - blocked.count, pool.pnl - blocked.pnl, blocked.count, blocked.pnl
    )
    return _assemble(
        pool=n,
        blocked=k,
        pool_sum=pool.total,
        blocked_sum=blocked.total,
        squares=Decimal(repr(blocked.squares)),
        net=net,
        difference=difference,
        test=test,
    )


def _rolled_expectancy(name: str, days: _Days) -> Expectancy:
    if not days.n:
        return Expectancy(name=name, trades=0, mean_pnl=None, low=None, high=None)
    interval = skill.clustered_mean_interval(days.count, days.pnl)
    return Expectancy(
        name=name,
        trades=days.n,
        mean_pnl=days.total / days.n,
        low=_money(interval.low),
        high=_money(interval.high),
    )


def _rolled_skill(window: _Window, keys: list[Key], min_samples: int) -> BookSkill:
    """``book_skill`` of a large pool from the rollups: one statement over the window's
    day rows (``_Window.day_sums``), the pool per day and strategy version, per guard
    that blocked alone and per blocking guard."""
    days, series = window.day_sums(
        (STRATEGY, ALONE, EVERY), unconfigured=any(key[1] is None for key in keys)
    )
    strategies = {key[1]: found for key, found in series.items() if key[0] == STRATEGY}
    pool = _days(list(strategies.values()), days)
    empty = _Series([], [], [], Decimal(0), 0.0)
    every: dict[Key, SkillReport] = {}
    alone: dict[Key, SkillReport] = {}
    for key in keys:
        every[key] = _rolled_report(pool, series.get((EVERY, key), empty).days(days))
        alone[key] = _rolled_report(pool, series.get((ALONE, key), empty).days(days))
    named = dict(
        BookStrategy.objects.filter(pk__in=[k for k in strategies if k is not None]).values_list(
            "pk", "name"
        )
    )
    names: dict[str, list[_Series]] = {}
    for strategy_id, found in strategies.items():
        names.setdefault(named.get(strategy_id, ""), []).append(found)
    return BookSkill(
        every=_with_verdicts(every, min_samples),
        alone=_with_verdicts(alone, min_samples),
        expectancy=[_rolled_expectancy(name, _days(names[name], days)) for name in sorted(names)],
        book_expectancy=_rolled_expectancy("every strategy", pool),
        pool=pool.n,
        interval=CLUSTERED,
    )
