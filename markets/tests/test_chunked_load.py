"""A candle file is streamed and stored chunk by chunk: chunk boundaries lose nothing,
a failure part-way stores nothing, and memory stays bounded (measured in a subprocess)."""

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from markets import services
from markets.models import Candle

pytestmark = [pytest.mark.django_db, pytest.mark.fault]

T0_MS = 1_704_110_400_000  # 2024-01-01 12:00 UTC
T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HEADER = "timestamp_ms,open,high,low,close,volume\n"


def market(exchange: str) -> list[str]:
    return ["--exchange", exchange, "--symbol", "BTC/USD", "--timeframe", "1m"]


def line(i: int, close: str = "2") -> str:
    return f"{T0_MS + i * 60_000},1.{i:04d},3,1,{close},1\n"


# Kept candles in file order, three per chunk with --chunk-rows 3:
#   chunk 1: minutes 0, 1, 2   chunk 2: 6, 3, 8   chunk 3: 9, 10, 11   chunk 4: 12
# - minute 2 ends chunk 1 and its identical duplicate comes right after it (merged);
# - minute 5 is given different values on both sides of the chunk 1/2 boundary (a
#   conflict: neither row stored), and again in chunk 3 (a third row of the conflict);
# - minutes 3-5 are missing between 2 (end of chunk 1) and 6 (start of chunk 2) except
#   for 3, which comes late (out of order, inside chunk 2): the gap is 4-5; with the
#   third minute-5 row and the last row, 3 rows come after a later candle;
# - minute 7 is missing inside chunk 2 (6, 3, 8): a second gap;
# - minute 9 appears in chunk 3 and again as the very last row (merged across chunks).
BOUNDARY_FILE = (
    HEADER
    + line(0)
    + line(1)
    + line(2)
    + line(2)
    + line(5, close="2.1")
    + line(5, close="2.2")
    + line(6)
    + line(3)
    + line(8)
    + line(9)
    + line(5, close="2.3")
    + line(10)
    + line(11)
    + line(12)
    + line(9)
)


def test_chunk_boundaries_lose_no_duplicate_conflict_gap_or_late_row(tmp_path, caplog):
    path = tmp_path / "boundary.csv"
    path.write_text(BOUNDARY_FILE)
    chunked, whole = StringIO(), StringIO()

    with caplog.at_level(logging.INFO, logger="markets"):
        call_command(
            "load_candles", str(path), *market("chunked"), "--chunk-rows", "3", stdout=chunked
        )
    call_command("load_candles", str(path), *market("whole"), stdout=whole)

    output = chunked.getvalue()
    assert "in 4 chunk(s) of up to 3 rows" in caplog.text
    assert "Read 15 row(s). Loaded 10 candles (10 new, 0 already stored)" in output
    assert "Merged 2 duplicate timestamp(s)" in output
    assert "Conflicts: 1 timestamp(s) given different values by different rows" in output
    assert "  2024-01-01 12:05: line 6 (" in output
    assert "vs line 7 (" in output and "vs line 12 (" in output
    assert "Out of order: 3 row(s) came after a later candle in the file" in output
    assert "Gaps: 2 (3 missing candle(s)):" in output
    assert "  2024-01-01 12:04 to 2024-01-01 12:05 (2 missing)" in output
    assert "  2024-01-01 12:07 to 2024-01-01 12:07 (1 missing)" in output
    stored = Candle.objects.filter(exchange="chunked").order_by("open_time")
    assert list(stored.values_list("open_time", flat=True)) == [
        T0 + i * MINUTE for i in (0, 1, 2, 3, 6, 8, 9, 10, 11, 12)
    ]
    # The same report whatever the chunk size.
    assert output.replace("chunked", "whole") == whole.getvalue()


def test_a_failure_part_way_through_the_file_stores_nothing(tmp_path, monkeypatch):
    path = tmp_path / "many.csv"
    path.write_text(HEADER + "".join(line(i) for i in range(10)))
    real_upsert = services.candles_upsert
    calls = []

    def failing_upsert(**kwargs):
        calls.append(len(kwargs["bars"]))
        if len(calls) == 3:
            raise ValueError("close 1E+40 is too large to store")
        return real_upsert(**kwargs)

    monkeypatch.setattr(services, "candles_upsert", failing_upsert)

    with pytest.raises(CommandError, match="too large to store"):
        call_command(
            "load_candles", str(path), *market("x"), "--chunk-rows", "3", stdout=StringIO()
        )

    assert calls == [3, 3, 3]
    assert Candle.objects.count() == 0, "the first two chunks were rolled back with the third"


def test_a_file_that_changes_between_the_passes_stores_nothing(tmp_path, monkeypatch):
    path = tmp_path / "moving.csv"
    path.write_text(HEADER + "".join(line(i) for i in range(5)))
    real_decide = services.CandleSorter.decide

    def decide_then_edit(self):
        real_decide(self)
        path.write_text(HEADER + "".join(line(i) for i in range(1, 6)))

    monkeypatch.setattr(services.CandleSorter, "decide", decide_then_edit)

    with pytest.raises(CommandError, match="the file changed while it was being loaded"):
        call_command("load_candles", str(path), *market("x"), stdout=StringIO())
    assert Candle.objects.count() == 0


def write_rows(path: Path, count: int) -> None:
    with path.open("w") as out:
        out.write(HEADER)
        for i in range(count):
            price = 30000 + (i * 7919) % 1000
            # The volume makes every candle unique (a periodic series would be spliced data).
            out.write(
                f"{T0_MS + i * 60_000},{price},{price + 5},{price - 5},{price + 1},1.{i:06d}\n"
            )


# The whole-file approach (every row's bar and model instance held at once) peaked at
# 386 MiB for 300,000 rows; streaming peaked at 157 (the interpreter alone takes 133).
PEAK_BOUND_MIB = 250
ROWS = 300_000


@pytest.mark.django_db(transaction=True)
def test_loading_300k_rows_keeps_peak_memory_bounded(tmp_path):
    path = tmp_path / "big.csv"
    write_rows(path, ROWS)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    if connection.vendor != "postgresql":
        pytest.skip("measured against PostgreSQL")
    # The child reports its own peak as it exits: VmHWM of its address space. (Not
    # ru_maxrss: Linux carries the parent's resident size at the fork into the child's
    # figure, and this test process may be large.)
    wrapper = (
        "import re, runpy, sys\n"
        "sys.argv = sys.argv[1:]\n"
        "try:\n"
        "    runpy.run_path('manage.py', run_name='__main__')\n"
        "finally:\n"
        "    status = open('/proc/self/status').read()\n"
        "    peak = re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)\n"
        "    sys.stderr.write(f'PEAK_KB={peak}\\n')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, "manage.py", "load_candles", str(path), *market("memory")],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    peak_kb = [line for line in done.stderr.splitlines() if line.startswith("PEAK_KB=")]
    assert peak_kb, done.stderr[-2000:]
    peak_mib = int(peak_kb[-1].split("=")[1]) / 1024

    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Read {ROWS} row(s). Loaded {ROWS} candles ({ROWS} new" in done.stdout
    assert Candle.objects.filter(exchange="memory").count() == ROWS
    assert peak_mib < PEAK_BOUND_MIB, f"peak {peak_mib:.0f} MiB"
