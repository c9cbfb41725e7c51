"""The trader's pages on a large book: server time, hand-written SQL, and load over HTTP.

``python benchmarks/pages.py`` (``make bench`` runs it as its "pages" part):

1. A PostgreSQL database (``BENCH_PAGES_DATABASE_URL``, default ``bench_pages`` on the
   server of ``BENCH_POSTGRES_URL``) holding one book of ``BENCH_PAGES_SIGNALS`` signals
   (default 1,000,000) from ``benchmarks.pages_data``. It is kept between runs and
   generated again only when the generator's version, the size or the seed changes
   (the row in ``bench_pages_marker`` says what is there).
2. For every registered page, whatever its ``build()`` does today: the COLD server time
   of its JSON twin and of its HTML view through Django's test client, the page cache
   bypassed (``analytics.page_cache.bypass``): median of ``BENCH_PAGES_RUNS`` runs
   (default 5) after a first one, and the number of queries; beside it the time of the
   hand-written SQL that gives the same figures (``benchmarks.pages_sql``), the ratio
   (cold JSON / SQL), and whether the page's JSON shows the same figures to the cent
   (``benchmarks.pages_match``). Then the WARM time: the JSON twin with the cache on,
   once to fill it, then the median of ``BENCH_PAGES_RUNS`` hits.
3. The site served by gunicorn (``BENCH_PAGES_WORKERS`` sync workers, default 4, see
   docs/performance.md) with production settings (``DEBUG`` off, static files collected,
   the TLS proxy's ``X-Forwarded-Proto`` header, the page cache in Redis at
   ``BENCH_PAGES_CACHE_URL``, default ``redis://127.0.0.1:6379/6``, emptied first),
   ``BENCH_PAGES_CLIENTS`` concurrent clients (default 10) logged in by a session
   cookie, ``BENCH_PAGES_REQUESTS`` requests of the HTML page (default 100, at most
   ``BENCH_PAGES_LOAD_SECONDS`` seconds per page, default 120): p50 and p95 per page,
   what users get with the cache on, after ``2 x workers`` requests per page that are
   not measured (a worker's first request of a page compiles its templates). The
   in-process warm measurement has filled the cache, so this is the steady state
   between two writes of the book; the first request after a write costs the cold time. ``BENCH_PAGES_SKIP_LOAD=1`` leaves this
   part out.

``BENCH_PAGES_ONLY`` (comma list of page names) measures only those pages.

Besides (issue 14):

- The book's rollups are built by ``shadow.rollups.rebuild`` when it is generated
  (``benchmarks.pages_data``); the seconds it took are kept in the marker and printed.
- **Floors**: for the pages that read the rollups (``pages_sql.ROLLUP_FIGURES``), a bare
  read of those rollups by hand beside the raw-row SQL, its figures checked against the
  raw SQL's; a page reading rollups is judged against the rollup read (<= 3x), another
  against the raw SQL (<= 1.5x).
- **The first request after a live write**: after the cold and warm measurements, for
  each page, ``BENCH_PAGES_WRITE_ROUNDS`` rounds (default 3) of a live write
  (``live_write``: the revision bumped and the last day's rollups refreshed, in one
  transaction as ``shadow.live`` does, then no cache left) followed by the JSON twin's
  request, and the same for the HTML view: the medians, against 300 ms.
- **The live book as traders use it**: after each page's load test, the same load again
  while a thread writes the book every ``BENCH_PAGES_WRITE_SECONDS`` (default 5; 0 leaves
  it out) as ``live_write`` does, without clearing the cache (the new revision is what
  makes cached pages miss), for ``BENCH_PAGES_LIVE_SECONDS`` (default 30) whatever the
  number of requests: p50/p95 of what the clients got, against p95 < 300 ms.

Three tables at the end. Goals: JSON/SQL <= 1.5 (<= 3x the rollup read for a page that
reads rollups), p95 < 300 ms, and the first request after a live write <= 300 ms.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from benchmarks.databases import ADMIN_URL  # noqa: E402

SEED = 7
GOAL_RATIO = 1.5
GOAL_P95_MS = 300.0
GOAL_FIRST_MS = 300.0  # the first request of a page after a live write (issue 14)
GOAL_ROLLUP_RATIO = 3.0  # a page reading rollups, against a bare read of them
MARKER = "bench_pages_marker"
MARKER_COLUMNS = (
    "version", "signals", "seed", "book_id", "seconds", "rollup_seconds", "analyse_seconds",
    "rollup_rows",
)  # fmt: skip
STATIC_ROOT = ROOT / "var" / "bench-static"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").replace("_", "").replace(",", "")
    try:
        return int(raw) if raw else default
    except ValueError:
        sys.exit(f"{name} must be a whole number, not {os.environ[name]!r}")


def _database_url() -> str:
    if url := os.environ.get("BENCH_PAGES_DATABASE_URL"):
        return url
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path="/bench_pages"))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def production_env(database_url: str) -> dict[str, str]:
    """The settings ``make web`` runs with in production, on the benchmark database."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(40),
        "STATIC_ROOT": str(STATIC_ROOT),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CACHE_URL": os.environ.get("BENCH_PAGES_CACHE_URL") or "redis://127.0.0.1:6379/6",
        # As the web unit runs (deploy/systemd/signal-pipeline-web.service).
        "DATABASE_CONN_MAX_AGE": os.environ.get("DATABASE_CONN_MAX_AGE", "60"),
    }


