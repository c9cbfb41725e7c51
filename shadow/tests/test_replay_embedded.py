"""The embedded default (a SQLite file, no broker) driven through the real commands, and
the full replay on real market data from ../shared when it is present."""

import csv
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from shadow.models import ShadowTrade
from signals.models import Book, GuardDecision, Signal, SignalState
from signals.tests.candles import walk

REAL_WINDOW = ("--since", "2019-08-01", "--until", "2019-09-30T23:00")


def run_manage(*args: str, db: Path) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY"}
    }
    env.update({"DATABASE_URL": f"sqlite:///{db}", "DEBUG": "true"})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def summary_value(output: str, label: str) -> str:
    line = next(line for line in output.splitlines() if line.strip().startswith(label))
    return line.split()[-1] if "(" not in line else line.split(label)[1].split()[0]


def after_done(output: str) -> str:
    """What the command printed from the rows written on: the same for the same replay."""
    return output.split("Replay done into book", 1)[1].split(": ", 1)[1]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    """A SQLite file migrated once by ``manage.py migrate`` (a process, 5-40 s); each test
    replays on a copy of its own."""
    db = tmp_path_factory.mktemp("embedded") / "migrated.sqlite3"
    done = run_manage("migrate", "--noinput", "-v0", db=db)
    assert done.returncode == 0, done.stderr
    return db


def test_the_commands_replay_generated_candles_on_a_sqlite_file(tmp_path, migrated):
    db = Path(shutil.copy(migrated, tmp_path / "db.sqlite3"))
    candles = tmp_path / "candles.json"
    rows = [[int(t.timestamp() * 1000), o, h, lo, c, 1.5] for t, o, h, lo, c in walk(500, seed=11)]
    candles.write_text(json.dumps(rows))

    loaded = run_manage(
        "load_candles",
        str(candles),
        "--exchange",
        "file",
        "--symbol",
        "BTC/USD",
        "--timeframe",
        "1h",
        db=db,
    )
    assert loaded.returncode == 0, loaded.stderr
    replayed = run_manage(
        "replay", "--exchange", "file", "--symbol", "BTC/USD", "--timeframe", "1h", db=db
    )
    assert replayed.returncode == 0, replayed.stderr
    out = replayed.stdout
    assert int(summary_value(out, "candles")) == 500
    assert int(summary_value(out, "signals")) > 0
    assert int(summary_value(out, "blocked")) > 0
    assert "replay" in replayed.stderr, "a progress bar is shown"

    again = run_manage(
        "replay", "--exchange", "file", "--symbol", "BTC/USD", "--timeframe", "1h", db=db
    )
    assert again.returncode == 0
    assert "replacing the earlier one" not in out
    assert "(id 2), replacing the earlier one" in again.stdout
    assert after_done(again.stdout) == after_done(out), "same numbers again"


@pytest.mark.shared_data
@pytest.mark.django_db
def test_full_replay_on_real_coinbase_candles(shared_dir):
    path = shared_dir / "data/candles/coinbase/Coinbase_BTCUSD_1h.normalized.csv"
    market = ["--exchange", "coinbase", "--symbol", "BTC/USD", "--timeframe", "1h"]
    call_command("load_candles", str(path), *market, stdout=StringIO())
    out = StringIO()
    call_command("replay", *market, *REAL_WINDOW, "--no-progress", stdout=out)

    book = Book.objects.get()
    signals = Signal.objects.filter(book=book)
    assert signals.count() > 20
    assert signals.filter(state=SignalState.BLOCKED).exists()
    assert not signals.filter(state=SignalState.GENERATED).exists()
    decided = signals.exclude(state=SignalState.REJECTED)
    assert GuardDecision.objects.filter(signal__in=decided).count() == 2 * decided.count()
    blocked = signals.filter(state=SignalState.BLOCKED)
    assert ShadowTrade.objects.filter(signal__in=blocked).count() == blocked.count()
    assert ShadowTrade.objects.filter(book=book, status="closed").count() > 10
    assert "data: file" in out.getvalue()


@pytest.mark.shared_data
def test_the_commands_replay_real_candles_on_a_sqlite_file(tmp_path, shared_dir, migrated):
    db = Path(shutil.copy(migrated, tmp_path / "db.sqlite3"))
    path = shared_dir / "data/candles/coinbase/Coinbase_BTCUSD_1h.normalized.csv"
    market = ["--exchange", "coinbase", "--symbol", "BTC/USD", "--timeframe", "1h"]
    loaded = run_manage("load_candles", str(path), *market, db=db)
    assert loaded.returncode == 0, loaded.stderr
    replayed = run_manage("replay", *market, *REAL_WINDOW, db=db)
    assert replayed.returncode == 0, replayed.stderr
    # Every stored candle up to --until runs through the engine: the earlier ones are
    # the strategies' history.
    until_ms = int(datetime(2019, 9, 30, 23, tzinfo=UTC).timestamp() * 1000)
    with path.open() as rows:
        stored = sum(1 for row in csv.DictReader(rows) if int(row["timestamp_ms"]) <= until_ms)
    # load_candles rejects 33 rows of this file (5 spliced repeats, 28 fillers without
    # trades), all before --until: the engine never sees them.
    assert "Rejected 33 row(s)" in loaded.stdout
    assert int(summary_value(replayed.stdout, "candles")) == stored - 33
    assert int(summary_value(replayed.stdout, "signals")) > 20
    assert int(summary_value(replayed.stdout, "blocked")) > 0
    assert int(summary_value(replayed.stdout, "blocked shadow outcomes")) > 0
