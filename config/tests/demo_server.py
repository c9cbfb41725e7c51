"""Run ``make run``'s script in a subprocess and talk to the site it serves."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings

USERNAME = "trader"
PASSWORD = "run-demo-Pass-58"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def demo_server(tmp_path: Path, **env_vars: str) -> Iterator[tuple[str, Path]]:
    """Start ``bin/run-demo`` on a SQLite file in ``tmp_path``; yield the base URL once it
    serves, and the log file; stop it afterwards."""
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        # make run configures no broker; its settings are in its own .env.
        if k
        not in {
            "DJANGO_SETTINGS_MODULE",
            "SECRET_KEY",
            "DEBUG",
            "CELERY_BROKER_URL",
            "READ_DOT_ENV_FILE",
            "PYTHONDONTWRITEBYTECODE",
        }
    }
    env.update(
        PY=sys.executable,
        DOT_ENV_FILE=str(tmp_path / ".env"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        PORT=str(port),
        DJANGO_SUPERUSER_USERNAME=USERNAME,
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        **env_vars,
    )
    log = tmp_path / "run.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["bin/run-demo"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                urllib.request.urlopen(f"{base}/admin/login/", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        yield base, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def logged_in_page(base: str, path: str) -> str:
    """``path`` fetched after logging in through the admin's login form."""
    _opener, page = login(base, path)
    return page


def login(base: str, path: str = "/") -> tuple[urllib.request.OpenerDirector, str]:
    """An opener holding a logged-in session, and ``path`` as it answered the login."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    page = opener.open(f"{base}{path}").read().decode()
    assert "csrfmiddlewaretoken" in page, "anonymous visitors get the login form"
    form = urlencode(
        {
            "csrfmiddlewaretoken": csrf_token(page),
            "username": USERNAME,
            "password": PASSWORD,
            "next": path,
        }
    ).encode()
    request = urllib.request.Request(
        f"{base}/admin/login/?next={path}", data=form, headers={"Referer": base}
    )
    return opener, opener.open(request).read().decode()


def csrf_token(page: str) -> str:
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None, page
    return token.group(1)