# --- the database ---------------------------------------------------------------------


def _marker(url: str) -> dict[str, Any] | None:
    try:
        with psycopg.connect(url) as connection:
            row = connection.execute(
                f"SELECT version, signals, seed, book_id, seconds, rollup_seconds, "
                f"analyse_seconds, rollup_rows FROM {MARKER} LIMIT 1"
            ).fetchone()
    except psycopg.Error:
        return None
    if row is None:
        return None
    return dict(zip(MARKER_COLUMNS, row, strict=True))


def _recreate(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def prepare_database(url: str, signals: int, env: dict[str, str]) -> bool:
    """Make ``url`` hold the benchmark book of ``signals`` signals; ``True`` when it had to
    be (re)generated. Migrations always run, so new indexes reach a kept database."""
    from benchmarks.pages_data import VERSION

    wanted = {"version": VERSION, "signals": signals, "seed": SEED}
    found = _marker(url)
    fresh = found is None or any(found[key] != value for key, value in wanted.items())
    if fresh:
        log(f"pages: generating {signals:,} signals into a new database (generator v{VERSION})")
        _recreate(url)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], env=env, check=True)
    return fresh


def generate_book(url: str, signals: int) -> None:
    """Generate inside this (Django) process and leave the marker; FK checks are skipped
    for the load (the generator writes consistent keys) when the role may do so."""
    from django.db import connection, transaction

    from benchmarks.pages_data import VERSION, describe, generate

    started = time.perf_counter()
    with transaction.atomic():
        with connection.cursor() as cursor:
            try:
                with transaction.atomic():
                    cursor.execute("SET LOCAL session_replication_role = replica")
            except Exception:  # not a superuser: keep the checks, slower commit
                pass
        generated = generate(signals=signals, seed=SEED)
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE {MARKER} (version int, signals int, seed int, book_id bigint, "
                "seconds float, rollup_seconds float, analyse_seconds float, rollup_rows int, "
                "generated_at timestamptz default now())"
            )
            cursor.execute(
                f"INSERT INTO {MARKER} (version, signals, seed, book_id, seconds, "
                "rollup_seconds, analyse_seconds, rollup_rows) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    VERSION,
                    signals,
                    SEED,
                    generated.book_id,
                    time.perf_counter() - started,
                    generated.rollup_seconds,
                    generated.analyse_seconds,
                    generated.rollup_rows,
                ],
            )
    log(f"pages: wrote {describe(generated)} in {time.perf_counter() - started:.0f} s")
    log(
        f"pages: rollups rebuilt (shadow.rollups.rebuild, {generated.rollup_rows:,} rows) "
        f"in {generated.rollup_seconds:.1f} s, after ANALYZE {generated.analyse_seconds:.1f} s"
    )
    with psycopg.connect(url, autocommit=True) as raw:
        raw.execute("VACUUM ANALYZE")
    log(f"pages: generated and analysed in {time.perf_counter() - started:.0f} s")


# --- server time and SQL --------------------------------------------------------------


