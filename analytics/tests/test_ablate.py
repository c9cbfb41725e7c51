"""``manage.py ablate``: one replay per guard with that guard removed, inline or on a
real Celery worker, and the report beside the first-order net impact."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from analytics.selectors import ablation_report, guard_effectiveness
from shadow.selectors import book_summary
from signals.models import Book, BookGuard, GuardConfig
from signals.services import guard_config_save
from signals.tests.candles import MARKET, store_walk

MARKET_ARGS = [
    "--exchange",
    MARKET["exchange"],
    "--symbol",
    MARKET["symbol"],
    "--timeframe",
    MARKET["timeframe"],
]


def replayed() -> Book:
    store_walk(900, seed=8)
    call_command("replay", *MARKET_ARGS, "--book", "base", "--no-progress", stdout=StringIO())
    return Book.objects.get(name="base")


@pytest.mark.django_db
def test_inline_each_leg_replays_the_same_history_without_one_guard():
    book = replayed()
    # An edit after the replay must not leak into its ablation: legs copy the frozen rows.
    guard = GuardConfig.objects.get(name="max_open_positions")
    guard.params = {"max_open": 9}
    guard_config_save(config=guard)

    out = StringIO()
    call_command("ablate", "--book", "base", "--inline", "--no-progress", stdout=out)

    legs = {leg.without_guard: leg for leg in Book.objects.filter(ablation_of=book)}
    assert set(legs) == {"cooldown_after_stop", "max_open_positions"}
    for removed, leg in legs.items():
        kept = dict(BookGuard.objects.filter(book=leg).values_list("name", "params"))
        base = dict(BookGuard.objects.filter(book=book).values_list("name", "params"))
        assert kept == {name: params for name, params in base.items() if name != removed}
        assert (leg.since, leg.until) == (book.since, book.until)

    rows = {row.guard: row for row in ablation_report(book=book)}
    first_order = {e.guard: e.outcome.net_impact for e in guard_effectiveness(book=book)}
    base_pnl = book_summary(book=book).paper_pnl
    for guard, row in rows.items():
        assert row.first_order == first_order[guard]
        assert row.path_dependent == base_pnl - book_summary(book=legs[guard]).paper_pnl
    text = out.getvalue()
    assert "path-dependent" in text
    assert f"{rows['max_open_positions'].path_dependent:.2f}" in text


@pytest.mark.django_db
def test_bad_books_get_a_clear_error():
    with pytest.raises(CommandError, match="no book named 'nope'"):
        call_command("ablate", "--book", "nope", "--inline", stdout=StringIO())
    Book.objects.create(name="live", kind=Book.Kind.LIVE)
    with pytest.raises(CommandError, match="not a replay book of its own"):
        call_command("ablate", "--book", "live", "--inline", stdout=StringIO())


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_on_the_workers_the_legs_run_as_celery_tasks(celery_worker_process):
    book = replayed()
    out = StringIO()
    call_command("ablate", "--book", "base", "--timeout", "120", "--no-progress", stdout=out)
    assert set(Book.objects.filter(ablation_of=book).values_list("without_guard", flat=True)) == {
        "cooldown_after_stop",
        "max_open_positions",
    }
    assert "Task shadow.ablation_leg" in celery_worker_process.log.read_text()
    assert all(row.path_dependent is not None for row in ablation_report(book=book))
