"""Celery beat runs once: the first beat takes a lock that lasts as long as its process,
and any other beat refuses to start with a clear message.

On PostgreSQL the lock is a session advisory lock on a connection of its own: it is
released when that connection ends, so a beat killed with SIGKILL frees it at once (no
stale lock file, no timeout to wait out), and it holds across machines that share the
database. On SQLite (the single-machine demo) it is an exclusive ``flock`` on
``var/celerybeat.lock``, released by the kernel when the process dies.
"""

import fcntl
import logging
import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

logger = logging.getLogger("config.beat")

# pg_try_advisory_lock's key: an arbitrary constant of this project ("SIGNALBT").
LOCK_KEY = 0x5349474E414C4254 - (1 << 63)
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
