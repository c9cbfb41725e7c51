"""A fake Kraken on 127.0.0.1 for end-to-end exchange fault tests, and the worker that uses it.

``FakeKraken`` is a real HTTP server (``http.server``, one thread per request) that plays
Kraken's public REST API from recorded answers (``../shared/data/api-responses/kraken``):
``AssetPairs`` always answers from its recording, ``OHLC`` answers from a script the test
sets (``kraken.script(...)``): each request takes the next ``Answer`` (a status, a body,
a delay beyond the client's timeout, ...); once the script is used up it answers from
the recorded OHLC response, its times shifted so its last (still-open) candle is the
current minute. Private endpoints answer ``private_answer``. Every request is kept
(``kraken.requests``) so a test counts what the client really sent.

A worker started with ``start_worker(... EXCHANGE_API_URL=kraken.url)`` runs the real
ccxt ``kraken`` class against it: ccxt's request building, parsing, status mapping and
the gateway's retries all run; only the host is different.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

RECORDED = "data/api-responses/kraken"
PAIR = "XBTUSDT"
SYMBOL = "BTC/USDT"
QUEUES = "default,market_data,signals,shadow,analytics,alerts"
# ccxt's load_markets asks for the currencies too (/0/public/Assets). There is no
# recording of it in ../shared/data: this answer is written here in Kraken's documented
# format, for the two currencies of the recorded pair.
ASSETS = {
    "error": [],
    "result": {
        "XXBT": {
            "aclass": "currency",
            "altname": "XBT",
            "decimals": 10,
            "display_decimals": 5,
            "collateral_value": 1.0,
            "status": "enabled",
        },
        "USDT": {
            "aclass": "currency",
            "altname": "USDT",
            "decimals": 8,
            "display_decimals": 4,
            "collateral_value": 1.0,
            "status": "enabled",
        },
    },
}


@dataclass(frozen=True)
class Answer:
    """One scripted HTTP answer. ``delay`` seconds pass before it is sent (longer than
    the client's timeout: the client gives up first, a ccxt ``RequestTimeout``);
    ``body=None`` means the recorded good answer."""

    status: int = 200
    body: str | None = None
    content_type: str = "application/json"
    reason: str | None = None
    delay: float = 0.0


def timeout(seconds: float) -> Answer:
    return Answer(delay=seconds)


def status(code: int, body: str = "", content_type: str = "text/html") -> Answer:
    return Answer(status=code, body=body, content_type=content_type)


GOOD = Answer()
TOO_MANY_REQUESTS = status(429, "Too Many Requests", "text/plain")
# Binance's "I'm a teapot": the IP is banned for sending on after 429s.
TEAPOT = status(418, '{"code":-1003,"msg":"Way too many requests; IP banned."}', "application/json")
INTERNAL_ERROR = status(500, "<html><body>500 Internal Server Error</body></html>")
BAD_GATEWAY = status(502, "<html><body><h1>502 Bad Gateway</h1>cloudflare</body></html>")
SERVICE_UNAVAILABLE = status(503, "<html><body>503 Service Unavailable</body></html>")
HTML_PAGE = Answer(
    body="<!DOCTYPE html><html><head><title>Kraken | Maintenance</title></head>"
    "<body>We'll be back soon.</body></html>",
    content_type="text/html",
)
EMPTY_BODY = Answer(body="")


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: str
    at: float


@dataclass
class FakeKraken:
    """The server; ``start()`` it, ``script()`` each test, ``stop()`` at the end."""

    recorded_dir: Path
    ohlc_script: list[Answer] = field(default_factory=list)
    private_answer: Answer = field(
        default_factory=lambda: Answer(body=json.dumps({"error": ["EAPI:Invalid key"]}))
    )
    # Put the request's API-Key header into the private endpoints' error body, like a
    # proxy or an exchange that quotes the request back.
    echo_api_key: bool = False
    requests: list[Seen] = field(default_factory=list)
    # The rows of every good OHLC answer sent, in order.
    served_rows: list[list[list[Any]]] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._asset_pairs = (self.recorded_dir / "http_asset_pairs.json").read_text()
        recorded = json.loads((self.recorded_dir / "http_ohlc.json").read_text())
        self._ohlc_rows: list[list[Any]] = recorded["result"][PAIR]
        self._server: ThreadingHTTPServer | None = None

    # -- the test's side ---------------------------------------------------------------

    def script(self, *answers: Answer) -> None:
        """Answer the next OHLC requests with ``answers``, in order; forget past requests."""
        with self._lock:
            self.ohlc_script = list(answers)
            self.requests = []
            self.served_rows = []

    def ohlc_requests(self) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path == "/0/public/OHLC"]

    def good_rows(self, now: datetime | None = None) -> list[list[Any]]:
        """The recorded OHLC rows with their times moved to end at the current minute
        (prices, volumes and spacing as recorded); the last one is the still-open candle."""
        now_s = int((now or datetime.now(UTC)).timestamp()) // 60 * 60
        shift = now_s - int(self._ohlc_rows[-1][0])
        return [[int(row[0]) + shift, *row[1:]] for row in self._ohlc_rows]

    def start(self) -> FakeKraken:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- the server's side -------------------------------------------------------------

    def answer(self, seen: Seen) -> Answer:
        with self._lock:
            self.requests.append(seen)
            scripted = (
                self.ohlc_script.pop(0)
                if seen.path == "/0/public/OHLC" and self.ohlc_script
                else None
            )
        if scripted is not None:
            if scripted.body is None:
                return Answer(body=self._good_ohlc(seen.query), delay=scripted.delay)
            return scripted
        if seen.path == "/0/public/AssetPairs":
            return Answer(body=self._asset_pairs)
        if seen.path == "/0/public/Assets":
            return Answer(body=json.dumps(ASSETS))
        if seen.path == "/0/public/OHLC":
            return Answer(body=self._good_ohlc(seen.query))
        if seen.path.startswith("/0/private/"):
            answer = self.private_answer
            if self.echo_api_key:
                error = json.loads(answer.body or "{}")
                error["request"] = {"API-Key": seen.headers.get("API-Key", "")}
                answer = Answer(status=answer.status, body=json.dumps(error))
            return answer
        return status(404, json.dumps({"error": [f"EGeneral:Unknown method {seen.path}"]}))

    def _good_ohlc(self, query: dict[str, list[str]]) -> str:
        since = int(query["since"][0]) if "since" in query else None
        rows = [row for row in self.good_rows() if since is None or row[0] > since]
        with self._lock:
            self.served_rows.append(rows)
        last = rows[-2][0] if len(rows) > 1 else (rows[0][0] if rows else since)
        return json.dumps({"error": [], "result": {PAIR: rows, "last": last}})


def _handler_for(kraken: FakeKraken) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode(errors="replace") if length else ""
            seen = Seen(
                method=self.command,
                path=url.path,
                query=parse_qs(url.query),
                headers=dict(self.headers.items()),
                body=body,
                at=time.monotonic(),
            )
            answer = kraken.answer(seen)
            if answer.delay:
                time.sleep(answer.delay)
            payload = (answer.body or "").encode()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(answer.status, answer.reason)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        do_GET = _serve  # noqa: N815 (http.server calls do_<METHOD>)
        do_POST = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test asserts on ``kraken.requests``

    return Handler


# -- a real Celery worker pointed at it -------------------------------------------------


@dataclass
class WorkerProcess:
    """A Celery worker subprocess and its log file."""

    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def start_worker(
    *, base_dir: Path, database_url: str, broker_url: str, log: Path, env: dict[str, str]
) -> Iterator[WorkerProcess]:
    """A worker on the given database and broker (its Redis database flushed first) with
    ``env`` on top of this process's environment; stopped (TERM, then KILL) on exit."""
    import redis

    redis.Redis.from_url(broker_url).flushdb()
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        **env,
    }
    args = [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo", "-c", "1"]
    args += ["-Q", QUEUES, "--without-mingle", "--without-gossip", "--without-heartbeat"]
    args += ["-l", env.get("LOG_LEVEL", "info").lower()]
    with log.open("w") as out:
        process = subprocess.Popen(
            args, cwd=base_dir, env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    worker = WorkerProcess(process, log)
    try:
        deadline = time.monotonic() + 60
        while " ready." not in worker.text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start:\n{worker.text()[-3000:]}")
            time.sleep(0.1)
        yield worker
    finally:
        worker.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
