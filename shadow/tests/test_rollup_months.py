"""Month rows kept without re-summing the month at every live write: they sum the day
rows before ``RollupState.months_until``, and a page adds the day rows from it on.
Whatever the boundary, what a page reads equals a rebuild's (which folds every day), and
a write on the boundary's day leaves the month rows untouched."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import transaction

from analytics.page_cache import _count
from shadow import rollups
from shadow.live import book_advance
from shadow.models import BookRollup, RollupState
from shadow.tests.test_live import END, _market_data
from signals.models import Book, Signal
from signals.services import book_live

pytestmark = pytest.mark.django_db

HOURS = 1200  # 50 days of hourly candles: January into February 2024
FACTS = [str(fact) for fact in BookRollup.Fact]


def _windows(first: datetime, count: int) -> list[tuple[datetime | None, datetime | None]]:
    draw = random.Random(11)
    span = (END - first).total_seconds()
    found: list[tuple[datetime | None, datetime | None]] = [(None, None), (first, None)]
    for _ in range(count):
        low = first + timedelta(seconds=draw.uniform(0, span))
        high = low + timedelta(seconds=draw.uniform(0, span))
        found.append((draw.choice([None, low]), draw.choice([None, high])))
    return found


def _read(book: Book, windows: list[Any]) -> tuple[list[Any], list[Any]]:
    """What the book's rollups hold (``rollups.stored``) and what ``totals`` gives for
    every fact over ``windows``, by guard and by state."""
    sums = []
    for fact in FACTS:
        for since, until in windows:
            for by in ((), ("guard", "state"), ("strategy_id", "symbol")):
                rows = rollups.totals(book.pk, fact, by=by, since=since, until=until, check=False)
                # Counts exact, money to 1e-10 (exact on PostgreSQL; SQLite keeps floats),
                # a sum of squares (a float) up to its last bits.
                rows = [
                    {
                        **row,
                        "pnl": rollups._fine(row["pnl"]),
                        "pnl_sq": rollups._Close(row["pnl_sq"]),
                    }
                    for row in rows
                ]
                sums.append(sorted(rows, key=lambda row: tuple(str(row[k]) for k in by)))
    return rollups.stored(book.pk), sums


def _rebuilt(book: Book, windows: list[Any]) -> tuple[list[Any], list[Any]]:
    """``_read`` after a rebuild, rolled back: the book keeps its own month rows."""
    point = transaction.savepoint()
    try:
        rollups.rebuild(book.pk)
        assert RollupState.objects.get(book=book).months_until is None
        return _read(book, windows)
    finally:
        transaction.savepoint_rollback(point)


def _month_rows(book: Book) -> set[int]:
    return set(BookRollup.objects.filter(book=book, grain="month").values_list("pk", flat=True))


def test_live_writes_keep_what_a_rebuild_gives_and_leave_the_months_alone_within_a_day(
    fresh_signals_forever,
):
    _market_data(count=HOURS)
    book = book_live()
    first_close = END - timedelta(hours=HOURS - 1)
    windows = _windows(first_close, 2)
    untouched = folded = 0
    before: tuple[Any, set[int]] | None = None
    steps = [20, 30, 31, 47, 48, 300, 301, 700, 711, 1199]
    for number, hours in enumerate(steps):
        book_advance(book_id=book.pk, now=first_close + timedelta(hours=hours))
        if number == 7:
            # A write reaching back three weeks (a recovery, a late fill): the months
            # from there on are folded again, and the boundary moves back.
            with transaction.atomic():
                rollups.refresh(book.pk, since=first_close + timedelta(hours=hours - 500))
        if number == 0:
            rollups.ensure_built(book.pk)  # the first write may have found nothing to sum
            continue
        until = RollupState.objects.get(book=book).months_until  # None until a write
        months = _month_rows(book)
        if before is not None and until is not None and before[0] == until:
            assert months == before[1], "a write on the boundary's day rewrote month rows"
            untouched += 1
        elif before is not None:
            folded += 1
        before = (until, months)
        assert _read(book, windows) == _rebuilt(book, windows), hours
        truth = Signal.objects.filter(book=book).count()
        assert rollups.is_built(book.pk)
        assert _count([book.pk]) == {book.pk: truth}
    assert untouched >= 3 and folded >= 3, (untouched, folded)
    days = BookRollup.objects.filter(book=book, grain="day")
    assert days.filter(day__gte=RollupState.objects.get(book=book).months_until).exists()
    assert _month_rows(book), "the month rows hold the days before the boundary"


def test_a_write_of_the_day_after_the_boundary_leaves_the_months_and_two_days_on_folds(
    fresh_signals_forever,
):
    """A live book refreshes today, and yesterday whenever a trade of yesterday's signal
    closes: neither re-sums the month. A refresh ``FOLD_DAYS`` past the boundary folds."""
    _market_data(count=HOURS)
    book = book_live()
    first_close = END - timedelta(hours=HOURS - 1)
    book_advance(book_id=book.pk, now=first_close + timedelta(hours=240))
    windows = _windows(first_close, 2)
    with transaction.atomic():
        rollups.refresh(book.pk, since=first_close + timedelta(hours=120))
    boundary = RollupState.objects.get(book=book).months_until
    assert boundary is not None
    months = _month_rows(book)
    midnight = rollups.midnight(boundary)
    for days in range(rollups.FOLD_DAYS):
        with transaction.atomic():
            rollups.refresh(book.pk, since=midnight + timedelta(days=days, hours=5))
        assert RollupState.objects.get(book=book).months_until == boundary
        assert _month_rows(book) == months, days
        assert _read(book, windows) == _rebuilt(book, windows), days
    later = midnight + timedelta(days=rollups.FOLD_DAYS, hours=5)
    with transaction.atomic():
        rollups.refresh(book.pk, since=later)
    assert RollupState.objects.get(book=book).months_until == later.date()
    assert _read(book, windows) == _rebuilt(book, windows)
