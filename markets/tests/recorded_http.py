"""Real ccxt exchanges fed offline: recorded HTTP answers mounted on ``exchange.session``.

ccxt's own request building, parsing, ``handle_errors`` and HTTP status mapping all run;
only the socket is replaced. Nothing here ever reaches the network: a request the test
did not plan for fails the test.
"""

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import ccxt
import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPResponse

# Minimal market dicts written for these tests (ids and symbols as Kraken and ccxt use them).
KRAKEN_MARKETS = [
    {
        "id": "XXBTZUSD",
        "symbol": "BTC/USD",
        "base": "BTC",
        "quote": "USD",
        "baseId": "XXBT",
        "quoteId": "ZUSD",
        "type": "spot",
        "spot": True,
        "active": True,
        "altname": "XBTUSD",
        "wsId": "XBT/USD",
    },
    {
        "id": "XBTUSDT",
        "symbol": "BTC/USDT",
        "base": "BTC",
        "quote": "USDT",
        "baseId": "XXBT",
        "quoteId": "USDT",
        "type": "spot",
        "spot": True,
        "active": True,
        "altname": "XBTUSDT",
        "wsId": "XBT/USDT",
    },
]


@dataclass(frozen=True)
class Reply:
    """One recorded HTTP answer, or a ``requests`` exception to raise instead."""

    body: str | bytes = ""
    status: int = 200
    reason: str = "OK"
    content_type: str = "application/json"
    error: Exception | None = None


def json_reply(data: Any, *, status: int = 200, reason: str = "OK") -> Reply:
    return Reply(body=json.dumps(data), status=status, reason=reason)


def kraken_error(*errors: str) -> Reply:
    """Kraken reports API errors with HTTP 200 and a non-empty ``error`` list."""
    return json_reply({"error": list(errors)})


TOO_MANY_REQUESTS = Reply(
    body="Too Many Requests", status=429, reason="Too Many Requests", content_type="text/plain"
)
SERVICE_UNAVAILABLE = Reply(
    body="<html><body>503 Service Unavailable</body></html>",
    status=503,
    reason="Service Unavailable",
    content_type="text/html",
)
READ_TIMEOUT = Reply(error=requests.exceptions.ReadTimeout("Read timed out. (read timeout=10)"))
CONNECTION_RESET = Reply(error=requests.exceptions.ConnectionError("Connection aborted."))
HTML_PAGE = Reply(
    body="<!DOCTYPE html><html><head><title>Kraken | Maintenance</title></head>"
    "<body>We'll be back soon.</body></html>",
    content_type="text/html",
)
EMPTY_BODY = Reply(body="", content_type="application/json")
EMPTY_RESULT = json_reply({"error": [], "result": {}})

Responder = Callable[[requests.PreparedRequest], Reply]


class RecordedAdapter(HTTPAdapter):
    """Answers the n-th request with the n-th reply (or asks a responder); keeps every
    request it saw in ``requests`` so tests can count them."""

    def __init__(self, replies: Sequence[Reply] | Responder) -> None:
        super().__init__()
        self.replies = replies
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        if callable(self.replies):
            reply = self.replies(request)
        elif len(self.requests) <= len(self.replies):
            reply = self.replies[len(self.requests) - 1]
        else:
            raise AssertionError(
                f"unplanned request #{len(self.requests)} (only {len(self.replies)} recorded): "
                f"{request.method} {request.url}"
            )
        if reply.error is not None:
            raise reply.error
        body = reply.body.encode() if isinstance(reply.body, str) else reply.body
        raw = HTTPResponse(
            body=io.BytesIO(body),
            status=reply.status,
            reason=reply.reason,
            headers={"Content-Type": reply.content_type, "Content-Length": str(len(body))},
            preload_content=False,
            decode_content=False,
        )
        return self.build_response(request, raw)


class KrakenOHLC:
    """A responder that serves ``/0/public/OHLC`` from Kraken-format rows
    ``[time_s, "o", "h", "l", "c", "vwap", "volume", count]``: the rows after the
    request's ``since`` (seconds), at most ``page_size`` of them."""

    def __init__(self, pair: str, rows: list[list[Any]], *, page_size: int | None = None) -> None:
        self.pair = pair
        self.rows = rows
        self.page_size = page_size

    def __call__(self, request: requests.PreparedRequest) -> Reply:
        url = urlparse(request.url or "")
        assert url.path == "/0/public/OHLC", f"unexpected endpoint {url.path}"
        query = parse_qs(url.query)
        since = int(query["since"][0]) if "since" in query else None
        rows = [row for row in self.rows if since is None or row[0] > since]
        if self.page_size is not None:
            rows = rows[: self.page_size]
        last = rows[-2][0] if len(rows) > 1 else (rows[0][0] if rows else since)
        return json_reply({"error": [], "result": {self.pair: rows, "last": last}})


def kraken_fed(
    replies: Sequence[Reply] | Responder, *, markets: list[dict[str, Any]] | None = None
) -> tuple[Any, RecordedAdapter]:
    """A real ``ccxt.kraken`` with its markets set (so no AssetPairs call) answering from
    ``replies``. Rate limiting is off: the recorded transport has no limit to respect."""
    exchange = ccxt.kraken({"enableRateLimit": False, "timeout": 10_000})
    exchange.set_markets(markets if markets is not None else KRAKEN_MARKETS)
    adapter = RecordedAdapter(replies)
    exchange.session.mount("https://", adapter)
    exchange.session.mount("http://", adapter)
    return exchange, adapter


def kraken_row(time_s: int, o: str, h: str, low: str, c: str, volume: str = "1.5") -> list[Any]:
    """One Kraken OHLC row; vwap is the close and the trade count fixed (unused by ccxt)."""
    return [time_s, o, h, low, c, c, volume, 7]
