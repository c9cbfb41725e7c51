"""Production settings serve pages once static files are collected (gunicorn, DEBUG off)."""

import os
import subprocess
import sys
import time
import urllib.request

from django.conf import settings

from config.tests.demo_server import free_port


def test_gunicorn_serves_the_login_page_and_its_css_after_collectstatic(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY="p9Vq2LmT7xRz4KbN8cYw3HsJ6dFa1QeU5oGi0nXtPjZyBvMkCrEhSlDgWfA",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        STATIC_ROOT=str(tmp_path / "static"),
    )
    for command in (["migrate", "--noinput", "-v0"], ["collectstatic", "--noinput", "-v0"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                page = urllib.request.urlopen(f"{base}/admin/login/", timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.3)
        html = page.read().decode()
        assert page.status == 200
        assert "csrfmiddlewaretoken" in html
        css = [part.split('"')[0] for part in html.split('href="')[1:] if ".css" in part]
        assert css, "the login page links its stylesheets"
        for href in css:
            with urllib.request.urlopen(f"{base}{href}", timeout=5) as sheet:
                assert sheet.status == 200
    finally:
        server.terminate()
        server.wait(timeout=20)
