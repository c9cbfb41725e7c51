"""Fixtures shared by every app's tests."""

import os
from pathlib import Path

import pytest

# Longest first. Under ``make test`` (pytest-xdist, ``--dist loadfile
# --no-loadscope-reorder``) a file runs whole in one process and the processes take files
# in collection order; a long file taken last would run alone at the end while the other
# processes sit idle (the 200 s alert soak did: 390 s of work in four processes, then 210
# s of soak). These start first, longest first, so they overlap everything else; each
# file's time is from `--durations` on a quiet machine (docs/performance.md, "The test
# suite"). A file not listed keeps its place after them; a stale entry only costs order.
SLOW_FILES = (
    "alerts/tests/test_alerts_soak.py",  # 210 s, mostly waiting on a real beat
    "config/tests/test_deploy.py",  # 105-155 s: five slot deploys
    "config/tests/test_faults.py",  # 115 s: workers, beat, PostgreSQL and Redis restarts
    "signals/tests/test_order_races.py",  # 85-110 s: hundreds of forked passes
    "alerts/tests/test_alert_delivery.py",  # 55-60 s
    "config/tests/test_two_nodes.py",  # 55 s: a private PostgreSQL cluster
    "config/tests/test_beat_lock_lost.py",  # 40-50 s
    "analytics/tests/test_fidelity_rollup.py",
    "config/tests/test_exchange_faults.py",
    "config/tests/test_database_retries.py",
    "config/tests/test_run_demo.py",
    "config/tests/test_run_demo_offline.py",
    "shadow/tests/test_replay_embedded.py",
    "shadow/tests/test_replay_chunks.py",
    "analytics/tests/test_heartbeats.py",
    "analytics/tests/test_browser_layout.py",
    "markets/tests/test_chunked_load.py",
    "config/tests/test_fault_lost_work.py",
    "analytics/tests/test_number_text.py",
    "config/tests/test_secrets_never_leak.py",
    "analytics/tests/test_filter_fuzz.py",
)


@pytest.hookimpl(trylast=True)  # after pytest-randomly's shuffle, which it keeps otherwise
def pytest_collection_modifyitems(items):
    rank = {path: index for index, path in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture
def shared_dir() -> Path:
    """``../shared`` beside the checkout (or ``$SHARED_DIR``); skips the test when absent."""
    path = Path(os.environ.get("SHARED_DIR", Path(__file__).resolve().parent.parent / "shared"))
    if not (path / "data").is_dir():
        pytest.skip(f"real market data not available: {path / 'data'} is absent (set SHARED_DIR)")
    return path


@pytest.fixture
def celery_worker_process(transactional_db, settings):
    """A real Celery worker process on the test database and the test Redis database.

    Yields a handle with ``send(name)`` and ``finished()`` (how many tasks the worker has
    finished so far, read from its log). The Redis database is flushed first so no
    message of an earlier run is delivered.
    """
    import signal
    import subprocess
    import sys
    import time

    import redis
    from django.db import connection

    from config.celery import app

    broker = settings.CELERY_BROKER_URL
    redis.Redis.from_url(broker).flushdb()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
            if connection.vendor == "postgresql"
            else f"sqlite:///{db['NAME']}"
        ),
        "CELERY_BROKER_URL": broker,
        # Process the whole stored history in the live book, not just the last hours.
        "SIGNAL_MAX_AGE_MINUTES": str(60 * 24 * 365),
    }
    # One log per test process: two suites run side by side (xdist, or two checkouts'
    # developers) never read each other's worker output.
    log_path = Path(settings.BASE_DIR) / "var" / f"test-worker-{os.getpid()}.log"
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-P",
                "solo",
                "-c",
                "1",
                "-Q",
                "default,market_data,signals,shadow,analytics,alerts",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
                "-l",
                "info",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "ready" not in log_path.read_text():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start:\n{log_path.read_text()}")
            time.sleep(0.2)

        class Worker:
            log = log_path

            @staticmethod
            def send(name: str, **kwargs):
                return app.send_task(name, kwargs=kwargs)

            @staticmethod
            def finished() -> int:
                text = log_path.read_text()
                return text.count("] succeeded in ") + text.count("] raised unexpected")

        yield Worker
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        # Leave the worker's output in the test report when something failed.
        sys.stderr.write(log_path.read_text()[-5000:])


@pytest.fixture
def fresh_signals_forever(settings):
    """A live book processes its whole stored history: no signal is too old to act on."""
    from datetime import timedelta

    settings.SIGNAL_MAX_AGE = timedelta(days=36500)


@pytest.fixture
def wait_for():
    """Poll a predicate until it returns something truthy; fail after a timeout."""
    import time

    def wait(predicate, *, timeout: float = 60, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.3)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    return wait


# --- docs/reliability.md from the suite's own results --------------------------------
# A fault test carries ``@pytest.mark.reliability(fault=..., expected=...)`` and records
# what it observed through the ``reliability`` fixture; each run writes the records to
# var/reliability-results.json, and ``bin/reliability-doc`` turns them into the table
# at the top of docs/reliability.md.

RELIABILITY_RESULTS = Path(__file__).resolve().parent / "var" / "reliability-results.json"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "reliability(fault, expected): a fault listed in docs/reliability.md; the test "
        "records what it observed with the `reliability` fixture",
    )


class ReliabilityRecord:
    """What one fault test saw: ``observed(text, lost=..., duplicated=...)``."""

    def __init__(self, fields: dict):
        self.fields = fields

    def observed(self, text: str, *, lost: int, duplicated: int, trials: int = 1) -> None:
        self.fields.update(observed=text, lost=lost, duplicated=duplicated, trials=trials)


@pytest.fixture
def reliability(request):
    marker = request.node.get_closest_marker("reliability")
    if marker is None:
        raise pytest.UsageError("the reliability fixture needs @pytest.mark.reliability")
    fields = {
        "fault": marker.kwargs["fault"],
        "expected": marker.kwargs["expected"],
        "test": request.node.nodeid,
    }
    request.node.user_properties.append(("reliability", fields))
    return ReliabilityRecord(fields)


_reliability_results: list[dict] = []


def pytest_runtest_logreport(report):
    if report.when != "call":
        return
    for key, fields in report.user_properties:
        if key == "reliability":
            _reliability_results.append(
                {**fields, "outcome": report.outcome, "seconds": round(report.duration, 1)}
            )


def pytest_sessionfinish(session):
    # Under xdist the controller gets every worker's reports (user_properties included)
    # and writes the file alone; the workers would race on it.
    if not _reliability_results or hasattr(session.config, "workerinput"):
        return
    import json

    known = {}
    if RELIABILITY_RESULTS.exists():
        known = {row["test"]: row for row in json.loads(RELIABILITY_RESULTS.read_text())}
    known.update({row["test"]: row for row in _reliability_results})
    RELIABILITY_RESULTS.parent.mkdir(exist_ok=True)
    RELIABILITY_RESULTS.write_text(
        json.dumps(sorted(known.values(), key=lambda r: r["test"]), indent=1)
    )
