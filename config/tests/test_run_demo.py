"""``make run``'s script on a candle file: migrate, load, replay, create the admin, serve."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from http.cookiejar import CookieJar
from urllib.parse import urlencode

from django.conf import settings

from signals.tests.candles import walk


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_serves_the_replayed_book_behind_the_login(tmp_path):
    candles = tmp_path / "candles.json"
    candles.write_text(
        json.dumps(
            [[int(t.timestamp() * 1000), o, h, lo, c, 2.0] for t, o, h, lo, c in walk(400, seed=11)]
        )
    )
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DEBUG"}
    }
    env.update(
        PY=sys.executable,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CANDLES=str(candles),
        PORT=str(port),
        DJANGO_SUPERUSER_USERNAME="trader",
        DJANGO_SUPERUSER_PASSWORD="run-demo-Pass-58",
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

        text = log.read_text()
        assert "Loading candles from" in text
        assert "Replay done into book 'replay file BTC/USD 1h'" in text
        assert "Creating admin account 'trader'" in text

        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        page = opener.open(f"{base}/guards/").read().decode()
        assert "csrfmiddlewaretoken" in page, "anonymous visitors get the login form"
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urlencode(
            {
                "csrfmiddlewaretoken": token,
                "username": "trader",
                "password": "run-demo-Pass-58",
                "next": "/guards/",
            }
        ).encode()
        request = urllib.request.Request(
            f"{base}/admin/login/?next=/guards/", data=form, headers={"Referer": base}
        )
        page = opener.open(request).read().decode()
        assert "Guard effectiveness" in page
        assert "replay file BTC/USD 1h" in page
        assert "cooldown_after_stop" in page or "max_open_positions" in page
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
