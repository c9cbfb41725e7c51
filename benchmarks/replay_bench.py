"""The project's replay against backtesting.py and the floor: the same book on all three,
its results compared before any time is.

``make bench-replay`` (this file alone) or ``make bench`` (part of ``benchmarks/run.py``).
For each size of candles (``benchmarks.data``) and each repetition it runs, each as a
whole process timed from spawn to exit (``benchmarks.measure``):

- the project: ``load_candles`` of the CSV, then ``manage.py replay`` into a new book,
  on a fresh copy of a migrated database (PostgreSQL, and SQLite unless skipped);
- backtesting.py running the same book (``benchmarks/bt_strategy.py``, its own
  virtualenv ``var/bench-venv``);
- the floor, the same book as one plain loop (``benchmarks/floor.py``).

Same rules on all three: the EMA crossover of the benchmark's strategy configuration,
the default guards (one position at a time, no signal for 240 minutes after a
stop-out), the project's fill model (next open, stop before target, gaps at the open,
exit at the close of the 48th candle held, 5 bps of slippage against every fill, 0.26 %
fees per side, a 1,000 notional per trade) and a balance that never binds.

Before a ratio is printed, the closed trades and their total P&L are compared: the
trade counts must be equal, the floor's P&L equal to the project's within
``FLOOR_TOLERANCE`` (the same floats, summed in another order) and backtesting.py's
within ``bt_tolerance(trades)`` (it trades whole units of 2**-27 BTC, so each trade's
quantity falls short of the project's by less than one unit: under 1e-6 of the
notional at these prices, a P&L error far below a hundredth of a cent a trade; a
missing, extra or differently closed trade moves the total by at least its fees,
about 5). A disagreement is printed loudly and that size's ratios are not claimed.

The order alternates: backtesting.py runs first in even repetitions and last in odd
ones, so a machine that slows down or speeds up during a run does not favour one side.
Each time is the median of the repetitions, with its range; each ratio is the median of
the per-repetition ratios (project over backtesting.py measured back to back), with
their range. A goal is "met" when every repetition's ratio meets it, "missed" when none
does, and "inside the noise" otherwise.

Knobs (environment): ``BENCH_SIZES`` (default ``9k,90k``; ``900k`` is 100 copies of the
month), ``BENCH_REPEAT`` (default 5), ``BENCH_SKIP`` (``pg, sqlite, bt, floor``),
``BENCH_CHECKOUT`` (the app of another checkout, see ``benchmarks/project.py``).
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.data import Series, Source, prepare
from benchmarks.databases import (
    app_env,
    database_name,
    postgres_database,
    postgres_version,
    sqlite_database,
)
from benchmarks.measure import ROOT, ChildFailedError, Measurement, measure, run
from benchmarks.project import CHECKOUT, PYTHON, ReplayResult, measure_replay, migrate

BENCH_PYTHON = ROOT / "var" / "bench-venv" / "bin" / "python"
FLOOR = ROOT / "benchmarks" / "floor.py"
BT_STRATEGY = ROOT / "benchmarks" / "bt_strategy.py"
PARTS = ("pg", "sqlite", "bt", "floor")
# The app's top-level packages (what ``manage.py`` imports from the checkout).
APP_PACKAGES = ("config", "markets", "signals", "shadow", "analytics", "alerts", "benchmarks")
DATABASES = {"pg": "PostgreSQL", "sqlite": "SQLite"}
# Issue 14's goals: the replay at most as slow as backtesting.py; CSV to book (load_candles
# + replay) at most 1.5 times backtesting.py reading the same CSV and running.
REPLAY_GOAL = 1.0
CSV_GOAL = 1.5
# Quote currency. The floor computes the project's floats in the project's order; only
# the total is summed in another order.
FLOOR_TOLERANCE = 0.01

T = TypeVar("T")


def bt_tolerance(trades: int) -> float:
    """How far backtesting.py's total P&L may be from the project's: 0.01 plus 1e-4 a
    trade (its whole units shift a trade by well under 1e-4; see the module's doc)."""
    return 0.01 + 1e-4 * trades


@dataclass(frozen=True)
class Outcome:
    trades: int
    pnl: float


@dataclass
class SizeResults:
    """Every repetition measured on one size (lists in repetition order; a failed
    measurement is left out)."""

    series: Series
    floor: list[Measurement] = field(default_factory=list)
    bt: list[Measurement] = field(default_factory=list)
    replays: dict[str, list[ReplayResult]] = field(default_factory=dict)


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


def peer_outcome(stdout: str) -> Outcome | None:
    """``trades: N`` and ``pnl: X`` as the peers print them."""
    trades = re.search(r"^trades: (\d+)$", stdout, re.MULTILINE)
    pnl = re.search(r"^pnl: (\S+)$", stdout, re.MULTILINE)
    if not (trades and pnl):
        return None
    return Outcome(int(trades.group(1)), float(pnl.group(1)))


def replay_outcome(result: ReplayResult) -> Outcome:
    return Outcome(result.trades, result.pnl)


def describe_rows(counts: dict[str, int | None]) -> str:
    """``signal 92, signaltransition 238, ...`` (``-``: no such table)."""
    return ", ".join(
        f"{table.split('_', 1)[1]} {'-' if rows is None else rows}"
        for table, rows in counts.items()
    )


@dataclass
class Templates:
    """A migrated, empty database per engine, copied for every repetition."""

    postgres: str | None = None
    sqlite: Path | None = None

    def fresh(self, key: str, directory: Path) -> AbstractContextManager[str]:
        if key == "pg":
            return postgres_database(suffix="_run", template=self.postgres)
        return sqlite_database(directory, name="run", template=self.sqlite)


@contextmanager
def templates(databases: Sequence[str], directory: Path) -> Iterator[Templates]:
    """Migrate one empty database per engine in ``databases``; dropped on the way out."""
    made = Templates()
    with (
        postgres_database(suffix="_template") as pg_url,
        sqlite_database(directory, name="template") as sqlite_url,
    ):
        if "pg" in databases:
            migrate(app_env(pg_url))
            made.postgres = database_name(pg_url)
        if "sqlite" in databases:
            migrate(app_env(sqlite_url))
            made.sqlite = Path(sqlite_url.removeprefix("sqlite:///"))
        yield made


def peer_report(m: Measurement) -> str:
    found = peer_outcome(m.stdout)
    said = f"{found.trades:,} trades, P&L {found.pnl:,.4f}" if found else "no outcome printed"
    return f"{m.seconds:.2f} s, {m.peak_mib:.0f} MiB, {said}"


def measure_size(
    series: Series,
    skip: set[str],
    repeat: int,
    progress: Progress,
    made: Templates,
    directory: Path,
) -> SizeResults:
    results = SizeResults(series)
    n = f"{series.candles:,} candles"
    databases = [key for key in DATABASES if key not in skip]
    for key in databases:
        results.replays[key] = []

    def run_bt() -> None:
        m = progress.step(
            f"backtesting.py, {n}",
            lambda: measure([str(BENCH_PYTHON), str(BT_STRATEGY), str(series.path)]),
            peer_report,
        )
        if m:
            results.bt.append(m)

    def run_floor() -> None:
        m = progress.step(
            f"floor (numpy loop), {n}",
            lambda: measure([sys.executable, str(FLOOR), str(series.path)]),
            peer_report,
        )
        if m:
            results.floor.append(m)

    def run_project(key: str) -> None:
        def replay() -> ReplayResult:
            with made.fresh(key, directory) as url:
                return measure_replay(series.path, app_env(url))

        r = progress.step(
            f"project load_candles + replay on {DATABASES[key]}, {n}",
            replay,
            lambda r: (
                f"load {r.load.seconds:.2f} s ({r.load.peak_mib:.0f} MiB), replay "
                f"{r.run.seconds:.2f} s ({r.run.peak_mib:.0f} MiB), {r.trades:,} trades, "
                f"P&L {r.pnl:,.4f}, {r.rows:,} rows ({describe_rows(r.rows_by_table)})"
            ),
        )
        if r:
            results.replays[key].append(r)

    for rep in range(repeat):
        order: list[Callable[[], None]] = []
        if "bt" not in skip:
            order.append(run_bt)
        order += [partial(run_project, key) for key in databases]
        if "floor" not in skip:
            order.append(run_floor)
        if rep % 2:
            order.reverse()
        print(f"  repetition {rep + 1}/{repeat}", flush=True)
        for measure_one in order:
            measure_one()
    return results


# --- the comparison of results -------------------------------------------------------


@dataclass
class Agreement:
    """Whether the sides of one size did the same thing; ``problems`` says what differs."""

    reference: Outcome | None
    problems: list[str]

    @property
    def holds(self) -> bool:
        return self.reference is not None and not self.problems


def same_every_time(
    name: str, outcomes: list[Outcome | None], problems: list[str]
) -> Outcome | None:
    """The one outcome every repetition of a side gave (each side is deterministic)."""
    if not outcomes:
        return None
    if any(o is None for o in outcomes):
        problems.append(f"{name} printed no trade count or P&L")
        return None
    first = outcomes[0]
    assert first is not None
    if any(o != first for o in outcomes):
        problems.append(f"{name} gave different results in different repetitions: {outcomes}")
    return first


def agreement(results: SizeResults) -> Agreement:
    problems: list[str] = []
    sides: list[tuple[str, Outcome | None, float]] = []
    for key, runs in results.replays.items():
        found = same_every_time(
            f"project ({DATABASES[key]})", [replay_outcome(r) for r in runs], problems
        )
        sides.append((f"project ({DATABASES[key]})", found, FLOOR_TOLERANCE))
    reference = next((o for _, o, _ in sides if o is not None), None)
    if results.bt:
        found = same_every_time(
            "backtesting.py", [peer_outcome(m.stdout) for m in results.bt], problems
        )
        tolerance = bt_tolerance(reference.trades if reference else 0)
        sides.append(("backtesting.py", found, tolerance))
    if results.floor:
        found = same_every_time("floor", [peer_outcome(m.stdout) for m in results.floor], problems)
        sides.append(("floor", found, FLOOR_TOLERANCE))
    if reference is None:
        return Agreement(None, problems or ["no project result to compare with"])
    for name, found, tolerance in sides:
        if found is None:
            continue
        if found.trades != reference.trades:
            problems.append(f"{name}: {found.trades:,} trades, the project {reference.trades:,}")
        elif abs(found.pnl - reference.pnl) > tolerance:
            problems.append(
                f"{name}: P&L {found.pnl:,.4f}, the project {reference.pnl:,.4f} "
                f"(differ by {found.pnl - reference.pnl:+,.4f}, tolerance {tolerance:,.4f})"
            )
    return Agreement(reference, problems)


# --- the tables ------------------------------------------------------------------------


def median_range(values: Sequence[float], spec: str) -> str:
    """``median [min-max]`` (just the value for one)."""
    if not values:
        return "-"
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{middle:{spec}}"
    return f"{middle:{spec}} [{min(values):{spec}}-{max(values):{spec}}]"


def verdict(ratios: Sequence[float], goal: float) -> str:
    """Against ``goal`` (at most): met in every repetition, in none, or inside the noise."""
    if not ratios:
        return "-"
    if max(ratios) <= goal:
        return "met"
    if min(ratios) > goal:
        return "missed"
    return "inside the noise"


def pair_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Per repetition, measured back to back (only where both sides succeeded in order)."""
    return [a / b for a, b in zip(numerators, denominators, strict=False) if b > 0]


def aligned(rows: list[tuple[str, ...]], left: set[int]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(
            text.ljust(width) if i in left else text.rjust(width)
            for i, (text, width) in enumerate(zip(row, widths, strict=True))
        )

    lines = [line(row) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def outcome_table(all_results: list[SizeResults], checks: list[Agreement]) -> str:
    rows: list[tuple[str, ...]] = [
        ("candles", "side", "closed trades", "total P&L", "- project", "tolerance", "agree")
    ]
    for results, check in zip(all_results, checks, strict=True):
        reference = check.reference
        sides: list[tuple[str, Outcome | None, float | None]] = [
            (f"project, {DATABASES[key]}", replay_outcome(runs[0]) if runs else None, None)
            for key, runs in results.replays.items()
        ]
        if results.bt:
            bt_slack = bt_tolerance(reference.trades if reference else 0)
            sides.append(("backtesting.py", peer_outcome(results.bt[0].stdout), bt_slack))
        if results.floor:
            sides.append(("floor", peer_outcome(results.floor[0].stdout), FLOOR_TOLERANCE))
        for name, found, tolerance in sides:
            rows.append(
                (
                    f"{results.series.candles:,}",
                    name,
                    f"{found.trades:,}" if found else "?",
                    f"{found.pnl:,.4f}" if found else "?",
                    f"{found.pnl - reference.pnl:+.4f}" if found and reference else "-",
                    f"{tolerance:.4f}" if tolerance is not None else "-",
                    "yes" if check.holds else "NO",
                )
            )
    return aligned(rows, {1, 6})


TIME_HEADER = (
    "candles", "db", "replay s", "bt.py s", "floor s", "replay/bt.py", "goal <=1.0",
    "load+replay s", "csv/bt.py", "goal <=1.5", "replay/floor", "MiB replay", "MiB load",
    "MiB bt.py", "MiB floor", "rows/s",
)  # fmt: skip


def time_rows(results: SizeResults, check: Agreement) -> list[tuple[str, ...]]:
    bt_s = [m.seconds for m in results.bt]
    floor_s = [m.seconds for m in results.floor]
    rows: list[tuple[str, ...]] = []
    for key, runs in results.replays.items():
        replay_s = [r.run.seconds for r in runs]
        csv_s = [r.csv_to_book_seconds for r in runs]
        to_bt = pair_ratios(replay_s, bt_s)
        csv_to_bt = pair_ratios(csv_s, bt_s)
        to_floor = pair_ratios(replay_s, floor_s)
        claimed = check.holds
        not_claimed = "not claimed"
        rows.append(
            (
                f"{results.series.candles:,}",
                DATABASES[key],
                median_range(replay_s, ".2f"),
                median_range(bt_s, ".2f"),
                median_range(floor_s, ".2f"),
                median_range(to_bt, ".2f") if claimed else not_claimed,
                verdict(to_bt, REPLAY_GOAL) if claimed else "MISMATCH",
                median_range(csv_s, ".2f"),
                median_range(csv_to_bt, ".2f") if claimed else not_claimed,
                verdict(csv_to_bt, CSV_GOAL) if claimed else "MISMATCH",
                median_range(to_floor, ".1f") if claimed else not_claimed,
                median_range([r.run.peak_mib for r in runs], ".0f"),
                median_range([r.load.peak_mib for r in runs], ".0f"),
                median_range([m.peak_mib for m in results.bt], ".0f"),
                median_range([m.peak_mib for m in results.floor], ".0f"),
                median_range([r.rows_per_second for r in runs], ",.0f"),
            )
        )
    if not rows:  # no project side: the peers alone
        rows.append(
            (
                f"{results.series.candles:,}", "-", "-", median_range(bt_s, ".2f"),
                median_range(floor_s, ".2f"), *["-"] * 8,
                median_range([m.peak_mib for m in results.bt], ".0f"),
                median_range([m.peak_mib for m in results.floor], ".0f"), "-",
            )
        )  # fmt: skip
    return rows


CPU_HEADER = ("candles", "db", "load CPU s", "replay CPU s", "bt.py CPU s", "floor CPU s")


def cpu_rows(results: SizeResults) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for key, runs in results.replays.items():
        rows.append(
            (
                f"{results.series.candles:,}",
                DATABASES[key],
                median_range([r.load.cpu_seconds for r in runs], ".2f"),
                median_range([r.run.cpu_seconds for r in runs], ".2f"),
                median_range([m.cpu_seconds for m in results.bt], ".2f"),
                median_range([m.cpu_seconds for m in results.floor], ".2f"),
            )
        )
    return rows


def report(all_results: list[SizeResults], real: bool, repeat: int) -> str:
    checks = [agreement(results) for results in all_results]
    lines = [
        f"Replay of one book on {'real' if real else 'SYNTHETIC'} candles, the same rules on "
        "every side (strategy, guards with the cooldown, fills with slippage and fees).",
        "",
        "Results, compared before any time:",
        outcome_table(all_results, checks),
    ]
    for results, check in zip(all_results, checks, strict=True):
        if not check.holds:
            lines += [
                "",
                f"!!! MISMATCH at {results.series.candles:,} candles: the sides did not do "
                "the same thing, so no time ratio is claimed for this size:",
                *(f"!!!   {problem}" for problem in check.problems),
            ]
    lines += [
        "",
        f"Time and peak memory of whole processes (interpreter start included), median "
        f"[min-max] of {repeat} repetitions; ratios per repetition, measured back to back:",
        aligned(
            [TIME_HEADER]
            + [row for r, c in zip(all_results, checks, strict=True) for row in time_rows(r, c)],
            {1, 6, 9},
        ),
        "",
        "CPU time of the same processes (user + system, the process's own: the database "
        "server's work for the project is not in it), median [min-max]; a hint of how busy "
        "the machine was, not a ratio to claim:",
        aligned([CPU_HEADER] + [row for r in all_results for row in cpu_rows(r)], {1}),
    ]
    return "\n".join(lines)


def all_agree(all_results: list[SizeResults]) -> bool:
    return all(agreement(results).holds for results in all_results)


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
    load = os.getloadavg()
    return (
        f"machine: {len(os.sched_getaffinity(0))} CPUs (nproc), "
        f"{model.group(1).strip() if model else platform.processor() or 'CPU unknown'}, {ram}; "
        f"Python {platform.python_version()}, {database}; load average at start "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )


def compile_bytecode(python: Path, checkout: Path) -> str:
    """Compile the app's modules and its virtualenv's to bytecode, untimed, as pip does
    when it installs (backtesting.py's virtualenv has it that way). Why: the app's
    virtualenv is installed by uv, which compiles nothing, and with
    PYTHONDONTWRITEBYTECODE set (this machine sets it) every process would compile
    Django, Celery and the app from source at every start, seconds of CPU no installed
    copy pays after its first run."""
    site = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    ).strip()
    app = [str(checkout / name) for name in APP_PACKAGES if (checkout / name).is_dir()]
    app.append(str(ROOT / "benchmarks"))  # the peers' scripts import from here
    run([str(python), "-m", "compileall", "-q", "-j", "0", site, *app, str(checkout / "manage.py")])
    return f"bytecode compiled for {site} and the app in {checkout}"


def run_replays(
    all_series: list[Series],
    skip: set[str],
    repeat: int,
    directory: Path,
    progress: Progress,
    *,
    real: bool,
) -> list[SizeResults]:
    """Measure every size; each size's tables are printed as soon as it is done (a long
    size that is stopped leaves the shorter ones' results behind)."""
    databases = [key for key in DATABASES if key not in skip]
    print(compile_bytecode(Path(PYTHON), CHECKOUT), flush=True)
    all_results = []
    with templates(databases, directory) as made:
        for series in all_series:
            results = measure_size(series, skip, repeat, progress, made, directory)
            all_results.append(results)
            if len(all_series) > 1:
                print(f"\n{series.candles:,} candles done:\n{report([results], real, repeat)}\n")
    return all_results


def steps(all_series: list[Series], skip: set[str], repeat: int) -> int:
    """How many measurements ``run_replays`` makes."""
    return len(all_series) * repeat * len(set(PARTS) - skip)


def main() -> None:
    sizes = env_list("BENCH_SIZES", "9k,90k")
    skip = set(env_list("BENCH_SKIP", ""))
    if unknown := skip - set(PARTS):
        sys.exit(
            f"BENCH_SKIP: unknown part(s) {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}"
        )
    repeat = int(os.environ.get("BENCH_REPEAT", "5"))
    if "bt" not in skip and not BENCH_PYTHON.exists():
        sys.exit(f"{BENCH_PYTHON} is missing: run `make bench-replay`, which creates it")
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as name:
        directory = Path(name)
        source = Source()
        try:
            all_series = prepare(source, sizes, directory)
        except ValueError as error:
            sys.exit(f"BENCH_SIZES: {error}")
        print(f"data: {source.description}; {source.base_candles:,} candles a month", flush=True)
        progress = Progress(total=steps(all_series, skip, repeat))
        all_results = run_replays(all_series, skip, repeat, directory, progress, real=source.real)
    print()
    print(report(all_results, source.real, repeat))
    if progress.failures:
        print("\nFailures:", file=sys.stderr)
        for failure in progress.failures:
            print(f"- {failure}", file=sys.stderr)
        sys.exit(1)
    if not all_agree(all_results):
        sys.exit("The sides disagree (MISMATCH above): no ratio of theirs is claimed.")


if __name__ == "__main__":
    main()
