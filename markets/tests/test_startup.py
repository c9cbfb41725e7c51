"""A process that never talks to an exchange does not load ccxt (every exchange class,
0.4 s of CPU at each start of a worker, beat, web server or command)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import django
django.setup()
from config.celery import app
app.loader.import_default_modules()
import config.urls, markets.orders, markets.services, signals.execution
print(sorted(name for name in sys.modules if name == "ccxt" or name.startswith("ccxt.")))
"""


def test_the_app_its_tasks_and_urls_load_without_ccxt():
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "config.settings_test", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_gateway_still_builds_a_real_ccxt_exchange():
    from markets.gateway import build_exchange, ccxt_module

    exchange = build_exchange("kraken")
    assert isinstance(exchange, ccxt_module().kraken)
    assert "ccxt" in sys.modules
