"""Stuck-signal recovery: it queues ``shadow.advance_book`` once per live book with stuck
signals (read back from the real Redis queue), records what it found and did, is safe
to run twice; and the staff-only "Run recovery now" button."""

import base64
import json
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analytics.models import RecoveryRun
from analytics.recovery import recover, recover_stuck_signals
from analytics.roles import START_RECOVERY
from analytics.tests.factories import BookFactory, SignalFactory
from analytics.tests.personas import person
from signals.models import Book, Signal, SignalState

pytestmark = pytest.mark.django_db

RECOVER = reverse("analytics:run-recovery")


def queued(broker, queue="shadow"):
    """(task name, kwargs) of every message waiting in ``queue``, oldest first."""
    messages = []
    for raw in reversed(broker.lrange(queue, 0, -1)):
        message = json.loads(raw)
        _args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        messages.append((message["headers"]["task"], kwargs))
    return messages


def stuck_signal(book, **kwargs):
    with time_machine.travel(timezone.now() - timedelta(hours=1), tick=False):
        return SignalFactory(book=book, **kwargs)


@pytest.fixture
def books():
    """Two live books with stuck signals, a healthy live book, a replay with old ones."""
    live = BookFactory(name="live", kind=Book.Kind.LIVE)
    other = BookFactory(name="live-2", kind=Book.Kind.LIVE)
    healthy = BookFactory(name="live-3", kind=Book.Kind.LIVE)
    replay = BookFactory()
    stuck = [
        stuck_signal(live),
        stuck_signal(live),
        stuck_signal(
            live, state=SignalState.APPROVED, decided_at=timezone.now() - timedelta(hours=3)
        ),
        stuck_signal(other),
    ]
    SignalFactory(book=healthy)  # just generated: not late
    stuck_signal(replay)
    stuck_signal(live, state=SignalState.BLOCKED)  # finished
    return {"live": live, "other": other, "stuck": stuck}


def test_it_queues_one_advance_per_stuck_live_book_and_records_it(books, broker):
    live, other = books["live"], books["other"]
    states = dict(Signal.objects.values_list("pk", "state"))

    result = recover_stuck_signals()

    assert queued(broker) == [
        ("shadow.advance_book", {"book_id": live.pk}),
        ("shadow.advance_book", {"book_id": other.pk}),
    ]
    run = RecoveryRun.objects.get()
    assert result == {"stuck_found": 4, "run": run.pk, "books": sorted([live.pk, other.pk])}
    assert run.actor == "beat" and run.stuck_found == 4
    assert sorted(action["signal"] for action in run.actions) == sorted(
        s.pk for s in books["stuck"]
    )
    assert {action["action"] for action in run.actions} == {"queued shadow.advance_book"}
    assert {(a["signal"], a["state"]) for a in run.actions} == {
        (s.pk, s.state) for s in books["stuck"]
    }
    assert "book live: 3 stuck; queued shadow.advance_book once" in run.detail
    assert "book live-2: 1 stuck" in run.detail
    # Recovery itself moves no signal: the advance it queued does.
    assert dict(Signal.objects.values_list("pk", "state")) == states


def test_it_is_safe_to_run_twice(books, broker):
    recover(actor="beat")
    recover(actor="beat")

    # Each run asks each book once; advance_book is idempotent, so the second ask only
    # finds nothing new to run.
    assert [kwargs["book_id"] for _, kwargs in queued(broker)] == [
        books["live"].pk,
        books["other"].pk,
        books["live"].pk,
        books["other"].pk,
    ]
    assert list(RecoveryRun.objects.values_list("stuck_found", flat=True)) == [4, 4]


def test_a_beat_run_that_finds_nothing_is_not_recorded_a_persons_run_is(broker):
    live = BookFactory(name="live", kind=Book.Kind.LIVE)
    SignalFactory(book=live)

    assert recover_stuck_signals() == {"stuck_found": 0, "run": None}
    assert not RecoveryRun.objects.exists()
    run = recover(actor="alice")
    assert run is not None and run.stuck_found == 0 and "nothing to do" in run.detail
    assert queued(broker) == []


def test_a_broker_that_is_down_is_recorded_not_raised(books, settings, monkeypatch):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    from celery import Celery

    # A Celery app of its own on the dead broker (the project's app stays untouched);
    # Celery would take $CELERY_BROKER_URL over the URL given.
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    dead = Celery("dead", broker=f"redis://u:topsecret@127.0.0.1:{port}/0", set_as_current=False)
    dead.conf.task_routes = settings.CELERY_TASK_ROUTES
    dead.conf.broker_connection_timeout = 1
    monkeypatch.setattr("analytics.recovery.current_app", dead)
    run = recover(actor="alice")
    assert run is not None and run.stuck_found == 4
    assert "could not queue shadow.advance_book" in run.detail
    assert "topsecret" not in run.detail


def test_the_button_runs_recovery_for_holders_of_the_permission_only(books, broker):
    anonymous = Client()
    assert anonymous.post(RECOVER)["Location"].startswith("/login/?next=")

    trader = person("trader", trader=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(trader)
    assert client.post(RECOVER).status_code == 403  # no CSRF token

    # Staff status alone no longer runs it (the permission does): the same account with
    # the trader role and start_recovery.
    staff = person("ops", staff=True, trader=True, perms=(START_RECOVERY,))
    client.force_login(staff)
    page = client.get(reverse("analytics:health"), {"book": books["live"].pk})
    html = page.content.decode()
    assert "Run recovery now" in html
    token = page.cookies["csrftoken"].value
    assert client.post(RECOVER, {"book": books["live"].pk}).status_code == 403
    assert client.get(RECOVER).status_code == 405
    assert not RecoveryRun.objects.exists()

    response = client.post(
        RECOVER, {"book": books["live"].pk, "csrfmiddlewaretoken": token}, follow=True
    )
    assert response.redirect_chain == [(f"/health/?book={books['live'].pk}", 302)]
    run = RecoveryRun.objects.get()
    assert run.actor == "ops" and run.stuck_found == 4
    html = response.content.decode()
    assert "Recovery found 4 stuck signal(s) in 2 live book(s)" in html
    assert "book live: 3 stuck" in html  # the run is listed on the page
    assert len(queued(broker)) == 2

    # A trader may look but not press.
    client.force_login(trader)
    page = client.get(reverse("analytics:health"), {"book": books["live"].pk})
    assert "Run recovery now" not in page.content.decode()
    token = page.cookies.get("csrftoken")
    data = {"csrfmiddlewaretoken": token.value} if token else {}
    assert client.post(RECOVER, data).status_code == 403
    assert RecoveryRun.objects.count() == 1
