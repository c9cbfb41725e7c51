"""``/healthz``: a JSON deploy gate, open without login, that names no secret.

``down`` (HTTP 503) when the database or the broker cannot be reached; ``degraded``
(HTTP 200) when celery beat is late or a check an app registered fails (the analytics
app registers the stuck live signals); else ``ok``. Logged out, the body is the status
alone; logged in, every check with its figures.

``config`` imports no app: apps register their checks (``register_check`` in their
``ready``).
"""

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.db.models import Max
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_celery_beat.models import PeriodicTask
from kombu import Connection

OK = "ok"
DEGRADED = "degraded"
DOWN = "down"
NOT_USED = "not used"

Check = dict[str, Any]


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def check_database() -> Check:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        # The class name only: a driver's message can carry the connection string.
        return {"status": "error", "error": type(exc).__name__}
    return {"status": OK, "latency_ms": _elapsed_ms(started)}


def broker_location(url: str) -> str:
    """``scheme://host:port`` of a broker URL: no user, password, path or query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "unparseable"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def check_broker(*, reached: bool = False) -> Check:
    """Whether the broker can be reached, by connecting to it; ``reached``: the caller
    has just read from it (the health page's queue depths), so it is not connected to
    again."""
    if getattr(settings, "TASKS_IN_WEB_PROCESS", False) and not getattr(
        settings, "BROKER_CONFIGURED", True
    ):
        # ``make run``: no broker configured, the pages' work runs in the web process.
        # Nothing to reach, and nothing listening on Redis's default port is ours.
        return {"status": NOT_USED}
    url = settings.CELERY_BROKER_URL
    result: Check = {"url": broker_location(url)}
    if reached:
        return {**result, "status": OK}
    started = time.perf_counter()
    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
    except Exception as exc:
        return {**result, "status": "error", "error": type(exc).__name__}
    return {**result, "status": OK, "latency_ms": _elapsed_ms(started)}


def check_beat(*, now: Any) -> Check:
    """How long ago celery beat last ran a periodic task: ``late`` past
    ``HEALTH_BEAT_MAX_AGE_SECONDS``, ``unknown`` when it never ran one."""
    max_age = settings.HEALTH_BEAT_MAX_AGE_SECONDS
    last = PeriodicTask.objects.aggregate(last=Max("last_run_at"))["last"]
    if last is None:
        return {"status": "unknown", "max_age_seconds": max_age}
    age = max((now - last).total_seconds(), 0.0)
    return {
        "status": OK if age <= max_age else "late",
        "last_run_at": last.isoformat(),
        "age_seconds": round(age, 1),
        "max_age_seconds": max_age,
    }


# Checks that need the database, by name, in order: beat here, the apps' from ready().
_CHECKS: dict[str, Callable[..., Check]] = {"beat": check_beat}


def register_check(name: str, check: Callable[..., Check]) -> None:
    """Add a check ``check(now=...) -> {"status": ..., ...}`` to ``/healthz``: any status
    but ``ok`` (and beat's ``unknown``) makes the system ``degraded``."""
    _CHECKS[name] = check


def system_health(now: Any, *, broker_reached: bool = False) -> tuple[str, dict[str, Check]]:
    """Every check and the overall status: ``down`` when the database or the broker
    fails; ``degraded`` when beat is late or a registered check fails; else ``ok``.
    ``broker_reached``: the caller has just read from the broker (``check_broker``)."""
    checks: dict[str, Check] = {
        "database": check_database(),
        "broker": check_broker(reached=broker_reached),
    }
    for name, check in _CHECKS.items():
        if checks["database"]["status"] != OK:
            checks[name] = {"status": "skipped"}
            continue
        try:
            checks[name] = check(now=now)
        except Exception as exc:
            checks[name] = {"status": "error", "error": type(exc).__name__}

    if checks["database"]["status"] != OK or checks["broker"]["status"] not in {OK, NOT_USED}:
        status = DOWN
    elif any(
        result["status"] not in {OK, NOT_USED}
        and not (name == "beat" and result["status"] == "unknown")
        for name, result in checks.items()
    ):
        status = DEGRADED
    else:
        status = OK
    return status, checks


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    status, checks = system_health(timezone.now())
    body: dict[str, Any] = {"status": status}
    if request.user.is_authenticated:
        # The figures (the broker's address among them) are for people who signed in.
        body["checks"] = checks
    return JsonResponse(body, status=503 if status == DOWN else 200)
