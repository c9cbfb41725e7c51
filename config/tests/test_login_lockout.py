"""Login lockout (django-axes) on the admin login, per username and real client IP."""

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.utils import timezone

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "right-horse-battery-staple"
LOCKED = {403, 429}


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.org", PASSWORD)


def login(client, password, **headers):
    return client.post(
        LOGIN, {"username": "boss", "password": password, "next": "/admin/"}, **headers
    )


def logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def test_the_right_password_logs_in(client, admin_user):
    assert logged_in(login(client, PASSWORD))


def test_five_failures_lock_the_account_out_even_with_the_right_password(client, admin_user):
    assert django_settings.AXES_FAILURE_LIMIT == 5
    for _ in range(4):
        assert login(client, "wrong").status_code == 200  # the form, with its error
    assert login(client, "wrong").status_code in LOCKED
    response = login(client, PASSWORD)
    assert response.status_code in LOCKED
    assert "_auth_user_id" not in client.session


def test_a_forged_forwarded_for_does_not_reset_the_count_without_a_trusted_proxy(
    client, admin_user
):
    for n in range(5):
        login(client, "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{n + 1}")
    assert login(client, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.77").status_code in LOCKED


def test_another_client_ip_is_not_locked_out(client, admin_user):
    for _ in range(5):
        login(client, "wrong")
    assert login(client, PASSWORD).status_code in LOCKED
    assert logged_in(login(client, PASSWORD, REMOTE_ADDR="192.0.2.10"))


def test_the_lockout_ends_after_the_cool_off(client, admin_user):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(5):
            login(client, "wrong")
        assert login(client, PASSWORD).status_code in LOCKED
    with time_machine.travel(start + timedelta(minutes=14), tick=False):
        assert login(client, PASSWORD).status_code in LOCKED
    # Each refused attempt during the lockout restarts the cool-off (axes' default).
    with time_machine.travel(start + timedelta(minutes=14 + 15, seconds=1), tick=False):
        assert logged_in(login(client, PASSWORD))


def settings_values(**env: str) -> dict:
    keep = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    code = (
        "import json, config.settings as s; print(json.dumps({"
        "'count': s.AXES_IPWARE_PROXY_COUNT, 'order': s.AXES_IPWARE_META_PRECEDENCE_ORDER, "
        "'limit': s.AXES_FAILURE_LIMIT, 'cooloff': s.AXES_COOLOFF_TIME.total_seconds()}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=django_settings.BASE_DIR,
        env={**keep, "DEBUG": "true", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_settings_come_from_the_environment():
    assert settings_values() == {
        "count": None,
        "order": ["REMOTE_ADDR"],
        "limit": 5,
        "cooloff": 900.0,
    }
    assert settings_values(
        TRUSTED_PROXY_COUNT="2", AXES_FAILURE_LIMIT="3", AXES_COOLOFF_MINUTES="1"
    ) == {"count": 1, "order": ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"], "limit": 3, "cooloff": 60.0}


def test_behind_one_trusted_proxy_the_client_ip_is_the_one_the_proxy_appended(
    client, admin_user, settings
):
    # What TRUSTED_PROXY_COUNT=1 sets (checked above): the proxy appends the address it
    # saw to X-Forwarded-For; anything the client sent stays to its left.
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
    settings.AXES_IPWARE_PROXY_COUNT = 0
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for n in range(5):
        forged = f"203.0.113.{n + 1}, 198.51.100.7"
        login(client, "wrong", HTTP_X_FORWARDED_FOR=forged, **proxy)
    assert (
        login(client, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy).status_code in LOCKED
    )
    # Another client behind the same proxy is not locked out.
    assert logged_in(login(client, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.8", **proxy))
