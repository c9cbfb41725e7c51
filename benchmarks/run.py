"""``make bench``: the project's replay against backtesting.py and a bare numpy loop, and the
live path through a real Celery worker, all measured in one run on this machine.

First the replay (``benchmarks/replay_bench.py``, which says how): for each size of
candles (the real FTX BTC-PERP month resampled to 5m, and ten copies of it end to end;
synthetic when ../shared/data is absent) and each of ``BENCH_REPEAT`` repetitions, in
alternating order, it times as whole processes the project's ``load_candles`` and
``manage.py replay`` on PostgreSQL and on SQLite, backtesting.py running the same book
(its own virtualenv, ``var/bench-venv``) and the floor, the same book as one plain loop
(``benchmarks/floor.py``); it compares their trade counts and total P&L before it
prints any ratio. Then the per-task cost (``benchmarks/tasks.py``): the project's no-op
task against a bare Celery app (no Django) on the same broker and flags, alternating
rounds; and a Celery worker's no-op task rate and the live catch-up of four markets
(``benchmarks/live.py``), whose signals/s is set beside the bare no-op rate.

Knobs (environment):

- ``BENCH_SIZES``: comma list of sizes, default ``9k,90k`` (``900k``: a hundred copies);
  a number is that many candles (e.g. ``2000`` for a quick run);
- ``BENCH_REPEAT``: repetitions of each replay measurement, default 5;
- ``BENCH_SKIP``: comma list of ``pg, sqlite, bt, floor, tasks, live, pages`` to leave out;
- ``BENCH_TASK_ROUNDS``, ``BENCH_NOOP_TASKS``: rounds per side (default 3) and no-op tasks
  per round (default 2,000) of the per-task cost;
- ``BENCH_BROKER_URL``: the Redis database the workers use (default 14; it is flushed);
- ``BENCH_LIVE_CANDLES``: candles per live market, default 2000 (four markets);
- ``BENCH_LIVE_TIMEOUT``: seconds the live catch-up may take, default 3600;
- ``BENCH_POSTGRES_URL``: the server to create ``bench_<pid>`` on (default local, postgres);
- ``BENCH_PAGES_SIGNALS``: signals in the page benchmark's book, default 1,000,000
  (``20000`` for a quick run; ``benchmarks/pages.py`` lists its other knobs).

Last, the "pages" part (``benchmarks/pages.py``): every page of the trader's view on one
book of ``BENCH_PAGES_SIGNALS`` signals (kept in its own database between runs), its
cold server time (page cache bypassed) beside hand-written SQL, its warm time (from the
page cache), and p50/p95 under 10 concurrent clients through gunicorn (4 workers, the
page cache in Redis).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.data import Source, prepare
from benchmarks.databases import postgres_database
from benchmarks.live import BROKER, MARKETS, LiveResult, measure_live
from benchmarks.measure import ROOT, ChildFailedError
from benchmarks.replay_bench import (
    BENCH_PYTHON,
    Progress,
    all_agree,
    describe_rows,
    env_list,
    machine,
    report,
    run_replays,
    steps,
)
from benchmarks.replay_bench import PARTS as REPLAY_PARTS
from benchmarks.tasks import TasksResult, measure_tasks
from benchmarks.tasks import report as tasks_report

PAGES = ROOT / "benchmarks" / "pages.py"
PARTS = (*REPLAY_PARTS, "tasks", "live", "pages")


def env_number(name: str, default: str) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        sys.exit(f"{name} must be a number, not {os.environ[name]!r}")


def live_report(result: LiveResult, bare_noops: float | None = None) -> str:
    """The live path's figures; its signals/s also against ``bare_noops``, the bare
    Celery app's no-op rate of the same run, when it was measured."""
    per_market = result.candles // len(MARKETS)
    bare = (
        [
            f"               = {result.signals_per_second / bare_noops:.3f} x the bare Celery "
            f"app's no-op rate ({bare_noops:,.0f} tasks/s, per-task cost above)"
        ]
        if bare_noops
        else []
    )
    return "\n".join(
        [
            "Live path: one Celery worker (solo, started as conftest.py starts it) on Redis "
            f"db {BROKER.rsplit('/', 1)[-1]} and PostgreSQL",
            f"  no-op tasks  {result.noop_tasks:,} in {result.noop_seconds:.2f} s: "
            f"{result.noop_per_second:,.0f} tasks/s",
            f"  catch-up     {result.task}: {len(MARKETS)} markets x {per_market:,} candles = "
            f"{result.candles:,} candles in {result.catch_up_seconds:.2f} s: "
            f"{result.candles_per_second:,.0f} candles/s",
            f"               returned {'; '.join(result.returned) or 'nothing'}",
            f"  signals      {result.signals:,} in the live book: "
            f"{result.signals_per_second:,.1f} signals/s = "
            f"{result.signals_per_second / result.noop_per_second:.3f} x the no-op task rate",
            *bare,
            f"  rows         {result.rows:,} written ({describe_rows(result.rows_by_table)})",
            f"  worker peak  {result.worker_peak_mib:.0f} MiB",
        ]
    )


