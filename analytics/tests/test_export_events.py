"""``manage.py export_events``: the transition log as JSON Lines, in id order, in bounded
batches, and ``--follow`` like ``tail -f`` (a real process, stopped with Ctrl-C)."""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.tests.factories import BookFactory, SignalFactory, SignalTransitionFactory
from signals.models import SignalTransition


def _export(*arguments: str) -> list[dict]:
    out = io.StringIO()
    call_command("export_events", *arguments, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.django_db
def test_it_prints_every_transition_of_the_book_once_in_id_order(replayed_book):
    other = BookFactory(name="other")
    SignalTransitionFactory(signal=SignalFactory(book=other))
    events = _export("--book", replayed_book.name, "--batch-size", "7")
    expected = list(
        SignalTransition.objects.filter(signal__book=replayed_book)
        .order_by("id")
        .select_related("signal")
    )
    assert len(expected) > 20
    assert [event["id"] for event in events] == [row.id for row in expected]
    first, row = events[0], expected[0]
    assert first == {
        "id": row.id,
        "time": row.created_at.isoformat(),
        "market_time": row.simulated_at.isoformat(),
        "signal": row.signal_id,
        "book": replayed_book.name,
        "market": {
            "exchange": row.signal.exchange,
            "symbol": row.signal.symbol,
            "timeframe": row.signal.timeframe,
        },
        "side": row.signal.side,
        "event": row.name,
        "from": row.from_state,
        "to": row.to_state,
        "actor": row.actor,
        "payload": row.payload,
    }


@pytest.mark.django_db
def test_since_id_resumes_after_the_last_transition_seen():
    book = BookFactory(name="resume")
    rows = [SignalTransitionFactory(signal=SignalFactory(book=book)) for _ in range(5)]
    events = _export("--book", "resume", "--since-id", str(rows[1].id))
    assert [event["id"] for event in events] == [row.id for row in rows[2:]]


@pytest.mark.django_db
def test_it_reads_in_batches_so_queries_grow_with_batches_not_rows():
    book = BookFactory(name="long")
    signals = [SignalFactory(book=book) for _ in range(4)]
    SignalTransition.objects.bulk_create(
        SignalTransition(
            signal=signals[n % 4], name="block", from_state="generated", to_state="blocked"
        )
        for n in range(250)
    )
    with CaptureQueriesContext(connection) as queries:
        events = _export("--book", "long", "--batch-size", "100")
    assert len(events) == 250
    # One query finds the book, one reads each batch of 100 (the third is short: done).
    assert len(queries) == 1 + 3
    with CaptureQueriesContext(connection) as queries:
        assert len(_export("--book", "long", "--batch-size", "25")) == 250
    assert len(queries) == 1 + 10 + 1  # ten full batches, then an empty one


@pytest.mark.django_db
def test_it_refuses_an_unknown_book_with_a_clear_message():
    BookFactory(name="known")
    with pytest.raises(CommandError, match="no book named 'nope'; books: known"):
        call_command("export_events", "--book", "nope", stdout=io.StringIO())


def _env() -> dict[str, str]:
    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "PYTHONUNBUFFERED": "1",
    }


def _read_line(process: subprocess.Popen[str], timeout: float = 30) -> dict:
    import selectors

    assert process.stdout is not None
    waiter = selectors.DefaultSelector()
    waiter.register(process.stdout, selectors.EVENT_READ)
    if not waiter.select(timeout):
        raise AssertionError("no line from export_events --follow in time")
    return json.loads(process.stdout.readline())


@pytest.mark.django_db(transaction=True)
def test_follow_prints_a_transition_added_while_it_runs_and_ctrl_c_exits_cleanly(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the follower is a second process on the test database")
    book = BookFactory(name="followed")
    early = SignalTransitionFactory(signal=SignalFactory(book=book))
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "export_events",
            "--book",
            "followed",
            "--follow",
            "--interval",
            "0.2",
        ],
        cwd=settings.BASE_DIR,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _read_line(process)["id"] == early.id
        late = SignalTransitionFactory(signal=SignalFactory(book=book), name="approve")
        event = _read_line(process)
        assert (event["id"], event["event"]) == (late.id, "approve")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.django_db(transaction=True)
def test_a_closed_pipe_ends_it_quietly(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the exporter is a second process on the test database")
    book = BookFactory(name="piped")
    for _ in range(3):
        SignalTransitionFactory(signal=SignalFactory(book=book))
    started = time.monotonic()
    finished = subprocess.run(
        [
            "sh",
            "-c",
            f"{sys.executable} manage.py export_events --book piped --follow --interval 0.2 "
            "--batch-size 1 | head -n 1",
        ],
        cwd=settings.BASE_DIR,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0
    assert len(finished.stdout.splitlines()) == 1
    assert "Traceback" not in finished.stderr and "Broken pipe" not in finished.stderr
    assert time.monotonic() - started < 30
