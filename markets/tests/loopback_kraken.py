"""A Kraken order desk on 127.0.0.1 that keeps every order it receives, for race tests.

``LoopbackKraken`` is a real HTTP server (``http.server``, a thread per request) that
answers Kraken's private order endpoints in Kraken's documented format, so real
``ccxt.kraken`` objects in other processes (``kraken_over(url)``) place and look up
orders through it with ccxt's own signing, parameters and parsing:

- ``AddOrder``: every order is kept in ``received`` (duplicates too: like Kraken, a
  client order id is refused only while an order with it is still open, and a market
  order closes at once). ``reply_delay`` holds the answer back (longer than the client's
  timeout: the client gives up, ccxt raises ``RequestTimeout``, yet the order stands).
- ``OpenOrders`` / ``ClosedOrders`` (filtered by ``cl_ord_id``): an order shows up there
  only ``visibility`` seconds after it was received, as Kraken's lists lag behind.
- ``QueryOrders`` by Kraken order id: always answers (whoever holds the id saw it).

``preload`` puts an order on the desk as if an earlier (dead) worker had sent it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

import ccxt

from markets.gateway import api_urls_moved
from markets.tests.recorded_http import FAKE_API_KEY, FAKE_KRAKEN_SECRET, KRAKEN_ORDER_MARKETS

PRICE = "30000.0"
# A lost order's request hangs this long: past any client timeout the tests use.
LOST_REPLY_SECONDS = 1.0


@dataclass
class Received:
    """One AddOrder the desk took."""

    txid: str
    cl_ord_id: str | None
    pair: str
    side: str
    volume: str
    at: float


class LoopbackKraken:
    """The server; ``start()`` it, ``reset()`` between trials, ``stop()`` at the end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""
        self.reset()

    # -- the test's side ---------------------------------------------------------------

    def reset(
        self, *, visibility: float = 0.0, reply_delay: float = 0.0, lose_first: bool = False
    ) -> None:
        """Forget every order; new orders show up in the lists ``visibility`` seconds
        after they arrive and are answered ``reply_delay`` seconds after they arrive.
        ``lose_first``: the first AddOrder of each client order id is lost on the way
        (never taken, never answered within ``LOST_REPLY_SECONDS``)."""
        with self._lock:
            self.visibility = visibility
            self.reply_delay = reply_delay
            self.lose_first = lose_first
            self.lost: list[str] = []
            self.received: list[Received] = []
            self._orders: dict[str, dict[str, Any]] = {}
            self._visible_at: dict[str, float] = {}

    def preload(self, cl_ord_id: str, *, side: str = "buy", volume: str = "0.03") -> None:
        """An order that reached the desk before the test began (visible at once)."""
        self._take({"cl_ord_id": cl_ord_id, "pair": "XBTUSDT", "type": side, "volume": volume})
        with self._lock:
            self._visible_at = dict.fromkeys(self._visible_at, 0.0)

    def sends(self) -> Counter[str]:
        """How many AddOrder requests each client order id came in."""
        with self._lock:
            return Counter(r.cl_ord_id or "" for r in self.received)

    def start(self) -> LoopbackKraken:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- the server's side -------------------------------------------------------------

    def _take(self, form: dict[str, str]) -> tuple[str | None, float]:
        now = time.time()
        with self._lock:
            cid = form.get("cl_ord_id") or ""
            if self.lose_first and cid not in self.lost:
                self.lost.append(cid)
                return None, now + LOST_REPLY_SECONDS
            txid = f"O{len(self.received) + 1:05d}-LOOP-BACK"
            order = _kraken_order(form, now)
            self.received.append(
                Received(
                    txid=txid,
                    cl_ord_id=form.get("cl_ord_id"),
                    pair=form.get("pair", ""),
                    side=form.get("type", ""),
                    volume=form.get("volume", ""),
                    at=now,
                )
            )
            self._orders[txid] = order
            self._visible_at[txid] = now + self.visibility
            return txid, now + self.reply_delay

    def _listed(self, status: str, form: dict[str, str]) -> dict[str, dict[str, Any]]:
        now = time.time()
        wanted = form.get("cl_ord_id")
        with self._lock:
            return {
                txid: order
                for txid, order in self._orders.items()
                if order["status"] == status
                and self._visible_at[txid] <= now
                and (wanted is None or order.get("cl_ord_id") == wanted)
            }

    def answer(self, path: str, form: dict[str, str]) -> tuple[dict[str, Any], float]:
        """The JSON answer to a request and when to send it (``time.time()``)."""
        if path == "/0/private/AddOrder":
            txid, reply_at = self._take(form)
            if txid is None:
                return {"error": ["EService:Unavailable"]}, reply_at
            descr = f"{form.get('type')} {form.get('volume')} {form.get('pair')} @ market"
            return {"error": [], "result": {"descr": {"order": descr}, "txid": [txid]}}, reply_at
        if path == "/0/private/QueryOrders":
            with self._lock:
                wanted = form.get("txid", "").split(",")
                found = {t: self._orders[t] for t in wanted if t in self._orders}
            return {"error": [], "result": found}, 0.0
        if path == "/0/private/OpenOrders":
            return {"error": [], "result": {"open": self._listed("open", form)}}, 0.0
        if path == "/0/private/ClosedOrders":
            closed = self._listed("closed", form)
            return {"error": [], "result": {"closed": closed, "count": len(closed)}}, 0.0
        return {"error": [f"EGeneral:Unknown method {path}"]}, 0.0


