"""Every database error a task can meet mid-write is retried, as Django raises it and as
psycopg raises it raw (config.task_base.DATABASE_ERRORS).

The faults are PostgreSQL's own: a trigger on a table the live run writes fails the first
write (the bulk COPY of guard decisions, or the ORM's update of the book's state) with a
real server error of each kind, or terminates its own connection; a sequence, which no
rollback undoes, makes it fire once. The real ``shadow.advance_book`` task then has to
retry and write exactly what a clean replay of the same candles writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from config.celery import app
from config.task_base import DATABASE_ERRORS
from config.tests.test_faults import _markets, _reference, _revision
from shadow.live import book_advance
from shadow.tasks import advance_book
from shadow.tests.book_rows import book_rows
from signals.models import Book
from signals.services import book_live

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

# Each kind, as the task meets it (raw from psycopg's COPY, or wrapped by Django).
KINDS: dict[str, type[Exception]] = {
    "connection terminated (AdminShutdown)": psycopg.errors.AdminShutdown,
    "connection failure": psycopg.errors.ConnectionFailure,
    "serialization failure": psycopg.errors.SerializationFailure,
    "deadlock detected": psycopg.errors.DeadlockDetected,
    "psycopg operational error": psycopg.OperationalError,
    "psycopg interface error": psycopg.InterfaceError,
    "django operational error": OperationalError,
    "django interface error": InterfaceError,
}


def _ours(name: str) -> bool:
    return not name.startswith("celery.")


@pytest.mark.parametrize("kind", KINDS.values(), ids=list(KINDS))
def test_every_task_retries_this_kind_of_database_error(kind):
    app.loader.import_default_modules()  # every app's tasks module, as a worker loads them
    tasks = {name: task for name, task in app.tasks.items() if _ours(name)}
    assert "shadow.advance_book" in tasks and "signals.execute_book" in tasks
    not_retried = [
        name
        for name, task in tasks.items()
        if not issubclass(kind, tuple(task.autoretry_for)) or not hasattr(task, "_orig_run")
    ]
    assert not_retried == []
    assert issubclass(kind, DATABASE_ERRORS)


# -- real faults from PostgreSQL ----------------------------------------------------------

COPY_TABLE = "signals_guarddecision"  # written by BookWriter through psycopg's COPY
ORM_TABLE = "signals_bookstate"  # updated by the ORM (the book's optimistic lock)

FAULTS = {
    # (table, what the trigger does on its first row)
    "copy-terminated": (COPY_TABLE, "PERFORM pg_terminate_backend(pg_backend_pid());"),
    "copy-connection-failure": (COPY_TABLE, "RAISE EXCEPTION 'fault' USING ERRCODE = '08006';"),
    "copy-serialization": (COPY_TABLE, "RAISE EXCEPTION 'fault' USING ERRCODE = '40001';"),
    "copy-deadlock": (COPY_TABLE, "RAISE EXCEPTION 'fault' USING ERRCODE = '40P01';"),
    "orm-terminated": (ORM_TABLE, "PERFORM pg_terminate_backend(pg_backend_pid());"),
    "orm-serialization": (ORM_TABLE, "RAISE EXCEPTION 'fault' USING ERRCODE = '40001';"),
    "orm-deadlock": (ORM_TABLE, "RAISE EXCEPTION 'fault' USING ERRCODE = '40P01';"),
}
EXPECTED = {
    "copy-terminated": psycopg.OperationalError,
    "copy-connection-failure": psycopg.errors.ConnectionFailure,
    "copy-serialization": psycopg.errors.SerializationFailure,
    "copy-deadlock": psycopg.errors.DeadlockDetected,
    "orm-terminated": OperationalError,
    "orm-serialization": OperationalError,
    "orm-deadlock": OperationalError,
}


@pytest.fixture
def live_markets(settings) -> int:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's own faults")
    settings.SIGNAL_MAX_AGE = timedelta(days=3650)
    _markets(400)
    return book_live().pk


@pytest.fixture
def fault() -> Iterator[object]:
    """``fault(name)`` installs the trigger; ``fired()`` says how often it ran."""

    class Fault:
        def __call__(self, name: str) -> None:
            table, action = FAULTS[name]
            with connection.cursor() as cursor:
                cursor.execute("CREATE SEQUENCE IF NOT EXISTS fault_shots")
                cursor.execute(
                    "CREATE OR REPLACE FUNCTION fault_once() RETURNS trigger AS $$ BEGIN "
                    f"IF nextval('fault_shots') = 1 THEN {action} END IF; RETURN NEW; END $$ "
                    "LANGUAGE plpgsql"
                )
                cursor.execute(
                    f"CREATE TRIGGER fault_once BEFORE INSERT OR UPDATE ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION fault_once()"
                )
            self.table = table

        def fired(self) -> int:
            with connection.cursor() as cursor:
                cursor.execute("SELECT last_value, is_called FROM fault_shots")
                last, called = cursor.fetchone()
            return int(last) if called else 0

        def remove(self) -> None:
            connection.close()  # a terminated connection is not reused
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TRIGGER IF EXISTS fault_once ON {self.table}")
                cursor.execute("DROP FUNCTION IF EXISTS fault_once()")
                cursor.execute("DROP SEQUENCE IF EXISTS fault_shots")

    made = Fault()
    yield made
    made.remove()


@pytest.mark.parametrize("name", ["copy-terminated", "copy-serialization", "orm-deadlock"])
def test_the_fault_reaches_the_task_as_this_error(live_markets, fault, name):
    """Why psycopg's own classes are in the list: the COPY's errors are not Django's."""
    fault(name)
    with pytest.raises(EXPECTED[name]) as caught:
        book_advance(book_id=live_markets, now=timezone.now())
    if name.startswith("copy"):
        assert not isinstance(caught.value, OperationalError | InterfaceError)
    assert _revision() == 0, "the failed attempt left nothing behind"


