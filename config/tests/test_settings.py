"""Configuration from the environment: clear errors for bad values, production hardening."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

from config.celery import app


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL"}
    }
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=settings.BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_refuses_to_start_without_a_secret_key_outside_debug():
    result = load_settings()
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert load_settings(DEBUG="true").returncode == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRADING_MODE": "yolo"}, "TRADING_MODE must be 'paper' or 'live'"),
        (
            {"TRADING_MODE": "live", "EXCHANGE_API_KEY": "", "EXCHANGE_API_SECRET": ""},
            "TRADING_MODE=live places real orders and needs EXCHANGE_API_KEY",
        ),
        ({"FILL_FEE_RATE": "abc"}, "FILL_FEE_RATE must be a decimal number, not 'abc'"),
        ({"FILL_SLIPPAGE_BPS": "-1"}, "FILL_SLIPPAGE_BPS must be a finite number >= 0"),
        ({"FILL_NOTIONAL": "0"}, "FILL_NOTIONAL must be positive"),
        (
            {"DATABASE_CONN_MAX_AGE": "-1"},
            "DATABASE_CONN_MAX_AGE must be a whole number of seconds >= 0, not '-1'",
        ),
    ],
)
def test_bad_values_get_a_clear_error(env, message):
    result = load_settings(DEBUG="true", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_live_mode_starts_with_keys_from_the_environment():
    result = load_settings(
        DEBUG="true",
        TRADING_MODE="live",
        EXCHANGE_API_KEY="fake-key-for-the-test",
        EXCHANGE_API_SECRET="fake-secret-for-the-test",
    )
    assert result.returncode == 0, result.stderr


def test_production_settings_pass_the_deploy_checks(tmp_path):
    unset = {"DEBUG", "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(
        SECRET_KEY="x7Gq2pLr9TzW4nVb8KcY3mHs6JdF1aQe5RuXo0iNtPwZyBgMvCkEhSlDjUfA",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        ALLOWED_HOSTS="signals.example.org",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_periodic_task_names_a_registered_task():
    app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks, entry["task"]
    assert "markets.sync_candles" in app.tasks


def test_the_beat_advances_the_live_books_through_the_engine():
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "shadow.advance_live_books" in scheduled
    assert "shadow.advance_book" in app.tasks, "the task each live book is advanced by"
    gone = {"signals.generate_signals", "shadow.evaluate_shadow_outcomes"}
    assert not scheduled & gone
    assert not gone & set(app.tasks)


def test_the_web_unit_keeps_its_database_connection_and_checks_it_before_use():
    """Each gunicorn worker keeps its connection a minute (a new PostgreSQL backend per
    request reloads the catalog for every table a page reads), checked before a request
    uses it; other processes open one per request or task."""
    code = (
        "from config.settings import DATABASES as d; "
        "print(d['default']['CONN_MAX_AGE'], d['default']['CONN_HEALTH_CHECKS'])"
    )
    unit = (settings.BASE_DIR / "deploy/systemd/signal-pipeline-web.service").read_text()
    assert "Environment=DATABASE_CONN_MAX_AGE=60" in unit
    for env, shown in (({"DATABASE_CONN_MAX_AGE": "60"}, "60 True"), ({}, "0 False")):
        clean = {k: v for k, v in os.environ.items() if k != "DATABASE_CONN_MAX_AGE"}
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=settings.BASE_DIR,
            env={**clean, "DEBUG": "true", **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.stdout.strip() == shown, result.stderr


def test_template_fragments_are_kept_in_each_process_not_in_redis():
    """The pages' ``{% cache %}`` fragments are content-addressed (``fragment_key``): a hit
    in the process's memory saves the Redis round trip; the page cache stays shared."""
    code = (
        "from config.settings import CACHES as c; "
        "print(c['default']['BACKEND'].rsplit('.', 1)[1], "
        "c['template_fragments']['BACKEND'].rsplit('.', 1)[1])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DEBUG": "true", "CACHE_URL": "redis://127.0.0.1:6379/1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["RedisCache", "LocMemCache"], result.stderr