def _kraken_order(form: dict[str, str], now: float) -> dict[str, Any]:
    """A market order as Kraken lists it: filled at once at ``PRICE``."""
    volume = form.get("volume", "0")
    cost = f"{float(volume) * float(PRICE):.5f}"
    order: dict[str, Any] = {
        "refid": None,
        "userref": 0,
        "status": "closed",
        "reason": None,
        "opentm": now,
        "closetm": now,
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": form.get("pair", ""),
            "type": form.get("type", ""),
            "ordertype": form.get("ordertype", "market"),
            "price": "0",
            "price2": "0",
            "leverage": "none",
            "order": f"{form.get('type')} {volume} {form.get('pair')} @ market",
            "close": "",
        },
        "vol": volume,
        "vol_exec": volume,
        "cost": cost,
        "fee": f"{float(cost) * 0.0026:.5f}",
        "price": PRICE,
        "stopprice": "0.00000",
        "limitprice": "0.00000",
        "misc": "",
        "oflags": "fciq",
    }
    if form.get("cl_ord_id"):
        order["cl_ord_id"] = form["cl_ord_id"]
    return order


def _handler_for(desk: LoopbackKraken) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, delayed ACKs add
            # 40 ms to every answer.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode(errors="replace") if length else ""
            form = dict(parse_qsl(body, keep_blank_values=True))
            answer, reply_at = desk.answer(urlparse(self.path).path, form)
            wait = reply_at - time.time()
            if wait > 0:
                time.sleep(wait)
            payload = json.dumps(answer).encode()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        do_GET = _serve  # noqa: N815 (http.server calls do_<METHOD>)
        do_POST = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test reads ``desk.received``

    return Handler


def kraken_over(url: str, *, timeout_ms: int = 2_000) -> Any:
    """A real ``ccxt.kraken`` with fake credentials whose every request goes to ``url``."""
    exchange = ccxt.kraken(
        {
            "apiKey": FAKE_API_KEY,
            "secret": FAKE_KRAKEN_SECRET,
            "timeout": timeout_ms,
            "enableRateLimit": False,
        }
    )
    exchange.urls["api"] = api_urls_moved(exchange.urls["api"], url)
    exchange.set_markets(KRAKEN_ORDER_MARKETS)
    exchange.options["marketsByAltname"] = {
        market["altname"]: exchange.markets[market["symbol"]] for market in KRAKEN_ORDER_MARKETS
    }
    return exchange
