"""The slot deploy, end to end in a temporary directory: a local git repository of this
project, real virtualenvs, migrations, collectstatic, `check --deploy` and a real
gunicorn health gate against PostgreSQL and Redis; only `systemctl` is a recorder.

And the systemd units through `systemd-analyze` (verify output empty, exposure <= 2.0).
"""

import os
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
DEPLOY = ROOT / "deploy" / "deploy"

pytestmark = [
    pytest.mark.deploy,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
    pytest.mark.skipif(not (ROOT / ".git").exists(), reason="the checkout is not a git repository"),
]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def database_url():
    """A database of its own for the deploys (created here, dropped after)."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/app")
    if not base.startswith("postgres"):
        pytest.skip("the deploy test needs PostgreSQL (DATABASE_URL)")
    parts = urlsplit(base)
    name = f"deploy_check_{os.getpid()}"
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield parts._replace(path=f"/{name}").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def site(tmp_path_factory, database_url):
    """PREFIX, a bare repository with refs v1, v2 and broken, the env file and the
    systemctl recorder."""
    base = tmp_path_factory.mktemp("deploy")
    prefix = base / "srv"
    work = base / "work"
    _git(base, "clone", "--quiet", str(ROOT), str(work))
    _git(work, "config", "user.email", "deploy@example.org")
    _git(work, "config", "user.name", "Deploy test")
    _git(work, "tag", "v1")
    (work / "DEPLOY_MARK").write_text("second\n")
    _git(work, "add", "DEPLOY_MARK")
    _git(work, "commit", "--quiet", "-m", "v2")
    _git(work, "tag", "v2")
    # A release whose web server cannot start: the health gate must stop it.
    wsgi = work / "config" / "wsgi.py"
    wsgi.write_text(wsgi.read_text() + "\nraise RuntimeError('broken release')\n")
    _git(work, "commit", "--quiet", "-am", "broken")
    _git(work, "tag", "broken")
    repo = base / "repo.git"
    _git(base, "clone", "--quiet", "--bare", str(work), str(repo))

    env_file = base / "env"
    env_file.write_text(
        "\n".join(
            [
                "DEBUG=false",
                f"SECRET_KEY={secrets.token_urlsafe(50)}",
                "ALLOWED_HOSTS=127.0.0.1,localhost",
                f"DATABASE_URL={database_url}",
                f"CELERY_BROKER_URL={settings.CELERY_BROKER_URL}",
                "LOG_LEVEL=WARNING",
                "",
            ]
        )
    )
    calls = base / "systemctl.calls"
    recorder = base / "systemctl"
    recorder.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexit 0\n')
    recorder.chmod(0o755)
    env = {
        **os.environ,
        "PREFIX": str(prefix),
        "REPO": str(repo),
        "ENV_FILE": str(env_file),
        "SYSTEMCTL": str(recorder),
        "CANDIDATE_PORT": str(20000 + os.getpid() % 20000),
        "HEALTH_TIMEOUT": "60",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DATABASE_URL", None)
    return {"prefix": prefix, "env": env, "calls": calls, "work": work}


def _deploy(site, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEPLOY), *args],
        env=site["env"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _serving(site) -> tuple[str, str]:
    current = site["prefix"] / "current"
    slot = os.readlink(current)
    return slot, (current / "DEPLOYED").read_text()


@pytest.mark.timeout(900)  # three virtualenvs are built; slow on a loaded machine
def test_deploy_switch_fail_and_roll_back(site):
    work = site["work"]
    v1 = _git(work, "rev-parse", "v1")
    v2 = _git(work, "rev-parse", "v2")

    first = _deploy(site, "v1")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "health check passed" in first.stdout
    slot, marker = _serving(site)
    assert slot == "slots/A" and f"commit={v1}" in marker
    assert (site["prefix"] / "slots/A/var/static/staticfiles.json").exists(), "collectstatic ran"
    restarts = site["calls"].read_text().splitlines()
    assert restarts[0].startswith("restart signal-pipeline-web.service")
    assert "signal-pipeline-beat.service" in restarts[0]

    second = _deploy(site, "v2")
    assert second.returncode == 0, second.stdout + second.stderr
    slot, marker = _serving(site)
    assert slot == "slots/B" and f"commit={v2}" in marker
    assert (site["prefix"] / "current" / "DEPLOY_MARK").exists()

    calls_before = site["calls"].read_text()
    broken = _deploy(site, "broken")
    assert broken.returncode != 0
    assert "exited at start" in broken.stderr
    assert "nothing switched: slot B still serving" in broken.stderr
    slot, marker = _serving(site)
    assert slot == "slots/B" and f"commit={v2}" in marker, "the old slot keeps serving"
    assert site["calls"].read_text() == calls_before, "nothing was restarted"

    # The broken deploy overwrote slot A; a rollback has nothing finished to go back to.
    refused = _deploy(site, "--rollback")
    assert refused.returncode != 0 and "no finished deploy" in refused.stderr

    third = _deploy(site, "v1")
    assert third.returncode == 0, third.stdout + third.stderr
    assert _serving(site)[0] == "slots/A"
    back = _deploy(site, "--rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    slot, marker = _serving(site)
    assert slot == "slots/B" and f"commit={v2}" in marker
    assert site["calls"].read_text().splitlines()[-2].startswith("restart ")

    status = _deploy(site, "--status")
    assert status.returncode == 0
    assert f"* B  ref=v2 commit={v2}" in status.stdout


def test_a_missing_ref_is_a_clear_error(site):
    result = _deploy(site, "no-such-tag")
    assert result.returncode != 0
    assert "no such ref" in result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_the_units_verify_cleanly_with_low_exposure():
    result = subprocess.run(
        [str(ROOT / "deploy" / "check-units")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok   verify") == 3
    assert result.stdout.count("ok   security") == 3
