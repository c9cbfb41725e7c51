"""Exchange faults end to end: a real Celery worker runs ``markets.sync_candles`` (sent as
beat's sweep sends it) with the real ccxt ``kraken`` class pointed at a fake Kraken on
127.0.0.1 (``EXCHANGE_API_URL``, config/tests/fake_exchange.py) that times out, answers
429, 418, 5xx, an HTML page or an empty body, then recovers.

Each failing run must stay inside the gateway's retry budget (counted at the server),
fail once with ``ExchangeUnavailableError``/``ExchangeDataError`` (no Celery retry, no
traceback storm), show on the pipeline-health page, store nothing; three in a row raise
the "repeated exchange errors" alert; the first good answer stores the candles and ends
the streak.
"""

from __future__ import annotations

import itertools
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from alerts.models import Alert, WatchState
from analytics.models import TaskHeartbeat
from config.celery import app
from config.tests import fake_exchange as fx
from markets.models import Candle
from signals.tests.factories import BookFactory

pytestmark = [pytest.mark.fault, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TASK = "markets.sync_candles"
# What beat's sweep (signals.sync_watched_markets) sends for a watched market.
SWEEP_KWARGS = {"exchange": "kraken", "symbol": fx.SYMBOL, "timeframe": "1m"}
ATTEMPTS = 3
TIMEOUT_MS = 400
BACKOFF_SECONDS = 0.05
STREAK = "streak:markets.sync_candles:kraken"


def _recorded_dir() -> Path:
    shared = Path(os.environ.get("SHARED_DIR", Path(settings.BASE_DIR).resolve().parent / "shared"))
    return shared / fx.RECORDED


@pytest.fixture(scope="module")
def kraken():
    recorded = _recorded_dir()
    if not recorded.is_dir():
        pytest.skip(f"recorded Kraken answers not available: {recorded} is absent (SHARED_DIR)")
    server = fx.FakeKraken(recorded).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def worker(kraken, django_db_setup, django_db_blocker):
    db = connection.settings_dict
    with fx.start_worker(
        base_dir=Path(settings.BASE_DIR),
        database_url=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        broker_url=settings.CELERY_BROKER_URL,
        log=Path(settings.BASE_DIR) / "var" / "test-exchange-faults-worker.log",
        env={
            "EXCHANGE_API_URL": kraken.url,
            "EXCHANGE_TIMEOUT_MS": str(TIMEOUT_MS),
            "EXCHANGE_MAX_ATTEMPTS": str(ATTEMPTS),
            "EXCHANGE_BACKOFF_SECONDS": str(BACKOFF_SECONDS),
            "ALERT_EXCHANGE_ERROR_STREAK": "3",
        },
    ) as process:
        yield process


@pytest.fixture
def superuser_client(client):
    user = get_user_model().objects.create_superuser("ops", "ops@example.org", "x")
    client.force_login(user)
    return client


def sync_once(worker: fx.WorkerProcess, *, timeout: float = 30) -> str:
    """Send one sync as the sweep does and wait for the worker to finish it; returns
    ``"failed"`` or ``"succeeded"``."""
    task_id = app.send_task(TASK, kwargs=SWEEP_KWARGS).id
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = worker.text()
        if f"[{task_id}] raised unexpected" in text:
            return "failed"
        if f"[{task_id}] succeeded in" in text:
            return "succeeded"
        time.sleep(0.1)
    raise AssertionError(f"{TASK}[{task_id}] did not finish in {timeout}s:\n{text[-3000:]}")


def heartbeat() -> TaskHeartbeat:
    # The worker's task_failure/task_success handlers write it; give them a moment.
    deadline = time.monotonic() + 5
    while True:
        beat = TaskHeartbeat.objects.filter(task=TASK).first()
        if beat is not None and beat.runs == beat.failures + (beat.last_success_at is not None):
            return beat
        if beat is not None and time.monotonic() > deadline:
            return beat
        time.sleep(0.1)


def streak() -> int:
    state = WatchState.objects.filter(name=STREAK).first()
    return int(state.value.get("count", 0)) if state else 0


def health_task_row(client, book_id: int) -> dict[str, Any]:
    """The row of ``markets.sync_candles`` in the health page's JSON twin."""
    response = client.get(f"/api/v1/health/?book={book_id}")
    assert response.status_code == 200, response.content[:500]
    tasks = response.json()["data"]["tasks"]
    rows = [row for row in tasks["on_demand"] + tasks["periodic"] if row["task"] == TASK]
    assert len(rows) == 1, tasks
    return rows[0]


def fail_run(worker, kraken, answers: list[fx.Answer], requests: int) -> TaskHeartbeat:
    """One sync against ``answers``: it fails after exactly ``requests`` OHLC requests
    and stores nothing."""
    kraken.script(*answers)
    assert sync_once(worker) == "failed"
    assert len(kraken.ohlc_requests()) == requests
    assert not Candle.objects.filter(exchange="kraken").exists()
    return heartbeat()


def test_transient_faults_fail_cleanly_within_the_retry_budget_then_alert_then_recover(
    worker, kraken, superuser_client
):
    book = BookFactory()
    log_start = len(worker.text())  # the worker serves every test of this module
    runs = [
        ([fx.timeout(TIMEOUT_MS / 1000 + 0.5)] * ATTEMPTS, "RequestTimeout"),
        ([fx.TOO_MANY_REQUESTS] * ATTEMPTS, "RateLimitExceeded"),
        ([fx.TEAPOT] * ATTEMPTS, "DDoSProtection"),
        ([fx.INTERNAL_ERROR, fx.BAD_GATEWAY, fx.SERVICE_UNAVAILABLE], "ExchangeNotAvailable"),
    ]
    for number, (answers, ccxt_error) in enumerate(runs, start=1):
        started = time.monotonic()
        beat = fail_run(worker, kraken, answers, requests=ATTEMPTS)
        times = [seen.at for seen in kraken.ohlc_requests()]

        # Backoff between the attempts (the rate limiter adds its own spacing on top).
        assert all(b - a >= BACKOFF_SECONDS for a, b in itertools.pairwise(times))
        assert time.monotonic() - started < 15
        assert (beat.runs, beat.failures) == (number, number)
        assert beat.last_error.startswith("ExchangeUnavailableError: kraken: fetching BTC/USDT")
        assert f"failed {ATTEMPTS} time(s), giving up: {ccxt_error}" in beat.last_error
        assert streak() == number

        # What /health/ shows for the task: the failure, its message, no success.
        row = health_task_row(superuser_client, book.pk)
        assert (row["runs"], row["failures"], row["last_success_at"]) == (number, number, None)
        assert row["last_error"] == beat.last_error
        page = superuser_client.get(f"/health/?book={book.pk}").content.decode()
        assert ccxt_error in page
        assert "ExchangeUnavailableError" in page

        alerts = Alert.objects.filter(kind="exchange_errors", key="kraken")
        if number < 3:
            assert not alerts.exists()
        else:
            alert = alerts.get()
            assert alert.severity == "critical"
            assert f"failed {number} times in a row" in alert.message or alert.repeats > 0
            assert "ExchangeUnavailableError" in alert.message

    # No storm: per run one delivery, one retry warning per backoff inside the gateway,
    # and two errors (the gateway giving up; Celery's one failure report with its chained
    # traceback). Celery never retries the task.
    log = worker.text()[log_start:]
    assert log.count("] received") == len(runs)
    assert log.count("] raised unexpected: ExchangeUnavailableError(") == len(runs)
    assert log.count("; attempt ") == (ATTEMPTS - 1) * len(runs)
    assert log.count("ERROR/") == 2 * len(runs)
    # A Celery retry would be a new delivery (counted above) announced by "Retry in".
    assert "Retry in" not in log

    # The exchange recovers: the next sync stores every closed candle it served.
    kraken.script(fx.GOOD)
    assert sync_once(worker) == "succeeded"
    served = kraken.served_rows[0]
    closed = served[:-1]  # the last row is the still-open candle
    stored = Candle.objects.filter(exchange="kraken", symbol=fx.SYMBOL, timeframe="1m")
    assert stored.count() == len(closed) > 600
    by_time = {int(c.open_time.timestamp()): c for c in stored}
    assert sorted(by_time) == [row[0] for row in closed]
    for time_s, open_, high, low, close, _vwap, volume, _count in closed[::50]:
        candle = by_time[time_s]
        assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
            Decimal(open_),
            Decimal(high),
            Decimal(low),
            Decimal(close),
            Decimal(volume),
        )
    assert streak() == 0
    beat = heartbeat()
    assert beat.last_success_at is not None and beat.last_success_at > beat.last_failure_at
    assert health_task_row(superuser_client, book.pk)["last_success_at"] is not None


def test_garbage_with_status_200_is_a_data_error_not_no_new_candles(worker, kraken):
    described = {
        "HTML page": (fx.HTML_PAGE, 'a body that is not JSON: "<!DOCTYPE html>'),
        "empty body": (fx.EMPTY_BODY, "an empty body"),
    }
    for number, (answer, text) in enumerate(described.values(), start=1):
        # Not transient as far as ccxt knows: one request, no retry, no candles.
        beat = fail_run(worker, kraken, [answer], requests=1)

        assert beat.failures == number
        assert beat.last_error.startswith(
            "ExchangeDataError: kraken answered BTC/USDT 1m since "
        ), beat.last_error
        assert text in beat.last_error
        assert streak() == number
    assert not Alert.objects.filter(kind="exchange_errors").exists()  # two, not three
