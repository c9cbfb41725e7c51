"""The live path through a real Celery worker on Redis and PostgreSQL.

The worker is started the way ``conftest.py``'s ``celery_worker_process`` fixture starts
it (same flags, ``config.settings_test``, a flushed Redis database of its own,
``SIGNAL_MAX_AGE_MINUTES`` large enough that the whole history counts as fresh). Two
numbers come out of it:

- the no-op rate: how many tasks per second the broker and the worker get through when
  the tasks do nothing (``config.noop``), the ceiling of any per-task design;
- the live catch-up: four markets of candles, a strategy on each, then the live entry
  task once (``shadow.advance_live_books`` and the ``shadow.advance_book`` runs it fans
  out to; or ``signals.generate_signals`` in the older design); candles/s and signals/s
  over the time it took, and signals/s against the no-op rate.

Times run from sending the first task to the worker logging that the last one succeeded
(the worker keeps no results, so its log is the witness; a task that raises stops the
benchmark with the log's tail).
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.data import Source, prepare_markets
from benchmarks.databases import app_env
from benchmarks.measure import ROOT
from benchmarks.project import SYMBOL, configure, count_rows, load_market, manage

# BENCH_BROKER_URL: another Redis database when two benchmarks share the server. The
# default (12) is none of the test suite's (15, 14 and below for more test workers:
# config/settings_test.py), so make bench and make test can run at once.
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/11")
NOOP_TASKS = 2_000
# Symbol and price factor of each market: the same candles at ETH, SOL and XRP price levels
# (powers of two, so the scaling itself is exact).
MARKETS = {
    SYMBOL: 1.0,
    "ETH/USD:USD": 1 / 16,
    "SOL/USD:USD": 1 / 256,
    "XRP/USD:USD": 1 / 65_536,
}
LIVE_BOOK = "live"
# A hundred years: every stored candle is young enough to be processed.
MAX_AGE_MINUTES = 60 * 24 * 365 * 100
WORKER_LOG = ROOT / "var" / "bench-worker.log"
WORKER_ARGV = [
    sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo", "-c", "1",
    "-Q", "default,market_data,signals,shadow,analytics,alerts",
    "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "info",
]  # fmt: skip


@dataclass(frozen=True)
class CatchUp:
    """A live entry point: the task to send and, when it fans out, the task it sends once
    per id in its result (all of those must finish)."""

    task: str
    fan_out: str | None = None


# The first one the worker has registered is used.
CATCH_UPS = (
    CatchUp("shadow.advance_live_books", fan_out="shadow.advance_book"),
    CatchUp("signals.generate_signals"),
)


@dataclass(frozen=True)
class LiveResult:
    noop_tasks: int
    noop_seconds: float
    task: str
    candles: int
    catch_up_seconds: float
    returned: list[str]
    rows_by_table: dict[str, int | None]
    worker_peak_mib: float

    @property
    def signals(self) -> int:
        return self.rows_by_table.get("signals_signal") or 0

    @property
    def rows(self) -> int:
        return sum(n for n in self.rows_by_table.values() if n)

    @property
    def noop_per_second(self) -> float:
        return self.noop_tasks / self.noop_seconds

    @property
    def candles_per_second(self) -> float:
        return self.candles / self.catch_up_seconds

    @property
    def signals_per_second(self) -> float:
        return self.signals / self.catch_up_seconds


def succeeded(task: str) -> re.Pattern[str]:
    """A worker log line saying a ``task`` succeeded; ``result`` is what it returned."""
    return re.compile(rf"Task {re.escape(task)}\[[^\]]+\] succeeded in [^:]*: ?(?P<result>.*)$")


class Worker:
    """A running worker process and its log file, read as it grows."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
        self.process = process
        self.timeout = timeout
        self.lines: list[str] = []
        self.peak_mib = 0.0
        self._log = log
        self._offset = 0
        self._partial = ""

    def refresh(self) -> int:
        """Read what the worker logged since the last call; the number of lines so far."""
        with self._log.open() as handle:
            handle.seek(self._offset)
            chunk = handle.read()
            self._offset = handle.tell()
        *complete, self._partial = (self._partial + chunk).split("\n")
        self.lines.extend(complete)
        return len(self.lines)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.lines[-lines:])

    def registered(self) -> set[str]:
        """The task names of the worker's start-up banner."""
        return {m.group(1) for line in self.lines if (m := re.match(r"^\s+\. (\S+)$", line))}

    def wait_for(self, pattern: re.Pattern[str], count: int = 1, *, since: int) -> list[str]:
        """Wait until ``count`` lines after line ``since`` match ``pattern``; their
        ``result`` groups. ``RuntimeError`` when a task raised, the worker died or the
        timeout passed."""
        results: list[str] = []
        checked = since
        deadline = time.monotonic() + self.timeout
        while True:
            total = self.refresh()
            for line in self.lines[checked:total]:
                if "raised unexpected" in line:
                    raise RuntimeError(f"a task failed in the worker:\n{self.tail()}")
                if match := pattern.search(line):
                    results.append(match.group("result"))
            checked = total
            if len(results) >= count:
                return results
            if self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"waited {self.timeout:.0f} s for {count} x {pattern.pattern!r} "
                    f"(BENCH_LIVE_TIMEOUT):\n{self.tail()}"
                )
            time.sleep(0.02)


