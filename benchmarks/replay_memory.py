"""Peak memory of ``manage.py replay`` against the length of the history.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/replay_memory.py 90070 900700 [--checkout DIR ...]

For each count of candles (1m, ending 2026-01-01: the benchmark's 5m source, the real
FTX month or its random walk, tiled; see ``candles``) it makes a fresh database
``<name>_replay_<count>`` on the server of ``DATABASE_URL``, writes the candles, configures
the benchmark's strategy and the default guards, then runs ``manage.py
replay`` of each checkout (default: this one; pass an older checkout to compare) as a
child process, into a new book and then again replacing that book, that reports its own
peak resident memory (``VmHWM`` of
``/proc/self/status`` as it exits, the measure of the chunked-load memory test) and its
wall time. Prints one line per replay.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.data import Candle, Source  # noqa: E402
from benchmarks.project import BOOK, EXCHANGE, SYMBOL  # noqa: E402

TIMEFRAME = "1m"  # 9,007,000 candles of 5m would reach back before 2009 (out of range)
END = datetime(2026, 1, 1, tzinfo=UTC)
RESCALE = 10

# The child runs manage.py and writes its peak as it exits (not ru_maxrss: Linux carries
# the parent's resident size at the fork into the child's figure).
PEAK_WRAPPER = (
    "import re, runpy, sys\n"
    "sys.argv = sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_path('manage.py', run_name='__main__')\n"
    "finally:\n"
    "    status = open('/proc/self/status').read()\n"
    "    peak = re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)\n"
    "    sys.stderr.write(f'PEAK_KB={peak}\\n')\n"
)


def database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def fresh_database(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(database_url(base, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def manage(checkout: Path, env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """Run ``manage.py ARGS`` in ``checkout``; wall seconds, peak MiB and stdout."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK_WRAPPER, "manage.py", *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    peaks = re.findall(r"PEAK_KB=(\d+)", done.stderr)
    return seconds, int(peaks[-1]) / 1024, done.stdout


def stored(base: str, name: str) -> bool:
    """Whether the database ``name`` exists and holds candles."""
    import psycopg

    try:
        with psycopg.connect(database_url(base, name)) as conn:
            row = conn.execute("SELECT count(*) FROM markets_candle").fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0])


def candles(base: list[Candle], count: int) -> Iterator[tuple[object, ...]]:
    """``count`` 1-minute candle rows ending at ``END``: the benchmark's 5m series taken as
    1m candles and tiled, each copy scaled to open at the previous copy's close, the scale
    starting over every ``RESCALE`` copies (compounded over thousands of copies, one
    month's move would take the price out of any column's range)."""
    growth = base[-1].close / base[0].open
    start = END - timedelta(minutes=count)
    for index in range(count):
        copy, at = divmod(index, len(base))
        c, scale = base[at], growth ** (copy % RESCALE)
        yield (
            start + timedelta(minutes=index),
            *(f"{value * scale:.6f}" for value in (c.open, c.high, c.low, c.close)),
            f"{c.volume:.6f}",
        )


def load(count: int, source: Source, base: str, name: str, env: dict[str, str]) -> None:
    """A fresh database ``name`` with ``count`` candles (written through ``COPY``: this
    measures the replay, docs/candle-data.md measures ``load_candles``) and configured."""
    import psycopg

    fresh_database(base, name)
    manage(ROOT, env, "migrate", "--no-input", "-v", "0")
    started = time.perf_counter()
    with psycopg.connect(database_url(base, name)) as conn, conn.cursor() as cursor:
        columns = "exchange, symbol, timeframe, open_time, open, high, low, close, volume, source, created_at"
        with cursor.copy(f"COPY markets_candle ({columns}) FROM STDIN") as copy:
            now = datetime.now(UTC)
            for row in candles(source.candles(source.base_candles), count):
                copy.write_row((EXCHANGE, SYMBOL, TIMEFRAME, *row, "file", now))
    print(
        f"{count:>10,} candles  written through COPY in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/appdb.py"),
            "configure",
            EXCHANGE,
            TIMEFRAME,
            SYMBOL,
        ],
        env=env,
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("counts", nargs="+", type=int)
    parser.add_argument("--checkout", action="append", type=Path, dest="checkouts")
    parser.add_argument(
        "--keep-data", action="store_true", help="reuse a database of a count that holds candles"
    )
    options = parser.parse_args()
    checkouts = options.checkouts or [ROOT]
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    prefix = urlsplit(base).path.strip("/") or "bench"
    source = Source()
    print(f"candles: {source.description}", flush=True)
    for count in options.counts:
        name = f"{prefix}_replay_{count}"
        env = {**os.environ, "DATABASE_URL": database_url(base, name)}
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
        if not (options.keep_data and stored(base, name)):
            load(count, source, base, name, env)
        for index, checkout in enumerate(checkouts):
            # Into a book of its own, then again into the same book, which it replaces.
            for run in ("new book", "replacing it"):
                seconds, peak, stdout = manage(
                    checkout, env, "replay", "--exchange", EXCHANGE, "--symbol", SYMBOL,
                    "--timeframe", TIMEFRAME, "--book", f"{BOOK} {index}", "--no-progress",
                )  # fmt: skip
                written = re.search(r"([\d,]+) rows written", stdout)
                print(
                    f"{count:>10,} candles  replay ({checkout}, {run}) {seconds:7.1f} s, "
                    f"peak {peak:.0f} MiB, {written.group(1) if written else '?'} rows written",
                    flush=True,
                )


if __name__ == "__main__":
    main()
