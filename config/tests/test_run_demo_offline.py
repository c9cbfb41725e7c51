"""``make run`` with no exchange in reach: several synthetic markets, enough history for
every default guard to reach a verdict, served within two minutes."""

import re
import sqlite3
import time

import pytest

from config.tests.demo_server import demo_server, logged_in_page


def test_offline_it_replays_several_synthetic_markets_and_every_guard_has_a_verdict(tmp_path):
    started = time.monotonic()
    # A proxy that refuses every connection: the exchange is out of reach at once.
    with demo_server(
        tmp_path, HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9"
    ) as (
        base,
        log,
    ):
        assert time.monotonic() - started < 120
        text = log.read_text()
        assert "generating SYNTHETIC candles" in text
        assert "Replay done into book 'replay synthetic 1h 4 markets'" in text

        with sqlite3.connect(tmp_path / "db.sqlite3") as db:
            outcomes = dict(
                db.execute(
                    "SELECT d.guard, COUNT(*) FROM signals_guarddecision d "
                    "JOIN shadow_shadowtrade s ON s.signal_id = d.signal_id "
                    "WHERE d.verdict = 'block' AND s.status = 'closed' GROUP BY d.guard"
                ).fetchall()
            )
        assert set(outcomes) == {"max_open_positions", "cooldown_after_stop"}
        assert min(outcomes.values()) >= 30, outcomes

        page = logged_in_page(base, "/guards/")
        assert "synthetic" in page.lower()
        # Each default guard says whether it saves money by skill or only by trading less
        # (the synthetic strategies lose on average, so any block "saves money").
        honest = ("saves money by skill", "saves money only by trading less", "costs money")
        assert sum(page.count(f">{verdict}</span>") for verdict in honest) >= 2, page
        assert "The strategies lose money on average" in page


def test_make_run_behaves_like_production_and_runs_an_ablation_without_a_broker(tmp_path):
    """DEBUG off with the project's own error pages, the API's JSON 405 for a logged-in
    POST, an empty period that says why, an ablation run by the web process itself (no
    broker configured, no message to any), and commands that work from another terminal
    through the .env the demo leaves (whose secret key is never printed)."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    import urllib.error
    import urllib.request
    from urllib.parse import urlencode

    import redis
    from django.conf import settings

    from config.tests.demo_server import csrf_token, login

    # Nothing the demo does may reach Redis's default database (no broker configured).
    default_db = redis.Redis.from_url("redis://127.0.0.1:6379/0")

    def celery_keys() -> set[bytes]:
        return {k for k in default_db.keys("*") if b"kombu" in k or b"shadow" in k}

    keys_before = celery_keys()
    with demo_server(
        tmp_path,
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        SYMBOLS="BTC/USD ETH/USD",
        DEMO_CANDLES="1500",
    ) as (base, log):
        dot_env = (tmp_path / ".env").read_text()
        secret = dict(line.split("=", 1) for line in dot_env.splitlines())["SECRET_KEY"]
        assert len(secret) >= 50
        assert "DEBUG=false" in dot_env.splitlines()
        assert secret not in log.read_text()
        assert oct((tmp_path / ".env").stat().st_mode & 0o777) == "0o600"

        # DEBUG off: an unknown address is the project's own 404 page, no URL patterns.
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/no-such-page/")
        body = missing.value.read().decode()
        assert missing.value.code == 404
        assert "There is no page at this address." in body
        assert "URLconf" not in body and "DEBUG = True" not in body
        # Static files are still served (WhiteNoise, from the app folders).
        css = urllib.request.urlopen(f"{base}/static/admin/css/base.css")
        assert css.status == 200

        opener, guards = login(base, "/guards/")
        # The API answers JSON 405 to a logged-in POST and DELETE, not the CSRF page.
        for method in ("POST", "DELETE"):
            request = urllib.request.Request(f"{base}/api/v1/summary/", data=b"", method=method)
            with pytest.raises(urllib.error.HTTPError) as refused:
                opener.open(request)
            assert refused.value.code == 405
            assert json.loads(refused.value.read())["error"] == "read-only API: use GET"

        # A period after the data says why it is empty.
        empty = opener.open(f"{base}/?since=2099-01-01").read().decode()
        assert "No candles after 2099-01-01: the data end " in empty

        # The ablation button: the legs run in the web process and are written.
        book = re.search(r'name="book" value="(\d+)"', guards)
        assert book is not None, guards
        form = urlencode({"csrfmiddlewaretoken": csrf_token(guards), "book": book.group(1)})
        opener.open(
            urllib.request.Request(
                f"{base}/guards/ablate/", data=form.encode(), headers={"Referer": base}
            )
        ).read()
        deadline = time.monotonic() + 180
        while True:
            page = opener.open(f"{base}/guards/?book={book.group(1)}").read().decode()
            if "still running" not in page:
                break
            assert time.monotonic() < deadline, page
            time.sleep(1)
        with sqlite3.connect(tmp_path / "db.sqlite3") as db:
            legs = db.execute(
                "SELECT without_guard FROM signals_book WHERE ablation_of_id = ?",
                (int(book.group(1)),),
            ).fetchall()
            guards_run = db.execute(
                "SELECT COUNT(*) FROM signals_bookguard WHERE book_id = ? AND active",
                (int(book.group(1)),),
            ).fetchone()[0]
        assert len(legs) == guards_run >= 2

        # A command the pages suggest, pasted into another terminal: it reads .env.
        terminal = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DEBUG", "DATABASE_URL"}
            and not k.startswith(("READ_DOT_ENV", "CELERY_"))
        }
        terminal["DOT_ENV_FILE"] = str(tmp_path / ".env")
        # As pasted: the system's python3, whose virtualenv manage.py finds by itself.
        python = shutil.which("python3") or sys.executable
        pasted = subprocess.run(
            [python, "manage.py", "report", "--help"],
            cwd=settings.BASE_DIR,
            env=terminal,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert pasted.returncode == 0, pasted.stderr
        listed = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "--no-imports",
                "-c",
                "from signals.models import Book; print(Book.objects.count())",
            ],
            cwd=settings.BASE_DIR,
            env=terminal,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert listed.returncode == 0, listed.stderr
        assert int(listed.stdout.strip()) == 1 + len(legs)
    assert celery_keys() == keys_before
