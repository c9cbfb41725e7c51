"""Real ccxt exchanges fed offline: recorded HTTP answers mounted on ``exchange.session``.

ccxt's own request building, parsing, ``handle_errors`` and HTTP status mapping all run;
only the socket is replaced. Nothing here ever reaches the network: a request the test
did not plan for fails the test.
"""

import io
import json
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlparse

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


# -- private endpoints (orders, balances) ---------------------------------------------------

# Fake credentials: the Kraken secret must be base64 (ccxt decodes it to sign); both carry
# characters that URL encoding changes, so redaction of the encoded forms is exercised too.
FAKE_API_KEY = "FAKE-api-KEY+for/tests=0123456789abcdef"
FAKE_KRAKEN_SECRET = "ZmFrZS1rcmFrZW4tc2VjcmV0LWZvci10ZXN0cy0+Pz8/Pj4+Pz8/Pz4+Pg=="
FAKE_BINANCE_SECRET = "FAKE-binance-SECRET+for/tests=fedcba9876543210"


def _spot(
    id_: str,
    symbol: str,
    base_id: str,
    quote_id: str,
    *,
    taker: float,
    maker: float,
    amount_step: float = 1e-8,
    price_step: float = 0.01,
    **extra: Any,
) -> dict[str, Any]:
    base, quote = symbol.split("/")
    return {
        "id": id_,
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "baseId": base_id,
        "quoteId": quote_id,
        "type": "spot",
        "spot": True,
        "margin": False,
        "swap": False,
        "future": False,
        "option": False,
        "contract": False,
        "linear": None,
        "inverse": None,
        "settle": None,
        "settleId": None,
        "contractSize": None,
        "active": True,
        "precision": {"amount": amount_step, "price": price_step},
        "limits": {"amount": {"min": None, "max": None}, "cost": {"min": None, "max": None}},
        "taker": taker,
        "maker": maker,
        "percentage": True,
        "tierBased": False,
        **extra,
    }


# Written for these tests: ids, altnames and fees as Kraken publishes them for these pairs.
KRAKEN_ORDER_MARKETS = [
    _spot(
        "XXBTZUSD",
        "BTC/USD",
        "XXBT",
        "ZUSD",
        taker=0.0026,
        maker=0.0016,
        price_step=0.1,
        altname="XBTUSD",
        wsId="XBT/USD",
    ),
    _spot(
        "XBTUSDT",
        "BTC/USDT",
        "XXBT",
        "USDT",
        taker=0.0026,
        maker=0.0016,
        price_step=0.1,
        altname="XBTUSDT",
        wsId="XBT/USDT",
    ),
    _spot(
        "LTCUSDT",
        "LTC/USDT",
        "XLTC",
        "USDT",
        taker=0.0026,
        maker=0.0016,
        altname="LTCUSDT",
        wsId="LTC/USDT",
    ),
]
_BINANCE_ORDER_TYPES = [
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]
# Binance's ccxt class checks the order type against ``info.orderTypes`` of the market.
BINANCE_MARKETS = [
    _spot(
        f"{base}USDT",
        f"{base}/USDT",
        base,
        "USDT",
        taker=0.001,
        maker=0.001,
        amount_step=step,
        info={"symbol": f"{base}USDT", "orderTypes": _BINANCE_ORDER_TYPES},
    )
    for base, step in (("BTC", 1e-5), ("ETH", 1e-4), ("LTC", 1e-3), ("SOL", 1e-3))
]


def request_params(request: requests.PreparedRequest) -> dict[str, str]:
    """The parameters of a request: the form body of a POST, else the query string."""
    body = request.body
    if body:
        text = body.decode() if isinstance(body, bytes) else str(body)
        return dict(parse_qsl(text, keep_blank_values=True))
    return dict(parse_qsl(urlparse(request.url or "").query, keep_blank_values=True))


def request_path(request: requests.PreparedRequest) -> str:
    return urlparse(request.url or "").path


class Router:
    """A responder serving each ``(METHOD, path)`` from its own queue of replies, in order;
    a request to a route not planned (or planned replies used up) fails the test."""

    def __init__(self, routes: Mapping[tuple[str, str], Sequence[Reply] | Reply]) -> None:
        self.routes = {
            key: deque([value] if isinstance(value, Reply) else value)
            for key, value in routes.items()
        }

    def __call__(self, request: requests.PreparedRequest) -> Reply:
        key = (request.method or "GET", request_path(request))
        queue = self.routes.get(key)
        if not queue:
            raise AssertionError(f"unplanned request {key[0]} {request.url}")
        return queue.popleft()

    def unused(self) -> dict[tuple[str, str], int]:
        """Routes with replies left over (a test may assert this is empty)."""
        return {key: len(queue) for key, queue in self.routes.items() if queue}


def exchange_fed(
    exchange_id: str,
    replies: Sequence[Reply] | Responder,
    *,
    markets: list[dict[str, Any]],
    api_key: str | None = FAKE_API_KEY,
    secret: str | None = None,
) -> tuple[Any, RecordedAdapter]:
    """A real ccxt exchange of ``exchange_id`` with fake credentials and its markets set,
    answering from ``replies``; rate limiting off."""
    config: dict[str, Any] = {"enableRateLimit": False, "timeout": 10_000}
    if api_key is not None:
        config["apiKey"] = api_key
    if secret is not None:
        config["secret"] = secret
    exchange = getattr(ccxt, exchange_id)(config)
    exchange.set_markets(markets)
    adapter = RecordedAdapter(replies)
    exchange.session.mount("https://", adapter)
    exchange.session.mount("http://", adapter)
    return exchange, adapter


def kraken_private_fed(
    replies: Sequence[Reply] | Responder, *, markets: list[dict[str, Any]] | None = None
) -> tuple[Any, RecordedAdapter]:
    """A real ``ccxt.kraken`` with fake credentials, for private endpoints.

    Kraken names pairs by their altname in order descriptions (``XBTUSD``); ccxt's own
    ``fetch_markets`` indexes the markets by altname, so the same index is set here."""
    markets = markets if markets is not None else KRAKEN_ORDER_MARKETS
    exchange, adapter = exchange_fed("kraken", replies, markets=markets, secret=FAKE_KRAKEN_SECRET)
    exchange.options["marketsByAltname"] = {
        market["altname"]: exchange.markets[market["symbol"]]
        for market in markets
        if market.get("altname")
    }
    return exchange, adapter


def binance_fed(
    replies: Sequence[Reply] | Responder, *, markets: list[dict[str, Any]] | None = None
) -> tuple[Any, RecordedAdapter]:
    """A real ``ccxt.binance`` with fake credentials and spot markets set."""
    return exchange_fed(
        "binance",
        replies,
        markets=markets if markets is not None else BINANCE_MARKETS,
        secret=FAKE_BINANCE_SECRET,
    )


def binance_error(code: int, msg: str, *, status: int = 400) -> Reply:
    """Binance reports API errors with an HTTP 4xx and ``{"code": ..., "msg": ...}``."""
    return json_reply({"code": code, "msg": msg}, status=status, reason="Bad Request")
