"""Celery beat runs once: a second beat against the same database refuses to start with
a clear message, and a beat killed with SIGKILL frees the lock at once. Real beat
processes on the test PostgreSQL and Redis."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def _env(settings) -> dict[str, str]:
    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }


def _beat(settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "info"],
            cwd=settings.BASE_DIR,
            env=_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_for(path: Path, text: str, process: subprocess.Popen[bytes], timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not seen; log:\n{path.read_text(errors='replace')[-3000:]}")


def test_a_second_beat_refuses_to_start_and_a_killed_beat_frees_the_lock(settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's")
    first_log, second_log, third_log = (tmp_path / f"beat{n}.log" for n in (1, 2, 3))
    first = _beat(settings, first_log)
    third = None
    try:
        _wait_for(first_log, "holds the single-beat lock", first)

        second = _beat(settings, second_log)
        assert second.wait(timeout=60) == 3
        text = second_log.read_text()
        assert "another celery beat already runs against this database" in text
        assert "Run exactly one beat" in text
        assert first.poll() is None, "the first beat keeps running"

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        third = _beat(settings, third_log)
        _wait_for(third_log, "holds the single-beat lock", third)
    finally:
        for process in (first, third):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
