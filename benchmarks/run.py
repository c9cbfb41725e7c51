"""``make bench``: the project's replay against backtesting.py and a bare numpy loop, and the
live path through a real Celery worker, all measured in one run on this machine.

For each size of candles (the real FTX BTC-PERP month resampled to 5m, and ten copies of
it end to end; synthetic when ../shared/data is absent) it times, each as a whole
process: the project's ``manage.py replay`` on PostgreSQL and on SQLite (persistence
included; rows written and rows/s counted after), backtesting.py running the same
strategy (its own virtualenv, ``var/bench-venv``), and the floor, the same strategy and
fill model as one plain loop (``benchmarks/floor.py``). Then it measures a Celery
worker's no-op task rate and the live catch-up of four markets (``benchmarks/live.py``).

Knobs (environment):

- ``BENCH_SIZES``: comma list of sizes, default ``9k,90k``; a number is that many candles
  (e.g. ``2000`` for a quick run);
- ``BENCH_SKIP``: comma list of ``pg, sqlite, bt, floor, live, pages`` to leave out;
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
import platform
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.data import Series, Source, prepare
from benchmarks.databases import app_env, postgres_database, postgres_version, sqlite_database
from benchmarks.live import MARKETS, LiveResult, measure_live
from benchmarks.measure import ROOT, ChildFailedError, Measurement, measure
from benchmarks.project import ReplayResult, measure_replay

BENCH_PYTHON = ROOT / "var" / "bench-venv" / "bin" / "python"
FLOOR = ROOT / "benchmarks" / "floor.py"
BT_STRATEGY = ROOT / "benchmarks" / "bt_strategy.py"
PAGES = ROOT / "benchmarks" / "pages.py"
PARTS = ("pg", "sqlite", "bt", "floor", "live", "pages")
SIZE_PARTS = {"pg", "sqlite", "bt", "floor"}  # measured once per size
DATABASES = {"pg": "PostgreSQL", "sqlite": "SQLite"}

T = TypeVar("T")


@dataclass
class SizeResults:
    """Everything measured on one size of candles (``None``: skipped or failed)."""

    series: Series
    floor: Measurement | None = None
    bt: Measurement | None = None
    replays: dict[str, ReplayResult | None] = field(default_factory=dict)


@dataclass
class Progress:
    """Numbered progress lines, and what failed."""

    total: int
    done: int = 0
    failures: list[str] = field(default_factory=list)

    def step(self, what: str, action: Callable[[], T], report: Callable[[T], str]) -> T | None:
        """Announce a measurement, run it, print its result; ``None`` (and a failure noted)
        when it fails, so one broken part does not cost the whole run."""
        self.done += 1
        print(f"[{self.done}/{self.total}] {what} ...", flush=True)
        try:
            result = action()
        except (ChildFailedError, RuntimeError, OSError) as error:
            print(f"    FAILED: {str(error).splitlines()[0]}", flush=True)
            self.failures.append(f"{what}: {error}")
            return None
        print(f"    {report(result)}", flush=True)
        return result


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_number(name: str, default: str) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        sys.exit(f"{name} must be a number, not {os.environ[name]!r}")


def trades(output: str) -> str:
    found = re.search(r"^trades: (\d+)", output, re.MULTILINE)
    return found.group(1) if found else "?"


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    total = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.MULTILINE)
    ram = f"{int(total.group(1)) / 1024**2:.1f} GiB RAM" if total else "RAM unknown"
    try:
        database = postgres_version()
    except Exception as error:  # only a label: any failure will do
        database = f"PostgreSQL unreachable ({type(error).__name__})"
    return (
        f"machine: {len(os.sched_getaffinity(0))} CPUs (nproc), "
        f"{model.group(1).strip() if model else platform.processor() or 'CPU unknown'}, {ram}; "
        f"Python {platform.python_version()}, {database}"
    )


def describe_rows(counts: dict[str, int | None]) -> str:
    """``signal 92, signaltransition 238, ...`` (``-``: no such table)."""
    return ", ".join(
        f"{table.split('_', 1)[1]} {'-' if rows is None else rows}"
        for table, rows in counts.items()
    )


def measure_size(series: Series, skip: set[str], progress: Progress, tmp: Path) -> SizeResults:
    results = SizeResults(series)
    n = f"{series.candles:,} candles"
    if "floor" not in skip:
        results.floor = progress.step(
            f"floor (numpy loop), {n}",
            lambda: measure([sys.executable, str(FLOOR), str(series.path)]),
            lambda m: f"{m.seconds:.2f} s, {m.peak_mib:.0f} MiB, {trades(m.stdout)} trades",
        )
    if "bt" not in skip:
        results.bt = progress.step(
            f"backtesting.py, {n}",
            lambda: measure([str(BENCH_PYTHON), str(BT_STRATEGY), str(series.path)]),
            lambda m: f"{m.seconds:.2f} s, {m.peak_mib:.0f} MiB, {trades(m.stdout)} trades",
        )
    for key, label in DATABASES.items():
        if key in skip:
            continue

        def replay(key: str = key) -> ReplayResult:
            database = postgres_database() if key == "pg" else sqlite_database(tmp)
            with database as url:
                return measure_replay(series.path, app_env(url))

        results.replays[key] = progress.step(
            f"project replay on {label}, {n}",
            replay,
            lambda r: (
                f"{r.run.seconds:.1f} s, {r.run.peak_mib:.0f} MiB, {r.rows:,} rows "
                f"({describe_rows(r.rows_by_table)})"
            ),
        )
    return results


def cell(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator and denominator else None


HEADER = (
    "candles", "db", "project s", "bt.py s", "floor s", "proj/bt", "proj/floor",
    "rows", "rows/s", "MiB proj", "MiB bt.py", "MiB floor",
)  # fmt: skip


def table_rows(results: SizeResults, databases: list[str]) -> list[tuple[str, ...]]:
    """One row per database: the replay's numbers beside the size's baselines."""
    bt, floor = results.bt, results.floor
    bt_s, floor_s = (bt.seconds if bt else None), (floor.seconds if floor else None)
    rows: list[tuple[str, ...]] = []
    for key in databases:
        replay = results.replays.get(key)
        project = replay.run.seconds if replay else None
        rows.append(
            (
                f"{results.series.candles:,}",
                DATABASES.get(key, "-"),
                cell(project, ".2f"),
                cell(bt_s, ".2f"),
                cell(floor_s, ".3f"),
                cell(ratio(project, bt_s), ".1f", "x"),
                cell(ratio(project, floor_s), ".1f", "x"),
                cell(replay.rows if replay else None, ",d"),
                cell(replay.rows_per_second if replay else None, ",.0f"),
                cell(replay.run.peak_mib if replay else None, ".0f"),
                cell(bt.peak_mib if bt else None, ".0f"),
                cell(floor.peak_mib if floor else None, ".0f"),
            )
        )
    return rows


def table(all_results: list[SizeResults], skip: set[str]) -> str:
    """The results as aligned text: the database column left, numbers right."""
    databases = [key for key in DATABASES if key not in skip] or [""]
    rows = [HEADER] + [row for r in all_results for row in table_rows(r, databases)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(
            text.ljust(width) if i == 1 else text.rjust(width)
            for i, (text, width) in enumerate(zip(row, widths, strict=True))
        )

    lines = [line(row) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def live_report(result: LiveResult) -> str:
    per_market = result.candles // len(MARKETS)
    return "\n".join(
        [
            "Live path: one Celery worker (solo, started as conftest.py starts it) on Redis "
            "db 14 and PostgreSQL",
            f"  no-op tasks  {result.noop_tasks:,} in {result.noop_seconds:.2f} s: "
            f"{result.noop_per_second:,.0f} tasks/s",
            f"  catch-up     {result.task}: {len(MARKETS)} markets x {per_market:,} candles = "
            f"{result.candles:,} candles in {result.catch_up_seconds:.2f} s: "
            f"{result.candles_per_second:,.0f} candles/s",
            f"               returned {'; '.join(result.returned) or 'nothing'}",
            f"  signals      {result.signals:,} in the live book: "
            f"{result.signals_per_second:,.1f} signals/s = "
            f"{result.signals_per_second / result.noop_per_second:.3f} x the no-op task rate",
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

        per_size = len(SIZE_PARTS - skip)
        progress = Progress(
            total=per_size * len(all_series) + ("live" not in skip) + ("pages" not in skip)
        )
        all_results = [measure_size(series, skip, progress, tmp) for series in all_series]

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

    if SIZE_PARTS - skip:
        label = "real" if source.real else "SYNTHETIC"
        print(
            f"\nReplay of the same strategy on {label} candles; seconds and peak memory of "
            "whole processes (interpreter start included)"
        )
        print(table(all_results, skip))
    if live:
        print()
        print(live_report(live))
    if pages:
        print()
        print(pages)
    if progress.failures:
        print("\nFailures:", file=sys.stderr)
        for failure in progress.failures:
            print(f"- {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