DESCRIBED = {
    "copy-terminated": "connection terminated during advance_book's bulk COPY",
    "copy-connection-failure": "connection failure (08006) during advance_book's bulk COPY",
    "copy-serialization": "serialization failure (40001) during advance_book's bulk COPY",
    "copy-deadlock": "deadlock (40P01) during advance_book's bulk COPY",
    "orm-terminated": "connection terminated at advance_book's ORM write",
    "orm-serialization": "serialization failure (40001) at advance_book's ORM write",
    "orm-deadlock": "deadlock (40P01) at advance_book's ORM write",
}


@pytest.mark.reliability(fault="(per parameter)", expected="retried; rows equal a clean replay")
@pytest.mark.parametrize("name", list(FAULTS))
def test_advance_book_retries_and_writes_exactly_what_a_clean_replay_writes(
    live_markets, fault, name, reliability
):
    raised = EXPECTED[name]
    reliability.fields["fault"] = (
        f"{DESCRIBED[name]} (raised as {raised.__module__}.{raised.__name__})"
    )
    fault(name)
    result = advance_book.apply(kwargs={"book_id": live_markets})
    equal = result.successful() and book_rows(Book.objects.get(name="live")) == _reference()
    reliability.observed(
        "retried once, rows equal a clean replay" if equal else "not retried: the run failed",
        lost=0 if equal else 1,
        duplicated=0,
    )
    assert result.successful(), result.traceback
    assert fault.fired() >= 2, "the first attempt failed and a retry wrote the rows"
    assert _revision() == 1
    assert equal


@pytest.mark.worker
@pytest.mark.reliability(
    fault="a real worker's connection terminated during advance_book's bulk COPY",
    expected="retried with backoff; rows equal a clean replay",
)
def test_a_worker_retries_advance_book_when_its_connection_drops_mid_copy(
    live_markets, fault, celery_worker_process, wait_for, reliability
):
    """The measured case: the connection dropped during the bulk COPY (a raw psycopg
    error) failed the run for good; a real worker now retries it with backoff."""
    fault("copy-terminated")
    celery_worker_process.send("shadow.advance_book", book_id=live_markets)
    wait_for(lambda: _revision() == 1, timeout=90, what="the retried run")
    log = celery_worker_process.log.read_text()
    assert "Retry in" in log
    assert "terminating connection due to administrator command" in log
    assert fault.fired() >= 2
    assert book_rows(Book.objects.get(name="live")) == _reference()
    reliability.observed(
        "'Retry in' logged, the retry wrote rows equal to a clean replay", lost=0, duplicated=0
    )
