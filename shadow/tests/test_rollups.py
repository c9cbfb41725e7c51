"""Rollups: kept by every write equal to a rebuild from the rows, and the sums a page
reads over any window equal to a plain loop over the rows."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from shadow import rollups
from shadow.ablation import ablation_guards, ablation_leg_run
from shadow.live import book_advance
from shadow.models import BookRollup, RollupState, ShadowTrade
from shadow.tests.test_live import END, _market_data, _replay
from signals.models import Book, BookGuard, BookStrategy, GuardDecision, PaperTrade, Signal
from signals.services import book_live


def named(book: Book) -> list[tuple[Any, ...]]:
    """The book's rollups with strategy and guard versions by name (ids differ between
    books)."""
    names = {s.pk: s.name for s in BookStrategy.objects.filter(book=book)}
    guards = {g.pk: (g.name, g.config_version) for g in BookGuard.objects.filter(book=book)}
    return sorted(
        (
            (*row[:3], names.get(row[3]), *row[4:8], guards.get(row[8]), *row[9:])
            for row in rollups.stored(book.pk)
        ),
        key=lambda row: tuple("" if v is None else str(v) for v in row),
    )


def rebuilt(book: Book) -> list[tuple[Any, ...]]:
    kept = rollups.stored(book.pk)
    rollups.rebuild(book.pk)
    return kept


@pytest.mark.django_db
def test_live_runs_keep_the_rollups_a_rebuild_gives_and_a_replay_writes(fresh_signals_forever):
    _market_data()
    replayed = _replay()
    book = book_live()
    first_close = END - timedelta(hours=599)
    for hours in (1, 40, 41, 150, 333, 334, 500, 600):
        book_advance(book_id=book.pk, now=first_close + timedelta(hours=hours))
        kept = rebuilt(book)
        assert kept == rollups.stored(book.pk)
    assert BookRollup.objects.filter(book=book, fact="paper").exists()
    assert BookRollup.objects.filter(book=book, fact="guard_shadow").exists()
    assert named(book) == named(replayed)
    assert rebuilt(replayed) == rollups.stored(replayed.pk)


@pytest.mark.django_db
def test_a_live_run_re_sums_only_the_days_it_touched(fresh_signals_forever):
    _market_data()
    book = book_live()
    book_advance(book_id=book.pk, now=END - timedelta(hours=100))
    before = Signal.objects.filter(book=book).count()
    # Rows of days before the run's earliest moved signal keep their ids: not re-summed.
    oldest_open = (
        Signal.objects.filter(book=book, state__in=("generated", "approved", "executed"))
        .order_by("candle_time")
        .values_list("candle_time", flat=True)
        .first()
    )
    cutoff = min(oldest_open or END, END - timedelta(hours=100)).date()
    old = set(
        BookRollup.objects.filter(book=book, grain="day", day__lt=cutoff).values_list(
            "id", flat=True
        )
    )
    assert old
    book_advance(book_id=book.pk, now=END)
    assert Signal.objects.filter(book=book).count() > before, "the run wrote new signals"
    assert old <= set(BookRollup.objects.filter(book=book).values_list("id", flat=True))
    assert rebuilt(book) == rollups.stored(book.pk)


@pytest.mark.django_db
def test_an_ablation_leg_and_a_replaced_replay_keep_their_rollups(fresh_signals_forever):
    _market_data(count=400)
    book = _replay()
    guard = ablation_guards(book=book)[0]
    leg = ablation_leg_run(book_id=book.pk, guard=guard).book
    assert BookRollup.objects.filter(book=leg).exists()
    assert rebuilt(leg) == rollups.stored(leg.pk)
    again = _replay()  # the same name: the old book and its rollups go
    assert not BookRollup.objects.filter(book_id=book.pk).exists()
    assert rebuilt(again) == rollups.stored(again.pk)


@pytest.mark.django_db
def test_a_book_without_rollups_is_built_on_first_read_and_the_command_rebuilds(
    fresh_signals_forever,
):
    _market_data(count=300)
    book = _replay()
    kept = rollups.stored(book.pk)
    assert kept
    BookRollup.objects.filter(book=book).delete()
    RollupState.objects.filter(book=book).delete()  # as a book written before rollups
    rollups.totals(book.pk, "signals")
    assert rollups.stored(book.pk) == kept

    BookRollup.objects.filter(book=book, fact="paper").update(n=999)  # damaged by hand
    out = StringIO()
    call_command("rollups_rebuild", "--book", str(book.pk), stdout=out)
    assert "rollup rows" in out.getvalue()
    # A line per stage as it starts, each saying how long the one before it took.
    stages = re.findall(
        r"(summing (\S+)|committing)\.\.\.(?: \((\S+) took [\d.]+ s\))?", out.getvalue()
    )
    names = [name or "done" for _line, name, _took in stages]
    assert names[:2] == ["facts", "months"] and names[-1] == "done"
    assert set(names[2:-1]) == set(rollups._EXTENSIONS) and len(names) == len(set(names))
    assert [took for _line, _name, took in stages[1:]] == names[:-1]
    assert rollups.stored(book.pk) == kept
    with pytest.raises(CommandError, match="no book with id 987654"):
        call_command("rollups_rebuild", "--book", "987654", stdout=StringIO())


def _windows(book: Book, count: int) -> list[tuple[datetime | None, datetime | None]]:
    """Windows as the pages ask: open ends, midnight-aligned and at random instants."""
    first = Signal.objects.filter(book=book).order_by("candle_time").first().candle_time
    last = END
    span = (last - first).total_seconds()
    draw = random.Random(20261207)
    found: list[tuple[datetime | None, datetime | None]] = [(None, None)]
    for _ in range(count):
        a = first + timedelta(seconds=draw.uniform(-3600, span + 3600))
        b = a + timedelta(seconds=draw.uniform(0, span / 2))
        if draw.random() < 0.3:
            a = a.replace(hour=0, minute=0, second=0, microsecond=0)
        if draw.random() < 0.3:
            b = b.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        found.append((a if draw.random() > 0.1 else None, b if draw.random() > 0.1 else None))
    return found


def _money(value: Decimal | None) -> Decimal | None:
    """Exact on PostgreSQL; SQLite sums decimals as floats, so there: to the cent."""
    if value is None or connection.vendor == "postgresql":
        return value
    return value.quantize(Decimal("0.01"))


def _inside(moment: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    return (
        moment is not None
        and (since is None or moment >= since)
        and (until is None or moment < until)
    )


@pytest.mark.django_db
def test_window_sums_equal_a_plain_loop_over_the_rows_to_the_cent(fresh_signals_forever):
    _market_data()
    book = _replay()
    signals = {s.pk: s for s in Signal.objects.filter(book=book)}
    blocks: dict[int, list[str]] = defaultdict(list)
    for d in GuardDecision.objects.filter(signal__book=book, verdict="block"):
        blocks[d.signal_id].append(d.guard)
    papers = list(PaperTrade.objects.filter(book=book, status="closed", pnl__isnull=False))
    shadows = [
        t
        for t in ShadowTrade.objects.filter(book=book, group="blocked", status="closed")
        if t.pnl is not None and signals[t.signal_id].state == "blocked"
    ]
    assert len(papers) > 10 and len(shadows) > 10
    strategies = [s.pk for s in BookStrategy.objects.filter(book=book)]

    def blocker(signal_id: int) -> str:
        names = blocks[signal_id]
        return names[0] if len(names) == 1 else ("+" if names else "")

    for since, until in _windows(book, 40):
        # Signals by state (candle time).
        expected: dict[Any, int] = defaultdict(int)
        for s in signals.values():
            if _inside(s.candle_time, since, until):
                expected[s.state] += 1
        got = rollups.totals(book.pk, "signals", by=("state",), since=since, until=until)
        assert {row["state"]: row["n"] for row in got} == dict(expected)

        # Paper P&L per strategy (exit time), to the cent and exactly.
        money: dict[Any, list[Any]] = defaultdict(lambda: [0, 0, Decimal(0)])
        for t in papers:
            if _inside(t.exit_time, since, until):
                row = money[signals[t.signal_id].book_strategy_id]
                row[0] += 1
                row[1] += t.pnl > 0
                row[2] += t.pnl
        got = rollups.totals(book.pk, "paper", by=("strategy_id",), since=since, until=until)
        assert {r["strategy_id"]: [r["n"], r["wins"], _money(r["pnl"])] for r in got} == {
            key: [n, wins, _money(pnl)] for key, (n, wins, pnl) in money.items()
        }

        # Blocked shadow P&L per blocker and per guard (exit time).
        sole: dict[Any, Decimal] = defaultdict(Decimal)
        per_guard: dict[Any, Decimal] = defaultdict(Decimal)
        for t in shadows:
            if _inside(t.exit_time, since, until):
                sole[blocker(t.signal_id)] += t.pnl
                for name in blocks[t.signal_id]:
                    per_guard[name] += t.pnl
        got = rollups.totals(book.pk, "shadow", by=("guard",), since=since, until=until)
        assert {r["guard"]: _money(r["pnl"]) for r in got} == {
            k: _money(v) for k, v in sole.items()
        }
        got = rollups.totals(book.pk, "guard_shadow", by=("guard",), since=since, until=until)
        assert {r["guard"]: _money(r["pnl"]) for r in got} == {
            k: _money(v) for k, v in per_guard.items()
        }

    # Narrowed to a strategy.
    one = strategies[0]
    want = sum((t.pnl for t in papers if signals[t.signal_id].book_strategy_id == one), Decimal(0))
    got = rollups.totals(book.pk, "paper", strategies=[one])
    assert _money(got[0]["pnl"] if got else Decimal(0)) == _money(want)
    # Blocked signals by blocker (candle time).
    by_blocker: dict[str, int] = defaultdict(int)
    for s in signals.values():
        if s.state == "blocked":
            by_blocker[blocker(s.pk)] += 1
    got = rollups.totals(book.pk, "blocked", by=("guard",))
    assert {r["guard"]: r["n"] for r in got} == dict(by_blocker)
    with pytest.raises(ValueError, match="not a rollup dimension"):
        rollups.totals(book.pk, "paper", by=("colour",))

    # Many reads at once (facts, groupings, narrowings, windows with and without partial
    # days, a clock): one statement, each read's rows those of its own ``totals``.
    clock = END - timedelta(hours=5, minutes=7)
    # Windows whose partial days share a UTC day (read by separate queries), one whose
    # only stretch spans two days, and random ones.
    start = min(s.candle_time for s in signals.values())
    middle = start + (clock - start) / 2
    day = middle.replace(hour=0, minute=0, second=0, microsecond=0)
    shared = [
        (day + timedelta(hours=3), day + timedelta(hours=20)),
        (day + timedelta(hours=9), day + timedelta(days=2, hours=20)),
        (day + timedelta(hours=9, minutes=30), None),
        (day + timedelta(hours=9, minutes=30), day + timedelta(days=1, hours=2)),
    ]
    asked = [
        rollups.Read(fact, by, since, until, strategies, "", where)
        for since, until in [*shared, *_windows(book, 6)]
        for fact, by, strategies, where in (
            ("signals", (), None, None),
            ("signals", ("strategy_id",), None, {"state": "blocked"}),
            ("paper", ("strategy_id", "config_id"), None, None),
            ("paper", ("day",), [one], None),
            ("shadow", (), None, None),
            ("guard_shadow", ("guard",), None, None),
        )
    ]

    def keyed(rows: list[dict[str, Any]], by: tuple[str, ...]) -> dict[Any, Any]:
        return {
            tuple(row[k] for k in by): (row["n"], row["wins"], _money(row["pnl"])) for row in rows
        }

    with CaptureQueriesContext(connection) as statements:
        together = rollups.reads(book.pk, asked, clock=clock)
    assert len(statements) == 2  # the rollups' state (``check``), then every read
    assert any(rows for rows in together)
    for read, rows in zip(asked, together, strict=True):
        alone = rollups.totals(
            book.pk,
            read.fact,
            by=read.by,
            since=read.since,
            until=read.until,
            strategies=read.strategies,
            where=read.where,
            clock=clock,
        )
        assert keyed(rows, tuple(read.by)) == keyed(alone, tuple(read.by)), read
        # And against the rows where a read narrows (``where`` is applied to the partial
        # days in Python, to the whole days in SQL).
        until = None if read.until is not None and read.until > clock else read.until
        if read.fact == "signals" and not read.by:
            count = sum(_inside(s.candle_time, read.since, until) for s in signals.values())
            assert sum(row["n"] for row in rows) == count
        elif read.where:
            expected = defaultdict(int)
            for s in signals.values():
                if s.state == "blocked" and _inside(s.candle_time, read.since, until):
                    expected[s.book_strategy_id] += 1
            assert {row["strategy_id"]: row["n"] for row in rows} == expected
        elif read.strategies:
            days: dict[Any, Decimal] = defaultdict(Decimal)
            for t in papers:
                if signals[t.signal_id].book_strategy_id == one and _inside(
                    t.exit_time, read.since, until
                ):
                    days[t.exit_time.astimezone(UTC).date()] += t.pnl
            assert {row["day"]: _money(row["pnl"]) for row in rows} == {
                day: _money(pnl) for day, pnl in days.items()
            }
    assert rollups.reads(book.pk, [], check=False) == []


def test_a_window_splits_into_whole_days_and_partial_ends():
    day = datetime(2024, 3, 1, tzinfo=UTC)
    assert rollups.split_window(None, None) == (None, None, [], True)
    assert rollups.split_window(day, day + timedelta(days=2)) == (
        day.date(),
        (day + timedelta(days=2)).date(),
        [],
        True,
    )
    noon = day + timedelta(hours=12)
    first, stop, edges, whole = rollups.split_window(noon, noon + timedelta(days=2))
    assert (first, stop, whole) == (
        (day + timedelta(days=1)).date(),
        (day + timedelta(days=2)).date(),
        True,
    )
    assert edges == [
        (noon, day + timedelta(days=1)),
        (day + timedelta(days=2), noon + timedelta(days=2)),
    ]
    assert rollups.split_window(noon, noon + timedelta(hours=3)) == (
        None,
        None,
        [(noon, noon + timedelta(hours=3))],
        False,
    )


def test_whole_days_are_read_as_whole_months_and_the_days_around_them():
    from datetime import date

    from django.db.models import Q

    def spans(q: Q) -> list[tuple[str, Any, Any]]:
        """(grain, first, stop) of each OR-ed part, for comparison."""
        found = []
        for part in q.children if q.connector == "OR" else [q]:
            items = dict(part.children) if isinstance(part, Q) else dict([part])
            found.append((items["grain"], items.get("day__gte"), items.get("day__lt")))
        return sorted(found, key=str)

    march, april, may = date(2024, 3, 1), date(2024, 4, 1), date(2024, 5, 1)
    # Mid-March to mid-May: March's tail and May's head as days, April as a month.
    got = spans(rollups.grains(date(2024, 3, 10), date(2024, 5, 20), months=True))
    assert got == sorted(
        [
            ("month", april, may),
            ("day", date(2024, 3, 10), april),
            ("day", may, date(2024, 5, 20)),
        ],
        key=str,
    )
    # Whole months on both ends; open ends take every month.
    assert spans(rollups.grains(march, may, months=True)) == [("month", march, may)]
    assert spans(rollups.grains(None, None, months=True)) == [("month", None, None)]
    # Inside one month, or asked per day: days only.
    assert spans(rollups.grains(date(2024, 3, 3), date(2024, 3, 9), months=True)) == [
        ("day", date(2024, 3, 3), date(2024, 3, 9))
    ]
    assert spans(rollups.grains(march, may, months=False)) == [("day", march, may)]
    # The calendar's last month has no month after it.
    last = date(9999, 12, 31)
    assert spans(rollups.grains(last, None, months=True)) == [("day", last, None)]
    assert rollups.split_window(datetime(9999, 12, 31, 1, tzinfo=UTC), None)[2] == [
        (datetime(9999, 12, 31, 1, tzinfo=UTC), None)
    ]


@pytest.mark.django_db
def test_the_admin_refuses_hand_edits_of_every_row_the_rollups_sum(admin_client):
    """No hand edit can leave the rollups stale: signals, decisions and trades are
    read-only in the admin (a POST to their change page is refused), and the rollups
    themselves are not in it at all."""
    from django.contrib import admin

    from signals.tests.factories import SignalFactory

    signal = SignalFactory()
    for model in (Signal, GuardDecision, PaperTrade, ShadowTrade):
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(None)
        assert not model_admin.has_change_permission(None)
        assert not model_admin.has_delete_permission(None)
    url = f"/admin/signals/signal/{signal.pk}/change/"
    response = admin_client.post(url, {"state": "closed"})
    assert response.status_code == 403
    signal.refresh_from_db()
    assert signal.state != "closed"
    assert BookRollup not in admin.site._registry
    assert RollupState not in admin.site._registry


@pytest.mark.django_db
def test_a_closed_trade_without_an_exit_time_is_left_out_not_a_failure():
    """The engine always writes an exit time; a hand-made row without one has no day."""
    from analytics.tests.factories import PaperTradeFactory, ShadowTradeFactory
    from signals.tests.factories import SignalFactory

    signal = SignalFactory(state="blocked")
    ShadowTradeFactory(signal=signal, status="closed", pnl=Decimal("5"), exit_time=None)
    other = SignalFactory(book=signal.book, state="closed")
    PaperTradeFactory(signal=other, status="closed", pnl=Decimal("3"), exit_time=None)
    rollups.rebuild(signal.book_id)
    assert rollups.totals(signal.book_id, "shadow") == []
    assert rollups.totals(signal.book_id, "paper") == []
    assert sum(row["n"] for row in rollups.totals(signal.book_id, "signals")) == 2
