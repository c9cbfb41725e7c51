"""Time one child process as a whole and read its peak memory.

Wall time runs from just before the process is spawned to its exit, so interpreter
start and imports are included: that is what a user waits for. Peak memory is the
child's own ``ru_maxrss`` from ``os.wait4`` on its pid (KiB on Linux), its CPU time the
same call's user plus system time (the process's own: work it hands to a database
server is not in it).

Linux carries a process's memory high-water mark across ``fork`` and ``exec``: a child
spawned straight from the benchmark, which holds 90,000 candles in memory, would
report at least the benchmark's own peak. So the child is spawned by a small launcher
(this file run as a script) that starts it, waits for it with ``os.wait4`` and writes
its time and peak memory to a file; the launcher's own start-up is not timed, and its
own footprint (about 10 MiB) is the lowest peak a child can show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ChildFailedError(RuntimeError):
    """A measured or helper process exited non-zero; the message carries its output's tail."""


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_mib: float
    stdout: str
    cpu_seconds: float = 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (``/proc/PID/stat``): another
    process's, a worker's or a PostgreSQL backend's on this machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def measure(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path = ROOT
) -> Measurement:
    """Run ``argv`` to completion through the launcher; its wall time, peak resident
    memory and stdout.

    Output goes to temporary files rather than pipes, so a chatty child can never block
    on a full pipe while it is being timed. Raises ``ChildFailedError`` on a non-zero exit.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(suffix=".json") as report,
    ):
        launcher = [sys.executable, __file__, report.name, "--", *argv]
        done = subprocess.run(launcher, stdout=out, stderr=err, env=env, cwd=cwd)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
        if done.returncode != 0:
            raise ChildFailedError(
                f"{' '.join(argv)} exited with {done.returncode}:\n{_tail(stdout + stderr)}"
            )
        result = json.loads(Path(report.name).read_text())
    return Measurement(
        seconds=result["seconds"],
        peak_mib=result["maxrss_kib"] / 1024,
        stdout=stdout,
        cpu_seconds=result.get("cpu_seconds", 0.0),
    )


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path = ROOT) -> str:
    """Run an untimed helper command; its stdout, or ``ChildFailedError`` with its output."""
    done = subprocess.run(list(argv), capture_output=True, text=True, env=env, cwd=cwd)
    if done.returncode != 0:
        raise ChildFailedError(
            f"{' '.join(argv)} exited with {done.returncode}:\n{_tail(done.stdout + done.stderr)}"
        )
    return done.stdout


def launch(report: Path, argv: list[str]) -> int:
    """Run ``argv`` (same stdout, stderr, environment and directory); write its wall time
    and ``ru_maxrss`` to ``report``; return its exit code."""
    started = time.perf_counter()
    child = subprocess.Popen(argv)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    # Reaped here: tell Popen so it never waits for the pid again.
    child.returncode = os.waitstatus_to_exitcode(status)
    report.write_text(
        json.dumps(
            {
                "seconds": seconds,
                "maxrss_kib": usage.ru_maxrss,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
            }
        )
    )
    return child.returncode


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(f"usage: {sys.argv[0]} REPORT.json -- COMMAND [ARG ...]")
    sys.exit(launch(Path(sys.argv[1]), sys.argv[3:]))
