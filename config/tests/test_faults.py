"""The fault suite: real worker and beat processes, real PostgreSQL and Redis, things
breaking under them. Each test proves the books stay straight: every signal and shadow
trade ends exactly once (compared row by row with a clean replay of the same candles).

- a worker SIGKILLed in the middle of a book's run, then restarted;
- a poison task that kills its process at every delivery is quarantined;
- Redis restarted empty under a running worker (a private redis-server: it keeps
  nothing on disk, like the production one);
- PostgreSQL dropping the task's connection mid-run (``pg_terminate_backend``), and a
  private PostgreSQL server restarted mid-task (``pg_ctl restart``): the task retries
  with backoff and the interrupted attempt leaves no row;
- beat down for three slots: one catch-up run on restart, not three.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
import redis
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from markets.services import candles_upsert
from markets.synthetic import synthetic_bars
from shadow.tests.book_rows import book_rows
from signals.models import Book, BookState, Signal, StrategyConfig
from signals.services import guard_configs_default

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]
QUEUES = "default,market_data,signals,shadow,analytics,alerts"
SYMBOLS = ("AAA/USD", "BBB/USD", "CCC/USD")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Process:
    """A Celery worker or beat process with its log."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        self.args = args
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Process":
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", *self.args],
                cwd=Path(__file__).resolve().parents[2],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, *, count: int = 1, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.text().count(text) >= count:
                return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} x{count} not seen in {timeout}s:\n{self.text()[-4000:]}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def processes(settings, tmp_path):
    """Start workers and beats on the test database; stop them all afterwards."""
    started: list[Process] = []

    def make(kind: str, *, broker: str | None = None, pool: str = "solo", **env: str) -> Process:
        full_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": broker or settings.CELERY_BROKER_URL,
            "SIGNAL_MAX_AGE_MINUTES": str(60 * 24 * 365 * 5),
            **env,
        }
        if kind == "worker":
            args = ["worker", "-P", pool, "-c", "1", "-Q", QUEUES, "--without-mingle"]
            args += ["--without-gossip", "-l", "info"]
        else:
            args = ["beat", "-l", "info"]
        process = Process(args, tmp_path / f"{kind}{len(started)}.log", full_env)
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


@pytest.fixture
def clean_broker(settings):
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


def _markets(count: int, hours_ago: int = 0) -> None:
    """Three markets of ``count`` hourly candles up to ``hours_ago`` hours before now, one
    EMA strategy each, and the default guards."""
    now = timezone.now() - timedelta(hours=hours_ago)
    for seed, symbol in enumerate(SYMBOLS, start=1):
        bars = synthetic_bars(timeframe=timedelta(hours=1), count=count, end=now, seed=seed)
        candles_upsert(exchange="gen", symbol=symbol, timeframe="1h", bars=bars, source="synthetic")
        StrategyConfig.objects.get_or_create(
            name=f"ema {symbol}",
            defaults={
                "kind": "ema_crossover",
                "exchange": "gen",
                "symbol": symbol,
                "timeframe": "1h",
            },
        )
    guard_configs_default()


def _reference() -> dict:
    call_command(
        "replay",
        "--exchange",
        "gen",
        "--all-symbols",
        "--timeframe",
        "1h",
        "--book",
        "reference",
        "--no-progress",
        stdout=StringIO(),
    )
    return book_rows(Book.objects.get(name="reference"))


def _revision() -> int:
    return (
        BookState.objects.filter(book__name="live").values_list("revision", flat=True).first() or 0
    )