@dataclass
class PageResult:
    name: str
    title: str
    queries: int | None = None
    json_ms: float | None = None
    html_ms: float | None = None
    warm_ms: float | None = None
    sql_ms: float | None = None
    sql_note: str = ""
    figures: str = "-"
    rollup_ms: float | None = None  # a bare read of the rollups the page reads
    rollup_figures: str = "-"
    p50_ms: float | None = None
    p95_ms: float | None = None
    requests: int = 0
    errors: int = 0
    # The same load while the book is written every BENCH_PAGES_WRITE_SECONDS.
    live_p50_ms: float | None = None
    live_p95_ms: float | None = None
    live_requests: int = 0
    live_errors: int = 0
    live_writes: int = 0
    notes: list[str] = field(default_factory=list)


def _median_ms(action: Callable[[], object], runs: int, *, warm_up: bool = True) -> float:
    if warm_up:
        action()  # warm: caches, plans, imports
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def bench_user() -> Any:
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(
        username="bench-pages", defaults={"is_staff": True, "is_superuser": True}
    )
    return user


def measure_pages(
    book_id: int, runs: int, only: set[str] | None = None
) -> tuple[list[PageResult], str]:
    """Cold server time of each page (JSON twin and HTML), its SQL's, the figures compared,
    and the warm time (cache on); returns the results and the session cookie the load
    test logs in with."""
    from django.conf import settings
    from django.test import Client
    from django.urls import reverse

    from analytics.filters import book_clock
    from analytics.page_cache import bypass
    from analytics.pages import PAGES, load_pages
    from signals.models import Book

    load_pages()
    # A failing page is reported in the table, not as a traceback on the terminal.
    logging.getLogger("django.request").setLevel(logging.CRITICAL)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(bench_user())
    name = settings.SESSION_COOKIE_NAME
    cookie = f"{name}={client.cookies[name].value}"
    clock = book_clock(Book.objects.get(pk=book_id))
    assert clock is not None
    results = []
    for page in sorted(PAGES.values(), key=lambda p: p.order):
        if only and page.name not in only:
            continue
        result = PageResult(page.name, page.title)
        api = f"{reverse('analytics:api-page', args=[page.name])}?book={book_id}"
        html = f"{reverse(f'analytics:{page.name}')}?book={book_id}"
        with bypass():
            ok = _measure_cold(result, client, api, html, runs, book_id, clock)
        if not ok:
            results.append(result)
            continue
        # Warm: the cache on; the first request fills it (and the load test finds it full).
        result.warm_ms = _median_ms(partial(client.get, api, secure=True), runs)
        results.append(result)
        log(
            f"pages: {page.name}: cold JSON {_ms(result.json_ms)} ms, HTML "
            f"{_ms(result.html_ms)} ms, raw SQL {_ms(result.sql_ms)} ms, rollup read "
            f"{_ms(result.rollup_ms)} ms, warm {_ms(result.warm_ms)} ms"
        )
    return results, cookie


def _measure_cold(
    result: PageResult, client: Any, api: str, html: str, runs: int, book_id: int, clock: Any
) -> bool:
    """The cold half of ``measure_pages`` (run with the page cache bypassed); ``False``
    when the JSON twin fails."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from benchmarks import pages_match, pages_sql

    try:
        response = client.get(api, secure=True)
    except Exception as error:  # a page being built may fail: note it, go on
        response, failure = None, error
    if response is None or response.status_code != 200:
        why = f"{type(failure).__name__}: {failure}" if response is None else response.status_code
        result.notes.append(f"JSON twin failed ({why})")
        return False
    payload = response.json()
    if not payload.get("data"):
        result.notes.append("build() returns nothing yet (placeholder)")
    with CaptureQueriesContext(connection) as captured:
        client.get(api, secure=True)
    result.queries = len(captured.captured_queries)
    # Two cold requests already warmed plans and imports.
    result.json_ms = _median_ms(partial(client.get, api, secure=True), runs, warm_up=False)
    try:
        status = client.get(html, secure=True).status_code
    except Exception as error:
        result.notes.append(f"HTML failed ({type(error).__name__}: {error})")
    else:
        if status == 200:
            result.html_ms = _median_ms(partial(client.get, html, secure=True), runs, warm_up=False)
        else:
            result.notes.append(f"HTML answered {status}")
    figures = pages_sql.FIGURES.get(result.name)
    if figures is None:
        result.sql_note = pages_sql.NOT_WRITTEN.get(result.name, "no SQL written")
    else:
        with connection.cursor() as cursor:
            reference = figures(cursor, book_id, clock)
            result.sql_ms = _median_ms(
                partial(figures, cursor, book_id, clock), runs, warm_up=False
            )
        result.figures = pages_match.compare(result.name, payload.get("data"), reference)
    rolled = pages_sql.ROLLUP_FIGURES.get(result.name)
    if rolled is not None:
        with connection.cursor() as cursor:
            read = rolled(cursor, book_id, clock)
            result.rollup_ms = _median_ms(partial(rolled, cursor, book_id, clock), runs)
        # The rollups' figures against the raw rows' (the SQL above), to the cent.
        result.rollup_figures = (
            pages_match.agree(result.name, read, reference) if figures is not None else "no raw SQL"
        )
    return True


# --- the first request after a live write ---------------------------------------------


@dataclass
class AfterWrite:
    """A page's first request after a live write of the book (median of ``rounds``)."""

    name: str
    json_ms: float | None = None
    html_ms: float | None = None
    write_ms: float | None = None
    queries: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def worst_ms(self) -> float | None:
        times = [t for t in (self.json_ms, self.html_ms) if t is not None]
        return max(times) if len(times) == 2 else None

    @property
    def verdict(self) -> str:
        worst = self.worst_ms
        if worst is None:
            return "n/a"
        return "pass" if worst <= GOAL_FIRST_MS else "FAIL"


