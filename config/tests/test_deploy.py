"""The slot deploy, end to end in a temporary directory: a local git repository of this
project, real virtualenvs, migrations, collectstatic, `check --deploy` and a real
gunicorn health gate against PostgreSQL and Redis; only `systemctl` is a recorder.

And the systemd units through `systemd-analyze` (verify output empty, exposure <= 2.0).
"""

import os
import secrets
import shutil
import subprocess
import sys
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
    lines = [
        "DEBUG=false",
        f"SECRET_KEY={secrets.token_urlsafe(50)}",
        "ALLOWED_HOSTS=127.0.0.1,localhost",
        f"DATABASE_URL={database_url}",
        f"CELERY_BROKER_URL={settings.CELERY_BROKER_URL}",
        "LOG_LEVEL=WARNING",
    ]
    env_file.write_text("\n".join([*lines, ""]))
    # The same settings with the broker unreachable (nothing listens on port 9): /healthz
    # then answers "down" at the top while its database sub-check says "ok".
    broker_down = base / "env.broker-down"
    broker_down.write_text(
        "\n".join([*lines[:4], "CELERY_BROKER_URL=redis://127.0.0.1:9/0", *lines[5:], ""])
    )
    calls = base / "systemctl.calls"
    recorder = base / "systemctl"
    # Records every call; fails the next restart (or is-active) when asked to by a file.
    recorder.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        f'if [ "$1" = restart ] && [ -e {base}/fail-restart ]; then rm {base}/fail-restart; exit 1; fi\n'
        f'if [ "$1" = is-active ] && [ -e {base}/fail-active ]; then rm {base}/fail-active; exit 3; fi\n'
        "exit 0\n"
    )
    recorder.chmod(0o755)
    env = {
        **os.environ,
        "PREFIX": str(prefix),
        "REPO": str(repo),
        "ENV_FILE": str(env_file),
        "SYSTEMCTL": str(recorder),
        "CANDIDATE_PORT": str(20000 + os.getpid() % 20000),
        "HEALTH_TIMEOUT": "60",
        "UNIT_SETTLE_SECONDS": "1",
    }
    # The slots' virtualenvs from uv's cache (seconds each) instead of venv and pip (a
    # minute and more each, five of them; 11 minutes for one on a loaded machine). The
    # pip branch of deploy/deploy (production's default) is not run by the suite.
    uv = Path(sys.executable).parent / "uv"
    if uv.exists():
        env["UV"] = str(uv)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DATABASE_URL", None)
    env.pop("HEALTH_ACCEPT", None)
    return {
        "base": base,
        "prefix": prefix,
        "env": env,
        "env_file": env_file,
        "broker_down": broker_down,
        "calls": calls,
        "work": work,
    }