def _wait(predicate, *, timeout: float = 90, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _send(name: str, broker: str, **kwargs: object) -> None:
    from config.celery import app

    with app.connection_for_write(broker) as conn:
        app.send_task(name, kwargs=kwargs, connection=conn)


REDELIVER_FAST = {
    "CELERY_VISIBILITY_TIMEOUT": "5",
    "CELERY_UNACKED_RESTORE_INTERVAL": "1",
    "CELERY_UNACKED_RESTORE_THROTTLE": "1",
}


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(processes, clean_broker, settings):
    _markets(20000)
    worker = processes("worker", **REDELIVER_FAST).start()
    worker.wait_for("ready")
    _send("shadow.advance_live_books", settings.CELERY_BROKER_URL)
    worker.wait_for("[SIGNAL-BUS] book=live configuration")
    time.sleep(0.2)
    worker.kill()
    time.sleep(0.5)  # a COMMIT already on the wire would still land
    assert _revision() == 0, "the kill came after the run committed: make the run longer"
    assert not Signal.objects.filter(book__name="live").exists(), "nothing half-written"

    restarted = processes("worker", **REDELIVER_FAST).start()
    restarted.wait_for("ready")
    # The unacknowledged message comes back after the visibility timeout, and the
    # periodic sweep asks again anyway: both runs together must still write it once.
    _send("shadow.advance_live_books", settings.CELERY_BROKER_URL)
    _wait(lambda: _revision() >= 1, what="the live book's run after the restart")
    restarted.wait_for("shadow.advance_book[", count=2, timeout=60)
    restarted.wait_for("succeeded in", count=3, timeout=60)
    live = Book.objects.get(name="live")
    assert book_rows(live) == _reference()
    assert "raised unexpected" not in restarted.text()


@pytest.mark.reliability(
    fault="a task that kills its worker process at every delivery (poison message)",
    expected="run at most TASK_MAX_DELIVERIES times, then quarantined with an alert; "
    "the worker goes on",
)
def test_a_poison_task_is_quarantined_and_the_worker_goes_on(
    processes, clean_broker, settings, reliability
):
    from alerts.models import Alert, TaskDelivery

    worker = processes("worker", pool="prefork").start()
    worker.wait_for("ready")
    _send("faults.poison", settings.CELERY_BROKER_URL)
    _wait(
        lambda: TaskDelivery.objects.filter(quarantined_at__isnull=False).exists(),
        what="the poison task's quarantine",
    )
    row = TaskDelivery.objects.get()
    assert row.task == "faults.poison"
    assert row.deliveries == settings.TASK_MAX_DELIVERIES + 1
    assert Alert.objects.filter(kind="task_quarantined", key="faults.poison").count() == 1
    worker.wait_for("[QUARANTINE] task faults.poison")
    time.sleep(2)
    assert TaskDelivery.objects.get().deliveries == row.deliveries, "no endless loop"
    assert worker.alive()
    _send("config.noop", settings.CELERY_BROKER_URL)
    worker.wait_for("Task config.noop[", timeout=30)
    worker.wait_for("succeeded in", timeout=30)
    reliability.observed(
        f"quarantined after {row.deliveries - 1} deliveries, one alert; the next task ran",
        lost=0,
        duplicated=0,
    )


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test's own (nothing on disk), which it may kill."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=port)
        _wait(lambda: _ping(client), timeout=10, what="redis-server")
        return process

    class Server:
        url = f"redis://127.0.0.1:{port}/0"

        def __init__(self) -> None:
            self.process = start()

        def restart_empty(self) -> None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = start()

    server = Server()
    yield server
    server.process.kill()
    server.process.wait()


def _ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_redis_restarted_empty_loses_nothing_and_the_worker_consumes_again(
    processes, private_redis
):
    _markets(400, hours_ago=6)
    worker = processes("worker", broker=private_redis.url).start()
    worker.wait_for("ready")
    _send("shadow.advance_live_books", private_redis.url)
    _wait(lambda: _revision() >= 1, what="the first run")

    # Redis dies with a sweep queued for nobody yet, and comes back empty.
    private_redis.restart_empty()
    assert redis.Redis.from_url(private_redis.url).dbsize() == 0
    # Meanwhile six more candles closed (the market-data task stored them).
    _markets(406)

    # The next periodic sweep recreates the work from the database's state; the worker
    # reconnects and consumes it within 60 s.
    started = time.monotonic()
    deadline = started + 60
    while _revision() < 2 and time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # Redis may still be coming back
            _send("shadow.advance_live_books", private_redis.url)
        _wait_quietly(lambda: _revision() >= 2, 5)
    assert _revision() >= 2, (
        f"the worker did not consume again within 60 s:\n{worker.text()[-3000:]}"
    )
    assert time.monotonic() - started < 60
    assert book_rows(Book.objects.get(name="live")) == _reference()


def _wait_quietly(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.2)


def test_postgres_dropping_the_connection_mid_run_retries_and_leaves_no_partial_rows(
    processes, clean_broker, settings
):
    _markets(20000)
    # The worker names its connections, so only they are dropped (not the live test
    # server's or another test's).
    worker = processes(
        "worker", DATABASE_URL=f"{_database_url()}?application_name=fault-worker"
    ).start()
    worker.wait_for("ready")
    _send("shadow.advance_live_books", settings.CELERY_BROKER_URL)
    worker.wait_for("[SIGNAL-BUS] book=live configuration")
    time.sleep(0.2)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'fault-worker' AND datname = current_database()"
        )
        (terminated,) = cursor.fetchone()
    assert terminated >= 1
    worker.wait_for("Retry in", timeout=60)
    assert _revision() == 0 and not Signal.objects.filter(book__name="live").exists(), (
        "the failed attempt left nothing behind"
    )
    _wait(lambda: _revision() >= 1, timeout=120, what="the retried run")
    assert book_rows(Book.objects.get(name="live")) == _reference()