def live_write(book_id: int, clock: datetime, *, clear: bool = True) -> float:
    """What a live advance does to what the pages read, in one transaction as
    ``shadow.live`` does it: the book's ``BookState`` revision claimed + 1 (the data stamp
    the page cache keys on changes, ``analytics.stamps``) and the rollups of the clock's
    UTC day summed again from the rows (``shadow.rollups.refresh``). Then every cache entry
    is dropped (the pages' payloads, their rendered fragments, the picker's counts), so
    the next request reads no cache of the page. Milliseconds of the write."""
    from django.core.cache import cache
    from django.db import transaction
    from django.db.models import F

    from shadow import rollups
    from signals.models import BookState

    started = time.perf_counter()
    with transaction.atomic():
        state, _ = BookState.objects.get_or_create(book_id=book_id)
        claimed = BookState.objects.filter(pk=state.pk, revision=state.revision).update(
            revision=F("revision") + 1
        )
        assert claimed == 1, "the benchmark book is written by someone else"
        rollups.refresh(book_id, since=clock)
    elapsed = (time.perf_counter() - started) * 1000
    if clear:
        cache.clear()
    return elapsed


class Writer(threading.Thread):
    """The live book as the beat writes it: ``live_write`` every ``seconds`` (without
    clearing the cache: the new revision is what makes the pages' cached payloads miss),
    until ``stop()``. Counts its writes and their median time."""

    def __init__(self, book_id: int, clock: datetime, seconds: float) -> None:
        super().__init__(daemon=True)
        self.book_id, self.clock, self.seconds = book_id, clock, seconds
        self.times: list[float] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            while not self._stop_event.is_set():
                self.times.append(live_write(self.book_id, self.clock, clear=False))
                self._stop_event.wait(self.seconds)
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=120)