def _deploy(site, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEPLOY), *args],
        env={**site["env"], **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _serving(site) -> tuple[str, str]:
    current = site["prefix"] / "current"
    slot = os.readlink(current)
    return slot, (current / "DEPLOYED").read_text()


def _previous(site) -> str:
    return os.readlink(site["prefix"] / "previous")


def _calls(site) -> list[str]:
    return site["calls"].read_text().splitlines()


def _manage(site, slot: str, code: str) -> None:
    """``manage.py shell -c code`` in a slot with the production environment file."""
    slot_dir = site["prefix"] / "slots" / slot
    python = str(slot_dir / ".venv/bin/python")
    with_env = f'set -a; . "{site["env_file"]}"; set +a; exec "$@"'
    subprocess.run(
        ["bash", "-c", with_env, "manage", python, "manage.py", "shell", "-c", code],
        cwd=slot_dir,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")},
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


# A refused gate waits this long for an accepted answer; the candidate's gunicorn must have
# answered within it (5 s was too short on a loaded machine: "top-level status none").
REFUSAL_TIMEOUT = "20"

LATE_BEAT = """
from datetime import timedelta
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
every, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
PeriodicTask.objects.update_or_create(name="deploy-test-late", defaults=dict(
    task="config.noop", interval=every, last_run_at=timezone.now() - timedelta(days=1)))
"""


@pytest.mark.reliability(
    fault="a release whose /healthz says down or degraded; a unit that fails to restart or to stay active after the switch; a rollback",
    expected="the gate reads the top-level status and refuses; a failed restart rolls back by itself; the rollback slot is never overwritten; --rollback health-checks its target",
)
@pytest.mark.timeout(1200)  # five virtualenvs are built; slow on a loaded machine
def test_deploy_gate_rollback_and_restart_failures(site, reliability):
    work = site["work"]
    v1 = _git(work, "rev-parse", "v1")
    v2 = _git(work, "rev-parse", "v2")

    first = _deploy(site, "v1")
    assert first.returncode == 0, first.stdout + first.stderr
    assert 'health check passed (status ok): {"status": "ok"' in first.stdout
    slot, marker = _serving(site)
    assert slot == "slots/A" and f"commit={v1}" in marker
    assert not (site["prefix"] / "previous").exists(), "nothing to roll back to yet"
    assert (site["prefix"] / "slots/A/var/static/staticfiles.json").exists(), "collectstatic ran"
    restarts = _calls(site)
    assert restarts[0].startswith("restart signal-pipeline-web.service")
    assert "signal-pipeline-beat.service" in restarts[0]
    assert restarts[1].startswith("is-active --quiet signal-pipeline-web.service")

    second = _deploy(site, "v2")
    assert second.returncode == 0, second.stdout + second.stderr
    slot, marker = _serving(site)
    assert slot == "slots/B" and f"commit={v2}" in marker
    assert _previous(site) == "slots/A"
    assert (site["prefix"] / "current" / "DEPLOY_MARK").exists()

    # The broker is unreachable: /healthz says "down" at the top (signed in, it also says
    # "ok" in its database sub-check, which the old text match took for a pass).
    calls_before = site["calls"].read_text()
    down = _deploy(site, "v1", ENV_FILE=str(site["broker_down"]), HEALTH_TIMEOUT=REFUSAL_TIMEOUT)
    assert down.returncode != 0, down.stdout
    assert "health check passed" not in down.stdout
    assert "top-level status down, accepted: ok" in down.stderr
    assert "nothing switched: slot B still serving" in down.stderr
    assert _serving(site)[0] == "slots/B" and _previous(site) == "slots/A"
    assert site["calls"].read_text() == calls_before, "nothing was restarted"
    assert not (site["prefix"] / "slots/C/DEPLOYED").exists()

    broken = _deploy(site, "broken")
    assert broken.returncode != 0
    assert "exited at start" in broken.stderr
    assert "nothing switched: slot B still serving" in broken.stderr
    slot, marker = _serving(site)
    assert slot == "slots/B" and f"commit={v2}" in marker, "the old slot keeps serving"
    assert site["calls"].read_text() == calls_before, "nothing was restarted"
    # The failed deploys went into the spare slot C: the rollback target A is whole.
    assert _previous(site) == "slots/A"
    assert f"commit={v1}" in (site["prefix"] / "slots/A/DEPLOYED").read_text()

    # A rollback checks its target's health first: refused while it would be down...
    refused = _deploy(site, "--rollback", ENV_FILE=str(site["broker_down"]), HEALTH_TIMEOUT="10")
    assert refused.returncode != 0
    assert "health check of slot A did not pass" in refused.stderr
    assert "nothing switched: slot B still serving" in refused.stderr
    assert _serving(site)[0] == "slots/B"
    assert site["calls"].read_text() == calls_before
    # ... and while it is only degraded (beat late), unless degraded is accepted.
    _manage(site, "A", LATE_BEAT)
    degraded = _deploy(site, "--rollback", HEALTH_TIMEOUT=REFUSAL_TIMEOUT)
    assert degraded.returncode != 0
    assert "top-level status degraded, accepted: ok" in degraded.stderr
    assert _serving(site)[0] == "slots/B"
    accepted = _deploy(site, "--rollback", HEALTH_ACCEPT="ok degraded")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "health check passed (status degraded)" in accepted.stdout
    slot, marker = _serving(site)
    assert slot == "slots/A" and f"commit={v1}" in marker
    assert _previous(site) == "slots/B"
    assert _calls(site)[-3].startswith("restart "), "restarted on the rolled-back slot"
    _manage(
        site,
        "A",
        "from django_celery_beat.models import PeriodicTask; "
        "PeriodicTask.objects.filter(name='deploy-test-late').delete()",
    )

    # A unit fails to restart after the switch: the deploy switches back by itself.
    (site["base"] / "fail-restart").touch()
    calls_before = len(_calls(site))
    unit_fails = _deploy(site, "v2")
    assert unit_fails.returncode != 0, unit_fails.stdout
    assert "health check passed (status ok)" in unit_fails.stdout
    assert "rolled back by itself: slot A serves again" in unit_fails.stderr
    slot, marker = _serving(site)
    assert slot == "slots/A" and f"commit={v1}" in marker
    assert _previous(site) == "slots/B", "the rollback target is still the good release"
    after = _calls(site)[calls_before:]
    assert [call.split()[0] for call in after] == ["restart", "restart", "is-active", "is-active"]
    assert (site["prefix"] / "slots/C/FAILED").exists()
    assert not (site["prefix"] / "slots/C/DEPLOYED").exists()

    # A unit that does not stay active after a rollback's restart: back again by itself.
    (site["base"] / "fail-active").touch()
    back_fails = _deploy(site, "--rollback")
    assert back_fails.returncode != 0
    assert "rolled back by itself: slot A serves again" in back_fails.stderr
    assert _serving(site)[0] == "slots/A" and _previous(site) == "slots/B"

    status = _deploy(site, "--status")
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    assert lines[0].startswith(f"* A  ref=v1 commit={v1}") and lines[0].endswith("(serving)")
    assert lines[1].startswith(f"  B  ref=v2 commit={v2}")
    assert lines[1].endswith("(rollback target)")
    assert lines[2].startswith(f"  C  failed: ref=v2 commit={v2}")
    reliability.observed(
        "each refused or rolled back as expected, the serving slot kept", lost=0, duplicated=0
    )


def test_an_install_from_before_the_previous_link_rolls_back_to_its_other_slot(tmp_path):
    """Two-slot installs (no ``previous`` link): the other of A and B, when it holds a
    finished deploy, is the rollback target, and a deploy goes to C, not over it."""
    prefix = tmp_path / "srv"
    for slot in ("A", "B"):
        (prefix / "slots" / slot).mkdir(parents=True)
        (prefix / "slots" / slot / "DEPLOYED").write_text(f"ref={slot}\n")
    (prefix / "current").symlink_to("slots/B")
    env = {**os.environ, "PREFIX": str(prefix), "ENV_FILE": str(tmp_path / "none")}
    status = subprocess.run(
        [str(DEPLOY), "--status"], env=env, capture_output=True, text=True, check=False
    )
    assert status.stdout.splitlines() == [
        "  A  ref=A  (rollback target)",
        "* B  ref=B  (serving)",
        "  C  empty",
    ]
    refused = subprocess.run(
        [str(DEPLOY), "v9"], env=env, capture_output=True, text=True, check=False
    )
    assert "no environment file" in refused.stderr
    (tmp_path / "none").write_text("")
    target = subprocess.run(
        [str(DEPLOY), "v9"],
        env={**env, "REPO": str(tmp_path / "no-repo")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert "deploying v9 into slot C" in target.stdout
    assert (prefix / "slots/A/DEPLOYED").exists() and (prefix / "slots/B/DEPLOYED").exists()


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