def test_beat_down_for_three_slots_catches_up_once(processes, private_redis):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="probe", task="config.noop", interval=every, queue="probe")
    queue = redis.Redis.from_url(private_redis.url)

    beat = processes("beat", broker=private_redis.url).start()
    _wait(lambda: queue.llen("probe") >= 2, timeout=60, what="two probe runs")
    beat.stop()
    sent = queue.llen("probe")
    time.sleep(6.5)  # three slots of 2 s missed
    assert queue.llen("probe") == sent

    again = processes("beat", broker=private_redis.url).start()
    again.wait_for("beat: Starting...")
    _wait(lambda: queue.llen("probe") > sent, timeout=15, what="the catch-up run")
    time.sleep(1.0)
    assert queue.llen("probe") == sent + 1, "one catch-up run, not one per missed slot"
    _wait(lambda: queue.llen("probe") >= sent + 2, timeout=15, what="the schedule resuming")


PG_BIN = Path("/usr/lib/postgresql")


@pytest.fixture
def private_postgres():
    """A PostgreSQL server of this test's own (initdb in a temporary directory), which
    it may restart; migrated. Skips where the server binaries or the postgres user are
    missing."""
    import pwd

    versions = sorted(PG_BIN.glob("*/bin/pg_ctl"))
    if not versions:
        pytest.skip("PostgreSQL server binaries are not installed")
    bin_dir = versions[-1].parent
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres system user to run a private server")
    import tempfile

    # Not under pytest's tmp_path: its parents are private to this user.
    root = Path(tempfile.mkdtemp(prefix="fault-pg-"))
    root.chmod(0o755)
    os.chown(root, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = root / "data"
    subprocess.run(
        [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"

    def pg_ctl(*args: str) -> None:
        subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    pg_ctl("-o", options, "-l", str(root / "log"), "start", "-w")
    url = f"postgres://postgres@127.0.0.1:{port}/postgres"

    class Server:
        def __init__(self) -> None:
            self.url = url

        def restart(self) -> None:
            pg_ctl("-o", options, "-l", str(root / "log"), "-m", "fast", "restart", "-w")

        def manage(self, *args: str) -> str:
            env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "config.settings_test",
                "DATABASE_URL": url,
            }
            done = subprocess.run(
                [sys.executable, "manage.py", *args],
                cwd=Path(__file__).resolve().parents[2],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            return done.stdout

    server = Server()
    try:
        server.manage("migrate", "-v0")
        yield server
    finally:
        pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(root, ignore_errors=True)


COMPARE_WITH_REPLAY = """
from io import StringIO
from django.core.management import call_command
from shadow.tests.book_rows import book_rows
from signals.models import Book
call_command("replay", "--exchange", "gen", "--all-symbols", "--timeframe", "1h",
             "--book", "reference", "--no-progress", stdout=StringIO())
live, reference = (book_rows(Book.objects.get(name=n)) for n in ("live", "reference"))
print("signals", len(live["signals"]), "EQUAL" if live == reference else "DIFFERENT")
"""


def test_postgres_restarted_mid_task_the_task_retries_and_leaves_no_partial_rows(
    processes, clean_broker, settings, private_postgres
):
    import psycopg

    private_postgres.manage(
        "shell", "-c", "from config.tests.test_faults import _markets; _markets(20000)"
    )
    worker = processes("worker", DATABASE_URL=private_postgres.url).start()
    worker.wait_for("ready")
    _send("shadow.advance_live_books", settings.CELERY_BROKER_URL)
    worker.wait_for("[SIGNAL-BUS] book=live configuration")
    time.sleep(0.2)
    private_postgres.restart()
    worker.wait_for("Retry in", timeout=60)
    with psycopg.connect(private_postgres.url) as conn:
        (revision,) = conn.execute(
            "SELECT coalesce(max(revision), 0) FROM signals_bookstate"
        ).fetchone()
        (signals,) = conn.execute("SELECT count(*) FROM signals_signal").fetchone()
    assert (revision, signals) == (0, 0), "the interrupted attempt left nothing behind"
    worker.wait_for("Task shadow.advance_book[", count=2, timeout=120)  # the retry
    worker.wait_for("succeeded in", count=2, timeout=120)
    out = private_postgres.manage("shell", "-c", COMPARE_WITH_REPLAY)
    line = next(line for line in out.splitlines() if line.startswith("signals "))
    assert line.endswith("EQUAL"), out
    assert int(line.split()[1]) > 100
