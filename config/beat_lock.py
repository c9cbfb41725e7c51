"""Celery beat runs once: the first beat takes a lock that lasts as long as its process,
and any other beat refuses to start with a clear message.

On PostgreSQL the lock is a session advisory lock on a connection of its own: it is
released when that connection ends, so a beat killed with SIGKILL frees it at once (no
stale lock file, no timeout to wait out), and it holds across machines that share the
database. On SQLite (the single-machine demo) it is an exclusive ``flock`` on
``var/celerybeat.lock``, released by the kernel when the process dies.

A session lock can also be lost while the beat lives on: PostgreSQL restarts, or the
lock's connection is terminated (``pg_terminate_backend``, a network cut), and a second
beat then takes it. So the beat's scheduler (``SingleBeatScheduler``, the
``CELERY_BEAT_SCHEDULER``) checks on every tick and before every send that its lock
connection is alive and still holds the lock in ``pg_locks``; the moment it does not,
the beat logs why and exits with status 4 without sending anything more.
"""

import fcntl
import logging
import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger("config.beat")

# pg_try_advisory_lock's key: an arbitrary constant of this project ("SIGNALBT").
LOCK_KEY = 0x5349474E414C4254 - (1 << 63)
LOST_EXIT_STATUS = 4
LOST = (
    "[BEAT] this beat no longer holds the single-beat lock ({where}): {why}. Another beat "
    "may hold it now; stopping at once, sending nothing more (exit status 4)."
)
REFUSAL = (
    "[BEAT] another celery beat already runs against this database ({where}); "
    "refusing to start a second one, which would send every periodic task twice. "
    "Run exactly one beat in the whole deployment (docs/operations.md)."
)

_held: Any = None  # the connection or file that holds the lock for the process lifetime


def acquire() -> bool:
    """Take the beat lock for this process; ``False`` when another beat holds it."""
    global _held
    if _held is not None:
        return True
    if connection.vendor == "postgresql":
        # Imported here: only PostgreSQL needs the driver; a SQLite run (make run) never loads it.
        import psycopg

        db = connection.settings_dict
        conn = psycopg.connect(
            dbname=db["NAME"],
            user=db["USER"] or None,
            password=db["PASSWORD"] or None,
            host=db["HOST"] or None,
            port=db["PORT"] or None,
            autocommit=True,
            application_name="celery-beat-lock",
            # A cut network must show as a dead connection within seconds, not hang the
            # check (TCP only; a Unix socket needs none of this).
            connect_timeout=5,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
            tcp_user_timeout=10000,
            options="-c statement_timeout=5000",
        )
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()
        if not (row and row[0]):
            conn.close()
            return False
        _held = conn
        return True
    path = Path(settings.BASE_DIR) / "var" / "celerybeat.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return False
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _held = handle
    return True


def where() -> str:
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        return f"PostgreSQL advisory lock {LOCK_KEY} on database {db['NAME']!r}"
    return f"lock file {Path(settings.BASE_DIR) / 'var' / 'celerybeat.lock'}"


def acquire_or_exit(**_: Any) -> None:
    """``beat_init`` receiver: hold the lock, or log why not and exit with status 3."""
    if acquire():
        logger.info("[BEAT] this beat holds the single-beat lock (%s)", where())
        return
    message = REFUSAL.format(where=where())
    logger.critical(message)
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    # Celery's signal dispatch would swallow an exception; leave at once instead.
    os._exit(3)


def _lock_ids() -> tuple[int, int]:
    """``pg_locks``' (classid, objid) of a bigint advisory key: its high and low halves."""
    return (LOCK_KEY >> 32) & 0xFFFFFFFF, LOCK_KEY & 0xFFFFFFFF


def lost_because() -> str | None:
    """Why this process does not hold the lock (any more), or ``None`` while it does."""
    if _held is None:
        return "it never took it"
    if not hasattr(_held, "execute"):
        return None  # a flock lives as long as the process: it cannot be lost
    classid, objid = _lock_ids()
    try:
        row = _held.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
            " AND pid = pg_backend_pid() AND granted AND classid::bigint = %s"
            " AND objid::bigint = %s AND objsubid = 1)",
            [classid, objid],
        ).fetchone()
    except Exception as exc:
        return f"its lock connection failed ({type(exc).__name__})"
    if not (row and row[0]):
        return "its lock connection no longer holds the lock"
    return None


def exit_unless_held() -> None:
    """Return while this process holds the lock; otherwise log why and exit at once."""
    why = lost_because()
    if why is None:
        return
    message = LOST.format(where=where(), why=why)
    logger.critical(message)
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    # os._exit, not SystemExit: beat would catch the latter, sync its schedule to the
    # database and only then stop; a beat without the lock writes nothing more.
    os._exit(LOST_EXIT_STATUS)


class SingleBeatScheduler(DatabaseScheduler):
    """django-celery-beat's ``DatabaseScheduler`` that checks the single-beat lock on
    every tick and right before every send, and writes its schedule's last-run times
    every ``BEAT_SYNC_EVERY_SECONDS`` (celery's default is 180 s)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sync_every = settings.BEAT_SYNC_EVERY_SECONDS
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> Any:
        exit_unless_held()
        # Celery writes last-run times only after a send; write them on the clock too, so
        # a run's time reaches the database within BEAT_SYNC_EVERY_SECONDS (plus a tick).
        if self._dirty and self.should_sync():
            self._do_sync()
        return super().tick(*args, **kwargs)

    def apply_async(self, *args: Any, **kwargs: Any) -> Any:
        exit_unless_held()
        return super().apply_async(*args, **kwargs)