def run_pages() -> str:
    """``benchmarks/pages.py`` with its progress on the terminal; its table."""
    import subprocess

    done = subprocess.run([sys.executable, str(PAGES)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise ChildFailedError(f"{PAGES.name} exited with {done.returncode}")
    return done.stdout.strip()


def main() -> None:
    sizes = env_list("BENCH_SIZES", "9k,90k")
    skip = set(env_list("BENCH_SKIP", ""))
    if unknown := skip - set(PARTS):
        sys.exit(
            f"BENCH_SKIP: unknown part(s) {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}"
        )
    repeat = int(env_number("BENCH_REPEAT", "5"))
    live_candles = int(env_number("BENCH_LIVE_CANDLES", "2000"))
    live_timeout = env_number("BENCH_LIVE_TIMEOUT", "3600")
    if "bt" not in skip and not BENCH_PYTHON.exists():
        sys.exit(f"{BENCH_PYTHON} is missing: run `make bench`, which creates it")

    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as name:
        tmp = Path(name)
        source = Source()
        try:
            all_series = prepare(source, sizes, tmp)
        except ValueError as error:
            sys.exit(f"BENCH_SIZES: {error}")
        print(f"data: {source.description}; {source.base_candles:,} candles a month", flush=True)
        for series in all_series:
            print(f"  size {series.label}: {series.candles:,} candles", flush=True)

        replay_skip = skip & set(REPLAY_PARTS)
        replay_parts = set(REPLAY_PARTS) - skip
        progress = Progress(
            total=steps(all_series, replay_skip, repeat)
            + ("tasks" not in skip)
            + ("live" not in skip)
            + ("pages" not in skip)
        )
        all_results = (
            run_replays(all_series, replay_skip, repeat, tmp, progress, real=source.real)
            if replay_parts
            else []
        )

        tasks: TasksResult | None = None
        if "tasks" not in skip:
            rounds = int(env_number("BENCH_TASK_ROUNDS", "3"))
            noops = int(env_number("BENCH_NOOP_TASKS", "2000"))

            def run_tasks() -> TasksResult:
                with postgres_database() as url:
                    return measure_tasks(
                        database_url=url, rounds=rounds, tasks=noops, timeout=live_timeout
                    )

            tasks = progress.step(
                f"per-task cost: {noops:,} no-ops x {rounds} rounds, the project's worker "
                "and a bare Celery app's alternating",
                run_tasks,
                lambda r: f"project / bare {r.ratio:.2f}",
            )

        live: LiveResult | None = None
        if "live" not in skip:

            def run_live() -> LiveResult:
                with postgres_database() as url:
                    return measure_live(
                        source=source,
                        candles=live_candles,
                        directory=tmp,
                        database_url=url,
                        timeout=live_timeout,
                    )

            live = progress.step(
                f"live path: {live_candles:,} candles x {len(MARKETS)} markets through a "
                "Celery worker",
                run_live,
                lambda r: (
                    f"no-ops {r.noop_seconds:.2f} s, catch-up {r.catch_up_seconds:.2f} s, "
                    f"{r.signals:,} signals"
                ),
            )

    pages: str | None = None
    if "pages" not in skip:
        signals = os.environ.get("BENCH_PAGES_SIGNALS", "1000000")
        pages = progress.step(
            f"pages: every page on one book of {signals} signals, then 10 clients over HTTP",
            lambda: run_pages(),
            lambda table: "done (table below)",
        )

    if all_results:
        print()
        print(report(all_results, source.real, repeat))
    if tasks:
        print()
        print(tasks_report(tasks))
    if live:
        print()
        print(live_report(live, tasks.median("bare") if tasks else None))
    if pages:
        print()
        print(pages)
    if progress.failures:
        print("\nFailures:", file=sys.stderr)
        for failure in progress.failures:
            print(f"- {failure}", file=sys.stderr)
        sys.exit(1)
    if not all_agree(all_results):
        sys.exit("The replay's sides disagree (MISMATCH above): no ratio of theirs is claimed.")


if __name__ == "__main__":
    main()
