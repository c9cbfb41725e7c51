"""``manage.py ablate``: one replay per guard with that guard removed, inline or on a
real Celery worker, and the report beside the first-order net impact."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from analytics.roles import START_ABLATION
from analytics.selectors import ablation_report, guard_effectiveness
from analytics.tests.factories import BookFactory
from analytics.tests.personas import person
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


# The guard page's "Ablate this book" button.

ABLATE_URL = "/guards/ablate/"


@pytest.fixture
def staff_client(db):
    """Someone who may start ablations and read the pages. (It used to be any staff
    account: starting an ablation now takes the start_ablation permission, not staff.)"""
    from django.test import Client

    client = Client()
    client.force_login(person("staff", staff=True, trader=True, perms=(START_ABLATION,)))
    return client


def test_the_button_starts_one_leg_per_guard_and_the_page_shows_them(
    staff_client, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    book = replayed()

    with django_capture_on_commit_callbacks(execute=True) as started:
        response = staff_client.post(ABLATE_URL, {"book": book.pk})

    assert len(started) == 2, "one task per guard, sent after the commit"
    assert response.status_code == 302
    assert response["Location"] == f"/guards/?book={book.pk}"
    legs = {leg.without_guard: leg for leg in Book.objects.filter(ablation_of=book)}
    assert set(legs) == {"cooldown_after_stop", "max_open_positions"}
    response = staff_client.get(response["Location"])
    html = response.content.decode()
    assert "Ablation of &#x27;base&#x27; started: 2 leg(s)" in html
    rows = {row["guard"]: row for row in response.context["data"]["ablation"]["rows"]}
    base_pnl = book_summary(book=book).paper_pnl
    for guard, leg in legs.items():
        assert rows[guard]["status"] == "done"
        expected = base_pnl - book_summary(book=leg).paper_pnl
        assert rows[guard]["path_dependent"] == expected.quantize(Decimal("0.01"))
    assert "Path-dependent value" in html
    assert html.count('class="leg-status leg-done"') == 2


def test_requested_legs_show_as_pending_until_they_are_written(
    staff_client, django_capture_on_commit_callbacks
):
    book = replayed()

    with django_capture_on_commit_callbacks(execute=False):
        staff_client.post(ABLATE_URL, {"book": book.pk})

    data = staff_client.get("/guards/", {"book": book.pk}).context["data"]["ablation"]
    assert [row["status"] for row in data["rows"]] == ["pending", "pending"]
    assert data["pending"] == 2
    assert not Book.objects.filter(ablation_of=book).exists()


def test_a_get_starts_nothing(staff_client, django_capture_on_commit_callbacks):
    book = BookFactory()
    with django_capture_on_commit_callbacks(execute=True) as started:
        response = staff_client.get(ABLATE_URL, {"book": book.pk})
    assert response.status_code == 405
    assert started == []


def test_only_holders_of_the_permission_can_ablate(db, client, django_capture_on_commit_callbacks):
    book = BookFactory()
    for user in (person("trader", trader=True), person("ops", staff=True, trader=True)):
        client.force_login(user)
        with django_capture_on_commit_callbacks(execute=True) as started:
            assert client.post(ABLATE_URL, {"book": book.pk}).status_code == 403
        assert started == []
    client.logout()
    assert client.post(ABLATE_URL, {"book": book.pk})["Location"].startswith("/login/?next=")


def test_the_live_book_cannot_be_ablated(staff_client, django_capture_on_commit_callbacks):
    live = Book.objects.create(name="live", kind=Book.Kind.LIVE)
    with django_capture_on_commit_callbacks(execute=True) as started:
        response = staff_client.post(ABLATE_URL, {"book": live.pk}, follow=True)
    assert started == []
    html = response.content.decode()
    assert "The live book cannot be ablated" in html
    assert "Ablate this book" not in html


def test_the_button_needs_the_csrf_token(db):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(person("staff", staff=True, perms=(START_ABLATION,)))
    book = BookFactory()
    assert client.post(ABLATE_URL, {"book": book.pk}).status_code == 403


def test_the_button_shows_only_to_holders_of_the_permission(trader_client, staff_client):
    book = replayed()
    assert "Ablate this book" in staff_client.get("/guards/", {"book": book.pk}).content.decode()
    html = trader_client.get("/guards/", {"book": book.pk}).content.decode()
    assert "Ablate this book" not in html
    assert "python manage.py ablate --book" in html