def peak_mib(process: subprocess.Popen[bytes]) -> float:
    """The peak resident memory of the program running in ``process`` (``VmHWM``, counted
    from its exec, so not inflated by this process's memory as ``ru_maxrss`` would be)."""
    try:
        status = Path(f"/proc/{process.pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"^VmHWM:\s*(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else 0.0


def stop(process: subprocess.Popen[bytes], *, grace: float) -> None:
    """SIGTERM ``process`` and reap it, killing it after ``grace`` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def worker_env(database_url: str) -> dict[str, str]:
    """The worker's environment, as the test fixture builds it."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": BROKER,
        "SIGNAL_MAX_AGE_MINUTES": str(MAX_AGE_MINUTES),
    }


@contextmanager
def celery_worker(
    env: Mapping[str, str],
    timeout: float,
    argv: Sequence[str] = WORKER_ARGV,
    log: Path = WORKER_LOG,
) -> Iterator[Worker]:
    """A worker process (the project's, or ``argv``) on an emptied broker database,
    stopped (SIGTERM) on the way out; its peak memory until then is in
    ``Worker.peak_mib`` afterwards."""
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    log.parent.mkdir(exist_ok=True)
    with log.open("w") as output:
        process = subprocess.Popen(
            list(argv), cwd=ROOT, env=dict(env), stdout=output, stderr=subprocess.STDOUT
        )
    worker = Worker(process, log, timeout)
    try:
        deadline = time.monotonic() + 60
        while not any("ready" in line for line in worker.lines):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start:\n{worker.tail()}")
            time.sleep(0.1)
            worker.refresh()
        yield worker
    finally:
        worker.peak_mib = peak_mib(process)
        stop(process, grace=20)


def fan_out_count(returned: str) -> int:
    """How many follow-up tasks a fanning-out task sent: the length of the list it returned."""
    value = ast.literal_eval(returned)
    if not isinstance(value, list | tuple):
        raise RuntimeError(f"expected the ids of the books it advanced, got {returned!r}")
    return len(value)


def measure_live(
    *, source: Source, candles: int, directory: Path, database_url: str, timeout: float
) -> LiveResult:
    """Load ``candles`` candles into each market of ``MARKETS`` in the empty database at
    ``database_url``, then time the no-op tasks and the live catch-up in one worker."""
    env = app_env(database_url)
    manage("migrate", "--no-input", "-v", "0", env=env)
    paths = prepare_markets(source, candles, list(MARKETS.values()), directory)
    for symbol, path in zip(MARKETS, paths, strict=True):
        load_market(path, symbol, env)
    configure(list(MARKETS), env)

    # This process only sends, through the project's Celery app with the worker's settings
    # (so the routing is the project's).
    for key in ("DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL"):
        os.environ[key] = worker_env(database_url)[key]
    from config.celery import app

    noop = succeeded("config.noop")
    with celery_worker(worker_env(database_url), timeout) as worker:
        registered = worker.registered()
        catch_up = next((c for c in CATCH_UPS if c.task in registered), None)
        if catch_up is None:
            raise RuntimeError(
                f"the worker has none of the live tasks {', '.join(c.task for c in CATCH_UPS)}"
            )
        # A first task, untimed, connects both sides and loads the settings in this process.
        # The log is read before sending: a fast worker may log the success before the
        # next read, and a mark taken after it would wait for a line already written.
        mark = worker.refresh()
        app.send_task("config.noop")
        worker.wait_for(noop, since=mark)

        mark = worker.refresh()
        started = time.perf_counter()
        with app.producer_or_acquire() as producer:
            for _ in range(NOOP_TASKS):
                app.send_task("config.noop", producer=producer)
        worker.wait_for(noop, NOOP_TASKS, since=mark)
        noop_seconds = time.perf_counter() - started

        mark = worker.refresh()
        started = time.perf_counter()
        app.send_task(catch_up.task)
        returned = worker.wait_for(succeeded(catch_up.task), since=mark)
        if catch_up.fan_out:
            count = fan_out_count(returned[0])
            returned = worker.wait_for(succeeded(catch_up.fan_out), count, since=mark)
        catch_up_seconds = time.perf_counter() - started

    return LiveResult(
        noop_tasks=NOOP_TASKS,
        noop_seconds=noop_seconds,
        task=catch_up.task + (f" -> {catch_up.fan_out}" if catch_up.fan_out else ""),
        candles=candles * len(MARKETS),
        catch_up_seconds=catch_up_seconds,
        returned=[value.strip() for value in returned],
        rows_by_table=count_rows(LIVE_BOOK, env),
        worker_peak_mib=worker.peak_mib,
    )