def measure_after_write(
    book_id: int, rounds: int, only: set[str] | None = None
) -> list[AfterWrite]:
    """Each page's first request after a live write (``live_write``), the JSON twin and
    the HTML view each after a write of its own, with the page cache on (production's
    path: the stamp misses, the page is built and stored); median of ``rounds``."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from analytics.filters import book_clock
    from analytics.pages import PAGES, load_pages
    from signals.models import Book

    load_pages()
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(bench_user())
    clock = book_clock(Book.objects.get(pk=book_id))
    assert clock is not None
    results = []
    for page in sorted(PAGES.values(), key=lambda p: p.order):
        if only and page.name not in only:
            continue
        result = AfterWrite(page.name)
        api = f"{reverse('analytics:api-page', args=[page.name])}?book={book_id}"
        html = f"{reverse(f'analytics:{page.name}')}?book={book_id}"
        timings: dict[str, list[float]] = {"json": [], "html": [], "write": []}
        for _ in range(rounds):
            for kind, path in (("json", api), ("html", html)):
                timings["write"].append(live_write(book_id, clock))
                with CaptureQueriesContext(connection) as captured:
                    started = time.perf_counter()
                    status: int | str
                    try:
                        status = client.get(path, secure=True).status_code
                    except Exception as error:  # a page being built may fail: note it
                        status = f"{type(error).__name__}: {error}"
                    elapsed = (time.perf_counter() - started) * 1000
                if status != 200:
                    if f"{kind} answered {status}" not in result.notes:
                        result.notes.append(f"{kind} answered {status}")
                    continue
                timings[kind].append(elapsed)
                if kind == "json":
                    result.queries = len(captured.captured_queries)
        result.json_ms = statistics.median(timings["json"]) if timings["json"] else None
        result.html_ms = statistics.median(timings["html"]) if timings["html"] else None
        result.write_ms = statistics.median(timings["write"])
        results.append(result)
        log(
            f"pages: {page.name} after a live write: JSON {_ms(result.json_ms)} ms, HTML "
            f"{_ms(result.html_ms)} ms (write {_ms(result.write_ms)} ms): {result.verdict}"
        )
        # Fill the page cache again for the load test (the rounds above moved the stamp).
    for page in sorted(PAGES.values(), key=lambda p: p.order):
        if not only or page.name in only:
            client.get(
                f"{reverse('analytics:api-page', args=[page.name])}?book={book_id}", secure=True
            )
    return results


def after_write_table(results: list[AfterWrite], rounds: int) -> str:
    header = ("page", "write ms", "queries", "JSON ms", "HTML ms", "goal ms", "verdict")
    rows = [header]
    for r in results:
        rows.append(
            (
                r.name,
                _ms(r.write_ms),
                "-" if r.queries is None else str(r.queries),
                _ms(r.json_ms),
                _ms(r.html_ms),
                f"{GOAL_FIRST_MS:.0f}",
                r.verdict,
            )
        )
    lines = _aligned(rows, left=(0, 6))
    notes = [f"  {r.name}: {'; '.join(r.notes)}" for r in results if r.notes]
    passed = sum(r.verdict == "pass" for r in results)
    return "\n".join(
        [
            f"First request after a live write (revision + 1 and the last day's rollups "
            f"refreshed, then no cache): median of {rounds} write+request rounds for the "
            f"JSON twin and for the HTML view each; goal <= {GOAL_FIRST_MS:.0f} ms for both",
            *lines,
            f"{passed} of {len(results)} pages pass",
            *(["notes:", *notes] if notes else []),
        ]
    )


# --- load over HTTP -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(port: int, path: str, cookie: str, timeout: float) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(
            "GET",
            path,
            headers={
                "Cookie": cookie,
                "X-Forwarded-Proto": "https",
                "Host": "127.0.0.1",
            },
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def serve(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    """gunicorn as ``make web`` starts it; returns once /healthz answers."""
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "--timeout",
            "600",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            if _get(port, "/healthz", "", 5) == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("gunicorn did not answer /healthz within 60 s")


def load(
    port: int, path: str, cookie: str, *, clients: int, requests: int, seconds: float
) -> tuple[list[float], int]:
    """``requests`` GETs of ``path`` from ``clients`` threads (stopping after ``seconds``);
    the latencies in ms of the 200 answers, and the number of other answers or failures."""
    tickets = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds

    def client() -> None:
        nonlocal errors
        while time.monotonic() < stop_at:
            with lock:
                if next(tickets, None) is None:
                    return
            started = time.perf_counter()
            try:
                status = _get(port, path, cookie, timeout=600)
            except OSError:
                status = 0
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                if status == 200:
                    latencies.append(elapsed)
                else:
                    errors += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q))


# --- report ---------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _aligned(rows: Sequence[Sequence[str]], left: tuple[int, ...]) -> list[str]:
    """``rows`` (the header first) in columns: those in ``left`` to the left, the rest
    to the right; a rule under the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            text.ljust(width) if i in left else text.rjust(width)
            for i, (text, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return lines


HEADER = (
    "page", "queries", "JSON ms", "HTML ms", "SQL ms", "JSON/SQL", "figures",
    "warm ms", "p50 ms", "p95 ms", "requests", "errors",
)  # fmt: skip


def table(results: list[PageResult]) -> str:
    rows = [HEADER]
    for r in results:
        ratio = f"{r.json_ms / r.sql_ms:.2f}" if r.json_ms and r.sql_ms else "n/a"
        rows.append(
            (
                r.name,
                "-" if r.queries is None else str(r.queries),
                _ms(r.json_ms),
                _ms(r.html_ms),
                _ms(r.sql_ms) if r.sql_ms is not None else "n/a",
                ratio,
                r.figures,
                _ms(r.warm_ms),
                _ms(r.p50_ms),
                _ms(r.p95_ms),
                str(r.requests) if r.requests else "-",
                str(r.errors) if r.requests or r.errors else "-",
            )
        )
    lines = _aligned(rows, left=(0, 6))
    notes = [
        f"  {r.name}: {'; '.join(([f'SQL n/a: {r.sql_note}'] if r.sql_note else []) + r.notes)}"
        for r in results
        if r.sql_note or r.notes
    ]
    return "\n".join(lines + (["notes:", *notes] if notes else []))


FLOORS_HEADER = (
    "page", "JSON ms", "raw SQL ms", "JSON/raw", "rollup SQL ms", "JSON/rollup",
    "rollup figures", "goal", "verdict",
)  # fmt: skip


def live_load_table(results: list[PageResult], clients: int, seconds: float) -> str:
    """The load test again while the live book is written every ``seconds``: what
    traders get when every write makes the cached pages miss (issue 14's goal: p95 <
    300 ms)."""
    rows = [("page", "writes", "requests", "errors", "p50 ms", "p95 ms", "goal ms", "verdict")]
    for r in results:
        if not r.live_requests:
            continue
        p95 = r.live_p95_ms
        rows.append(
            (
                r.name,
                str(r.live_writes),
                str(r.live_requests),
                str(r.live_errors),
                _ms(r.live_p50_ms),
                _ms(p95),
                f"{GOAL_P95_MS:.0f}",
                "pass" if p95 is not None and p95 < GOAL_P95_MS and not r.live_errors else "FAIL",
            )
        )
    return "\n".join(
        [
            f"Load while the book is written every {seconds:g} s (live_write: revision + 1 and "
            f"the last day's rollups, the cache left to miss): {clients} clients, HTML",
            *_aligned(rows, left=(0, 7)),
        ]
    )


def floors_table(results: list[PageResult]) -> str:
    """Each page's cold JSON time against its floors: the fastest hand-written SQL over
    the raw rows (``pages_sql.FIGURES``) and, for a page that reads rollups, a bare read
    of those rollups (``pages_sql.ROLLUP_FIGURES``). A page reading rollups is judged
    against the rollup read (<= 3x), another against the raw SQL (<= 1.5x)."""
    rows = [FLOORS_HEADER]
    for r in results:
        raw = r.json_ms / r.sql_ms if r.json_ms and r.sql_ms else None
        rolled = r.json_ms / r.rollup_ms if r.json_ms and r.rollup_ms else None
        if rolled is not None:
            goal, ratio, limit = f"<= {GOAL_ROLLUP_RATIO:g} x rollup", rolled, GOAL_ROLLUP_RATIO
        elif raw is not None:
            goal, ratio, limit = f"<= {GOAL_RATIO:g} x raw", raw, GOAL_RATIO
        else:
            goal, ratio, limit = "-", None, 0.0
        verdict = "n/a" if ratio is None else "pass" if ratio <= limit else "FAIL"
        rows.append(
            (
                r.name,
                _ms(r.json_ms),
                _ms(r.sql_ms) if r.sql_ms is not None else "n/a",
                f"{raw:.2f}" if raw is not None else "n/a",
                _ms(r.rollup_ms) if r.rollup_ms is not None else "n/a",
                f"{rolled:.2f}" if rolled is not None else "n/a",
                r.rollup_figures,
                goal,
                verdict,
            )
        )
    return "\n".join(
        [
            "Floors: cold JSON (page cache bypassed) against the fastest hand-written SQL "
            "over the raw rows and against a bare read of the rollups the page reads "
            "(benchmarks/pages_sql.py); rollup figures: the rollup read's figures against "
            "the raw SQL's",
            *_aligned(rows, left=(0, 6, 7)),
        ]
    )


def main() -> None:
    signals = _env_int("BENCH_PAGES_SIGNALS", 1_000_000)
    runs = _env_int("BENCH_PAGES_RUNS", 5)
    write_rounds = _env_int("BENCH_PAGES_WRITE_ROUNDS", 3)
    clients = _env_int("BENCH_PAGES_CLIENTS", 10)
    requests = _env_int("BENCH_PAGES_REQUESTS", 100)
    load_seconds = float(_env_int("BENCH_PAGES_LOAD_SECONDS", 120))
    workers = _env_int("BENCH_PAGES_WORKERS", 4)
    only = {name.strip() for name in os.environ.get("BENCH_PAGES_ONLY", "").split(",") if name}
    skip_load = os.environ.get("BENCH_PAGES_SKIP_LOAD", "") not in ("", "0", "false")
    write_seconds = float(_env_int("BENCH_PAGES_WRITE_SECONDS", 5))
    live_seconds = float(_env_int("BENCH_PAGES_LIVE_SECONDS", 30))
    url = _database_url()
    env = production_env(url)
    fresh = prepare_database(url, signals, env)
    os.environ.update(env)

    import django

    django.setup()
    if fresh:
        generate_book(url, signals)
    marker = _marker(url)
    assert marker is not None
    book_id = int(marker["book_id"])

    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "collectstatic", "--noinput", "-v0"],
        env=env,
        check=True,
    )
    from django.core.cache import cache

    cache.clear()  # the page cache (Redis at BENCH_PAGES_CACHE_URL): nothing left from before
    log(f"pages: cold and warm server time of each page, {runs} runs")
    results, cookie = measure_pages(book_id, runs, only)
    log(f"pages: first request of each page after a live write, {write_rounds} rounds")
    after = measure_after_write(book_id, write_rounds, only)

    if not skip_load:
        from analytics.filters import book_clock
        from signals.models import Book

        clock = book_clock(Book.objects.get(pk=book_id))
        assert clock is not None
        port = _free_port()
        server = serve(env, port, workers)
        try:
            from django.urls import reverse

            for result in results:
                path = f"{reverse(f'analytics:{result.name}')}?book={book_id}"
                # Not measured: each worker's first request of a page compiles its
                # templates and imports its code (once per process).
                load(port, path, cookie, clients=workers, requests=2 * workers, seconds=600)
                log(f"pages: {clients} clients x {requests} requests of {path}")
                latencies, errors = load(
                    port,
                    path,
                    cookie,
                    clients=clients,
                    requests=requests,
                    seconds=load_seconds,
                )
                result.requests, result.errors = len(latencies) + errors, errors
                if latencies:
                    result.p50_ms = percentile(latencies, 50)
                    result.p95_ms = percentile(latencies, 95)
                if not write_seconds:
                    continue
                log(f"pages: the same while the book is written every {write_seconds:g} s")
                writer = Writer(book_id, clock, write_seconds)
                writer.start()
                try:
                    # For a fixed time, not a number of requests: several writes land.
                    latencies, errors = load(
                        port,
                        path,
                        cookie,
                        clients=clients,
                        requests=1_000_000,
                        seconds=live_seconds,
                    )
                finally:
                    writer.stop()
                result.live_requests, result.live_errors = len(latencies) + errors, errors
                result.live_writes = len(writer.times)
                if latencies:
                    result.live_p50_ms = percentile(latencies, 50)
                    result.live_p95_ms = percentile(latencies, 95)
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(
        f"Pages on one book of {signals:,} signals (generator v{marker['version']}); "
        f"server time: cold (page cache bypassed), median of {runs} runs in-process; "
        f"warm: JSON twin from the page cache; load: {clients} clients, "
        f"gunicorn -w {workers}, DEBUG off, cache on (filled); goals JSON/SQL <= "
        f"{GOAL_RATIO}, p95 < {GOAL_P95_MS:.0f} ms"
    )
    print(table(results))
    if marker.get("rollup_seconds") is not None:
        print(
            f"Rollups of the book built by shadow.rollups.rebuild in "
            f"{marker['rollup_seconds']:.1f} s ({marker['rollup_rows']:,} rows; the tables "
            f"analysed first in {marker['analyse_seconds']:.1f} s), when it was generated "
            f"(in {marker['seconds']:.0f} s in all)"
        )
    print()
    print(floors_table(results))
    print()
    print(after_write_table(after, write_rounds))
    if not skip_load and write_seconds:
        print()
        print(live_load_table(results, clients, write_seconds))
    print(json.dumps({"signals": signals, "book": book_id}), file=sys.stderr)


if __name__ == "__main__":
    main()
