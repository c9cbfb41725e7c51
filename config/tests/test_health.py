"""/healthz against the real PostgreSQL and Redis of the test run."""

import socket
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
import time_machine
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from config.health import broker_location
from signals.models import Book
from signals.tests.factories import BookFactory, SignalFactory

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def beat_ran(ago: timedelta) -> PeriodicTask:
    every = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(
        name=f"test-{ago}",
        task="config.noop",
        interval=every,
        last_run_at=timezone.now() - ago,
    )


def test_all_ok_on_the_real_database_and_broker(signed_in):
    beat_ran(timedelta(seconds=30))
    response = signed_in.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok", body
    checks = body["checks"]
    assert set(checks) == {"database", "broker", "beat", "stuck_signals"}
    assert checks["database"]["status"] == "ok"
    assert checks["database"]["latency_ms"] >= 0
    assert checks["broker"]["status"] == "ok"
    assert checks["broker"]["url"].startswith("redis://127.0.0.1:")
    assert checks["beat"]["status"] == "ok"
    assert checks["beat"]["age_seconds"] < 300
    assert checks["stuck_signals"] == {"status": "ok", "count": 0}


@pytest.fixture
def signed_in(client, django_user_model):
    """The figures of every check are shown to someone who signed in."""
    client.force_login(django_user_model.objects.create_user(username="ops", password="x"))
    return client


def test_logged_out_it_says_the_status_alone(client):
    beat_ran(timedelta(seconds=30))
    body = client.get("/healthz").json()
    assert body == {"status": "ok"}


def test_an_app_registers_its_own_check(signed_in):
    from config.health import _CHECKS

    # The analytics app put the stuck-signal check there; config names no app.
    assert "stuck_signals" in _CHECKS
    assert _CHECKS["stuck_signals"].__module__ == "analytics.stuck"


def test_it_needs_no_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "login" not in response.get("Location", "")


def test_beat_that_never_ran_is_unknown_but_not_degraded(signed_in):
    body = signed_in.get("/healthz").json()
    assert body["checks"]["beat"]["status"] == "unknown"
    assert body["status"] == "ok"


def test_a_late_beat_is_degraded(signed_in, settings):
    settings.HEALTH_BEAT_MAX_AGE_SECONDS = 120
    beat_ran(timedelta(minutes=10))
    beat_ran(timedelta(minutes=5))
    response = signed_in.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["beat"]["status"] == "late"
    assert 299 < body["checks"]["beat"]["age_seconds"] < 330
    assert body["checks"]["beat"]["max_age_seconds"] == 120


def test_stuck_live_signals_are_degraded_replays_are_not(signed_in):
    beat_ran(timedelta(seconds=1))
    live = BookFactory(name="live", kind=Book.Kind.LIVE)
    replay = BookFactory(kind=Book.Kind.REPLAY)
    with time_machine.travel(timezone.now() - timedelta(hours=1), tick=False):
        SignalFactory(book=live)
        SignalFactory(book=live)
        SignalFactory(book=replay)
    SignalFactory(book=live)  # just generated: not late yet
    body = signed_in.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["checks"]["stuck_signals"] == {"status": "stuck", "count": 2}


def test_broker_down_is_down_with_503(signed_in, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = signed_in.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["broker"]["status"] == "error"
    assert body["checks"]["database"]["status"] == "ok"


@pytest.mark.parametrize("reachable", [True, False])
def test_the_broker_password_never_appears(signed_in, settings, reachable):
    password = "s3cr3t-broker-pa55word"
    real = urlsplit(settings.CELERY_BROKER_URL)
    port = real.port if reachable else closed_port()
    netloc = f"default:{password}@{real.hostname}:{port}"
    settings.CELERY_BROKER_URL = urlunsplit(real._replace(netloc=netloc))
    response = signed_in.get("/healthz")
    text = response.content.decode()
    assert password not in text
    assert "default" not in text
    assert response.json()["checks"]["broker"]["url"] == f"redis://{real.hostname}:{port}"


def test_broker_location_keeps_scheme_and_host_only():
    assert broker_location("redis://:pw@h.example:6380/3?ssl=1") == "redis://h.example:6380"
    assert broker_location("amqp://u:pw@[::1]/vhost") == "amqp://[::1]"
    assert broker_location("memory://") == "memory://"


def test_it_answers_over_plain_http_where_pages_redirect_to_https(client, settings):
    # What the production settings set (SECURE_SSL_REDIRECT defaults to true there).
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    assert client.get("/").status_code == 301
    assert client.get("/healthz").status_code == 200


def test_the_production_settings_exempt_only_the_health_check():
    from config import settings as production

    assert production.SECURE_REDIRECT_EXEMPT == [r"^healthz$"]


def test_without_a_configured_broker_the_broker_is_not_used_not_down(signed_in, settings):
    """``make run`` configures no broker: its work runs in the web process, and whatever
    listens on Redis's default port is not asked."""
    settings.BROKER_CONFIGURED = False
    settings.TASKS_IN_WEB_PROCESS = True
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    beat_ran(timedelta(seconds=30))
    body = signed_in.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["checks"]["broker"] == {"status": "not used"}
