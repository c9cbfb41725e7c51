"""Orders through a real ccxt exchange object, placed with a client order id and never
re-sent blindly.

Placing an order is not a read: a request that timed out may well have been executed, so
retrying it could buy twice. ``OrderGateway.place`` therefore calls ccxt's
``create_order`` exactly once. When that call fails in a way that leaves the outcome
unknown (timeout, network error, exchange unavailable, an unparseable or unclassified
answer), it looks the order up by its client order id and returns it when the exchange
has it (open, filled or canceled); otherwise it raises ``OrderStateUnknownError`` and
sends nothing more. An exchange lists an order it took only some time later (Kraken's
closed orders lag by seconds), so "not found right after the send" does not mean "not
placed": only a lookup begun ``visibility_seconds`` (per exchange, setting
``ORDER_VISIBILITY_SECONDS``) past the send's timeout can say that, and deciding to send
again is the caller's (signals.execution claims each send in the database).

A refusal (insufficient funds, invalid order, bad request) is a ``rejected`` result with
the reason, never retried. Reads (lookups, open orders, balances) are retried a bounded
number of times, in this layer only.

Everything that leaves this module is plain data (``OrderResult``, ``Balance``,
``ReconcileReport``) or a ``markets.errors`` exception: no ccxt type leaks out. Credentials
are registered with ``markets.redaction``, so no log line or error message shows them.

How each exchange takes the client order id (checked against ccxt 4.5.90's sources):

- Kraken: ``params={"clientOrderId": ...}`` becomes ``cl_ord_id`` in AddOrder
  (``kraken.py`` ``order_request``: ``request['cl_ord_id'] = clientOrderId``), and the
  same param filters OpenOrders and ClosedOrders (``fetch_open_orders`` /
  ``fetch_closed_orders``: ``request['cl_ord_id'] = clientOrderId``). Kraken's QueryOrders
  needs the Kraken order id, so the lookup reads open, then closed orders. Kraken enforces
  ``cl_ord_id`` uniqueness among open orders only: a filled order with the same id would
  not stop a duplicate, which is why closed orders are checked before any re-send.
  ``userref`` (an int32) is not used.
- Binance: ``clientOrderId`` becomes ``newClientOrderId`` in POST /api/v3/order
  (``binance.py`` ``create_order_request``: ``request[clientOrderIdRequest] =
  clientOrderId`` with ``clientOrderIdRequest = 'newClientOrderId'``), and
  ``fetch_order(None, symbol, {"clientOrderId": ...})`` sends ``origClientOrderId``
  (``request['origClientOrderId'] = clientOrderId``), which finds an order whatever its
  status; "Order does not exist" (-2013) is ccxt's ``OrderNotFound``.
"""

import functools
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar

from django.conf import settings

from markets.errors import (
    ExchangeRequestError,
    MarketDataError,
    OrderNotPlacedError,
    OrderStateUnknownError,
)
from markets.gateway import build_exchange, call_with_retries, ccxt_module
from markets.redaction import redact, register_exchange_credentials, scrub_exception

logger = logging.getLogger("markets")

T = TypeVar("T")

Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit"]
OrderStatus = Literal["open", "closed", "canceled", "rejected"]

DEFAULT_READ_ATTEMPTS = 3
DEFAULT_BACKOFF_SECONDS = 0.5
DEFAULT_MAX_BACKOFF_SECONDS = 5.0
# Pause between a failed send and the lookup, so an order the exchange is still
# processing has a chance to show up (finding it spares a later lookup; not finding it
# proves nothing).
DEFAULT_SETTLE_SECONDS = 1.0
# When nothing is configured for an exchange: how long after taking an order it may
# still not list it (ORDER_VISIBILITY_SECONDS, ORDER_VISIBILITY_DEFAULT_SECONDS).
DEFAULT_VISIBILITY_SECONDS = 10.0


@functools.cache
def rejections() -> tuple[type[Exception], ...]:
    """The exchange refused the order: it was not placed, and sending it again cannot
    help."""
    ccxt = ccxt_module()
    return (ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.BadRequest, ccxt.OperationRejected)


@functools.cache
def refusals() -> tuple[type[Exception], ...]:
    """The request could not be made at all (credentials, a feature ccxt lacks): not
    placed, and every later call would fail the same way, so it is raised, not reported
    as a result."""
    ccxt = ccxt_module()
    return (
        ccxt.AuthenticationError,
        ccxt.NotSupported,
        ccxt.ArgumentsRequired,
        ccxt.ExchangeClosedByUser,
        ccxt.InvalidProxySettings,
    )


# Anything else from ccxt (NetworkError and its children, BadResponse, an unclassified
# ExchangeError) leaves the outcome unknown: the order is looked up, never re-sent blindly.

# ccxt's unified statuses mapped onto ours; anything unknown counts as open (it still
# needs watching). "expired" is an order the exchange ended: canceled, with what filled.
_STATUSES: dict[str, OrderStatus] = {
    "open": "open",
    "canceling": "open",
    "closed": "closed",
    "canceled": "canceled",
    "cancelled": "canceled",
    "expired": "canceled",
    "rejected": "rejected",
}


@dataclass(frozen=True)
class ClientIdRules:
    """How one exchange takes a client order id through ccxt and how to find an order by it."""

    wire_name: str
    """The field ccxt fills from ``params["clientOrderId"]`` (for logs and tests)."""
    lookup_by_fetch_order: bool
    """``fetch_order(None, symbol, {"clientOrderId": id})`` finds an order in any status."""
    filters_by_client_id: bool
    """``fetch_open_orders``/``fetch_closed_orders`` accept ``clientOrderId`` as a filter."""
    pattern: re.Pattern[str]
    """What the exchange accepts as a client order id."""
    described: str


_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
CLIENT_ID_RULES: dict[str, ClientIdRules] = {
    # https://docs.kraken.com/api/docs/guides/spot-clordid: long UUID, short UUID (32 hex)
    # or free text of at most 18 characters.
    "kraken": ClientIdRules(
        wire_name="cl_ord_id",
        lookup_by_fetch_order=False,
        filters_by_client_id=True,
        pattern=re.compile(rf"^(?:{_UUID}|[0-9a-fA-F]{{32}}|[\x21-\x7e]{{1,18}})$"),
        described="a UUID or at most 18 printable ASCII characters",
    ),
    # Binance's newClientOrderId: ^[\.A-Z\:/a-z0-9_-]{1,36}$
    "binance": ClientIdRules(
        wire_name="newClientOrderId",
        lookup_by_fetch_order=True,
        filters_by_client_id=False,
        pattern=re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$"),
        described="1 to 36 characters of A-Z a-z 0-9 . : / _ -",
    ),
}
# Other exchanges: ccxt's unified param, found by scanning open then closed orders.
DEFAULT_CLIENT_ID_RULES = ClientIdRules(
    wire_name="clientOrderId",
    lookup_by_fetch_order=False,
    filters_by_client_id=False,
    pattern=re.compile(r"^[A-Za-z0-9._:/-]{1,36}$"),
    described="1 to 36 characters of A-Z a-z 0-9 . : / _ -",
)

# Fixed namespace for client order ids derived from what they are for.
CLIENT_ID_NAMESPACE = uuid.UUID("6f1c1f0e-3b52-4f55-9a6c-2d7f6b1e8c40")


def new_client_order_id() -> str:
    """A fresh client order id (a UUID: accepted by Kraken and Binance alike)."""
    return str(uuid.uuid4())


def client_order_id_for(*parts: object) -> str:
    """A client order id derived from what the order is for (e.g. book, signal id, "entry"):
    the same parts always give the same id, so a worker that died between sending an order
    and recording it finds that order again by the id, instead of placing a second one."""
    if not parts:
        raise ValueError("client_order_id_for needs at least one part")
    return str(uuid.uuid5(CLIENT_ID_NAMESPACE, "\x1f".join(str(part) for part in parts)))


def client_id_rules(exchange_id: str) -> ClientIdRules:
    """The client order id rules of ``exchange_id`` (ccxt id; binance variants share them)."""
    if exchange_id in CLIENT_ID_RULES:
        return CLIENT_ID_RULES[exchange_id]
    if exchange_id.startswith("binance"):  # binanceus, binanceusdm, ...: ccxt subclasses
        return CLIENT_ID_RULES["binance"]
    return DEFAULT_CLIENT_ID_RULES


def order_visibility_seconds(exchange_id: str) -> float:
    """How long after taking an order ``exchange_id`` may still not list it among its open
    and closed orders: ``ORDER_VISIBILITY_SECONDS[exchange_id]``, else
    ``ORDER_VISIBILITY_DEFAULT_SECONDS`` (10 s)."""
    configured = getattr(settings, "ORDER_VISIBILITY_SECONDS", {}) or {}
    if exchange_id in configured:
        return float(configured[exchange_id])
    return float(getattr(settings, "ORDER_VISIBILITY_DEFAULT_SECONDS", DEFAULT_VISIBILITY_SECONDS))


def check_client_order_id(exchange_id: str, client_order_id: str) -> None:
    """Raise ``ValueError`` unless ``exchange_id`` accepts ``client_order_id``."""
    rules = client_id_rules(exchange_id)
    if not rules.pattern.match(client_order_id):
        raise ValueError(
            f"{exchange_id} does not accept the client order id {client_order_id!r}: "
            f"it must be {rules.described}"
        )


@dataclass(frozen=True, kw_only=True)
class OrderRequest:
    """An order to place. ``amount`` is in the base currency; ``price`` only for limits."""

    symbol: str
    side: Side
    amount: Decimal
    client_order_id: str
    type: OrderType = "market"
    price: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", _required_decimal(self.amount, "amount"))
        if self.price is not None:
            object.__setattr__(self, "price", _required_decimal(self.price, "price"))
        if self.side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', not {self.side!r}")
        if self.type not in ("market", "limit"):
            raise ValueError(f"type must be 'market' or 'limit', not {self.type!r}")
        if self.amount <= 0:
            raise ValueError(f"amount must be positive, not {self.amount}")
        if self.type == "limit" and (self.price is None or self.price <= 0):
            raise ValueError("a limit order needs a positive price")
        if not self.client_order_id:
            raise ValueError("client_order_id is required")
        if not self.symbol:
            raise ValueError("symbol is required")

    def describe(self) -> str:
        at = f" @ {self.price}" if self.price is not None else ""
        return (
            f"{self.side} {self.amount} {self.symbol} {self.type}{at} "
            f"(client order id {self.client_order_id})"
        )


@dataclass(frozen=True)
class OrderResult:
    """An order as the exchange knows it (or a rejection), in plain values.

    ``filled`` is how much of ``amount`` executed so far; ``remaining`` what is left (for a
    closed or canceled order: what will never fill). ``average_price`` is the mean fill
    price, ``fee_cost``/``fee_currency`` the fee charged so far when the exchange reports
    it. ``raw_status`` is the exchange's own status word (``FILLED``, ``closed``, ...).
    ``reason`` says why an order was rejected.
    """

    client_order_id: str | None
    exchange_order_id: str | None
    status: OrderStatus
    symbol: str | None = None
    side: str | None = None
    amount: Decimal | None = None
    filled: Decimal = Decimal(0)
    remaining: Decimal | None = None
    average_price: Decimal | None = None
    fee_cost: Decimal | None = None
    fee_currency: str | None = None
    raw_status: str | None = None
    reason: str | None = None

    @property
    def is_final(self) -> bool:
        """Whether the order can change no more (closed, canceled or rejected)."""
        return self.status != "open"

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: decimals as strings."""
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Balance:
    """One currency of the account: ``free`` to trade, ``used`` by open orders, ``total``."""

    currency: str
    free: Decimal
    used: Decimal
    total: Decimal


@dataclass(frozen=True)
class LocalOrder:
    """An order the caller believes is open."""

    client_order_id: str
    symbol: str


@dataclass(frozen=True)
class PositionDifference:
    """A currency whose amount on the exchange differs from what the caller holds."""

    currency: str
    local: Decimal
    exchange: Decimal

    @property
    def difference(self) -> Decimal:
        return self.exchange - self.local


@dataclass(frozen=True)
class ReconcileReport:
    """What the caller believes against what the exchange says (see ``reconcile``)."""

    exchange: str
    still_open: tuple[OrderResult, ...] = ()
    """Believed open and open on the exchange (``filled`` is what executed so far)."""
    closed_since: tuple[OrderResult, ...] = ()
    """Believed open, now closed or canceled on the exchange, with what filled."""
    missing: tuple[LocalOrder, ...] = ()
    """Believed open, but the exchange has no order with that client order id at all."""
    unknown: tuple[OrderResult, ...] = ()
    """Open on the exchange, not believed open by the caller."""
    positions: tuple[PositionDifference, ...] = ()
    """Currencies (among those the caller named) whose exchange total differs."""
    balances: dict[str, Balance] = field(default_factory=dict)

    @property
    def fills(self) -> tuple[OrderResult, ...]:
        """Believed-open orders that have (partly) filled: the fills to book."""
        return tuple(o for o in self.still_open + self.closed_since if o.filled > 0)

    @property
    def in_sync(self) -> bool:
        """Nothing to act on: no closures, no missing or unknown orders, no differences."""
        return not (self.closed_since or self.missing or self.unknown or self.positions) and all(
            o.filled == 0 for o in self.still_open
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "still_open": [o.as_dict() for o in self.still_open],
            "closed_since": [o.as_dict() for o in self.closed_since],
            "missing": [asdict(o) for o in self.missing],
            "unknown": [o.as_dict() for o in self.unknown],
            "positions": [
                {
                    "currency": p.currency,
                    "local": str(p.local),
                    "exchange": str(p.exchange),
                    "difference": str(p.difference),
                }
                for p in self.positions
            ],
            "balances": {
                code: {"free": str(b.free), "used": str(b.used), "total": str(b.total)}
                for code, b in self.balances.items()
            },
        }


class OrderGateway:
    """Places and looks up orders on one exchange through a real ccxt object.

    ``read_attempts``/``backoff_seconds`` bound the retries of reads (lookups, open orders,
    balances); ``settle_seconds`` is the pause before looking up an order whose send
    failed. ``sleep`` is injectable so tests never wait.
    """

    def __init__(
        self,
        exchange: Any,
        *,
        read_attempts: int = DEFAULT_READ_ATTEMPTS,
        backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
        max_backoff_seconds: float = DEFAULT_MAX_BACKOFF_SECONDS,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if read_attempts < 1:
            raise ValueError("read_attempts must be at least 1")
        register_exchange_credentials(exchange)
        self.exchange = exchange
        self.rules = client_id_rules(str(exchange.id))
        self.read_attempts = read_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.settle_seconds = settle_seconds
        self.sleep = sleep

    @classmethod
    def for_exchange(cls, exchange_id: str, **options: Any) -> "OrderGateway":
        """A gateway over ``build_exchange(exchange_id)``, with the API key and secret from
        the environment (``EXCHANGE_API_KEY``/``EXCHANGE_API_SECRET``, for the configured
        ``EXCHANGE_ID`` only). Raises ``ExchangeRequestError`` when they are not set."""
        exchange = build_exchange(exchange_id)
        if not getattr(exchange, "apiKey", None) or not getattr(exchange, "secret", None):
            raise ExchangeRequestError(
                f"{exchange_id}: placing orders needs EXCHANGE_API_KEY and EXCHANGE_API_SECRET "
                f"in the environment, with EXCHANGE_ID={exchange_id}"
            )
        return cls(exchange, **options)

    @property
    def exchange_id(self) -> str:
        return str(self.exchange.id)

    @property
    def send_timeout_seconds(self) -> float:
        """How long one request may take before the client gives up (ccxt's timeout)."""
        return float(self.exchange.timeout) / 1000

    @property
    def visibility_seconds(self) -> float:
        """How long after taking an order this exchange may still not list it."""
        return order_visibility_seconds(self.exchange_id)

    def ready(self) -> None:
        """Load the markets now (a read, retried), so a ``place`` right after sends at
        once. Raises ``ExchangeUnavailableError``/``ExchangeRequestError``."""
        self._markets()

    # -- placing ----------------------------------------------------------------------

    def place(self, request: OrderRequest, *, send_before: float | None = None) -> OrderResult:
        """Send ``request`` once; see the module docstring for what happens on failure.

        Returns the order (``open``, ``closed`` or ``canceled``, with what filled) or a
        ``rejected`` result with the reason. Raises ``OrderStateUnknownError`` (the send
        failed and the exchange does not list the order, or could not be asked: do not
        re-send before a lookup has proven it absent), ``OrderNotPlacedError`` (nothing
        was sent: ``send_before``, a ``time.monotonic()`` moment, had passed when the
        send was due), ``ExchangeRequestError`` (credentials or a request ccxt cannot
        make; nothing placed), ``ExchangeUnavailableError`` (the markets could not be
        loaded; nothing sent) or ``ValueError`` (a client order id this exchange would
        refuse; nothing sent).
        """
        check_client_order_id(self.exchange_id, request.client_order_id)
        self._markets()
        if send_before is not None and time.monotonic() > send_before:
            # The caller's claim on this send only covers a send that starts at once: one
            # starting later could land after another pass has proven it absent.
            message = (
                f"{self.exchange_id}: {request.describe()} was not sent: it was due before "
                f"its deadline, {time.monotonic() - send_before:.1f} s ago"
            )
            logger.error("%s", message)
            raise OrderNotPlacedError(
                message, client_order_id=request.client_order_id, symbol=request.symbol
            )
        logger.info("%s: placing %s", self.exchange_id, request.describe())
        try:
            order = self._send(request)
        except rejections() as exc:
            scrub_exception(exc)
            return self._rejected(request, exc)
        except refusals() as exc:
            scrub_exception(exc)
            message = (
                f"{self.exchange_id}: {request.describe()} was refused before any order "
                f"was placed: {_describe(exc)}"
            )
            logger.error("%s", message)
            raise ExchangeRequestError(message) from exc
        except ccxt_module().BaseError as exc:
            scrub_exception(exc)
            logger.warning(
                "%s: sending %s failed (%s); it may have reached the exchange: "
                "looking it up by client order id instead of sending it again",
                self.exchange_id,
                request.describe(),
                _describe(exc),
            )
            found = self._find_after_failure(request, exc)
            if found is not None:
                return found
            message = (
                f"{self.exchange_id}: cannot tell yet whether {request.describe()} reached "
                f"the exchange: sending failed ({_describe(exc)}) and the exchange does not "
                f"list it yet (it may, up to {self.visibility_seconds:g} s after taking it). "
                "It is NOT sent again: look it up later by its client order id"
            )
            logger.warning("%s", message)
            raise OrderStateUnknownError(
                message, client_order_id=request.client_order_id, symbol=request.symbol
            ) from exc
        return self._confirmed(order, request)

    def _send(self, request: OrderRequest) -> Any:
        """One ``create_order`` call, never retried here."""
        price = float(request.price) if request.price is not None else None
        return self.exchange.create_order(
            request.symbol,
            request.type,
            request.side,
            float(request.amount),
            price,
            {"clientOrderId": request.client_order_id},
        )

    def _confirmed(self, order: Any, request: OrderRequest) -> OrderResult:
        result = self._result(order, request.client_order_id, request)
        if result.status == "rejected":
            logger.warning(
                "%s: %s was rejected (%s)", self.exchange_id, request.describe(), result.raw_status
            )
            return result
        if order.get("status") is None and result.exchange_order_id:
            # Kraken's AddOrder answers with the order id only; its state is a read away.
            try:
                fetched = self._read(
                    f"reading order {result.exchange_order_id}",
                    self.exchange.fetch_order,
                    result.exchange_order_id,
                    request.symbol,
                )
            except MarketDataError as exc:
                logger.warning(
                    "%s: %s was placed as %s but its state could not be read (%s); "
                    "reported open until it is looked up",
                    self.exchange_id,
                    request.describe(),
                    result.exchange_order_id,
                    exc,
                )
                return result
            result = self._result(fetched, request.client_order_id, request)
        logger.info(
            "%s: %s placed as %s: %s, filled %s",
            self.exchange_id,
            request.describe(),
            result.exchange_order_id,
            result.status,
            result.filled,
        )
        return result

    def _rejected(self, request: OrderRequest, error: BaseException) -> OrderResult:
        reason = _describe(error)
        logger.warning("%s: %s was rejected: %s", self.exchange_id, request.describe(), reason)
        return OrderResult(
            client_order_id=request.client_order_id,
            exchange_order_id=None,
            status="rejected",
            symbol=request.symbol,
            side=request.side,
            amount=request.amount,
            filled=Decimal(0),
            remaining=request.amount,
            reason=reason,
        )

    def _find_after_failure(
        self, request: OrderRequest, error: BaseException
    ) -> OrderResult | None:
        if self.settle_seconds > 0:
            self.sleep(self.settle_seconds)
        try:
            found = self.lookup(request.client_order_id, request.symbol)
        except MarketDataError as exc:
            message = (
                f"{self.exchange_id}: cannot tell whether {request.describe()} reached the "
                f"exchange: sending failed ({_describe(error)}) and so did the lookup "
                f"({exc}). It is NOT sent again: look it up later by its client order id"
            )
            logger.error("%s", message)
            raise OrderStateUnknownError(
                message, client_order_id=request.client_order_id, symbol=request.symbol
            ) from exc
        if found is not None:
            logger.warning(
                "%s: found %s on the exchange as %s (%s): not sending it again",
                self.exchange_id,
                request.describe(),
                found.exchange_order_id,
                found.status,
            )
        return found

    # -- reading ----------------------------------------------------------------------

    def lookup(
        self, client_order_id: str, symbol: str, *, include_open: bool = True
    ) -> OrderResult | None:
        """The order with ``client_order_id`` in ``symbol``, whatever its status, or
        ``None`` when the exchange has none. ``include_open=False`` skips the open orders
        (when the caller has just read them). Raises ``ExchangeUnavailableError`` or
        ``ExchangeRequestError`` when the exchange cannot be asked."""
        what = f"looking up order {client_order_id} ({symbol})"
        if self.rules.lookup_by_fetch_order:
            order = self._read(what, self._fetch_by_client_id, client_order_id, symbol)
            if order is not None and order.get("clientOrderId") == client_order_id:
                return self._result(order, client_order_id)
            return None
        params = {"clientOrderId": client_order_id} if self.rules.filters_by_client_id else {}
        sources: list[tuple[str, Callable[..., Any]]] = []
        if include_open:
            sources.append(("open", self.exchange.fetch_open_orders))
        if self.exchange.has.get("fetchClosedOrders"):
            sources.append(("closed", self.exchange.fetch_closed_orders))
        for kind, fetch in sources:
            orders = self._read(f"{what} in the {kind} orders", fetch, symbol, None, None, params)
            for order in orders or []:
                if order.get("clientOrderId") == client_order_id:
                    return self._result(order, client_order_id)
        return None

    def _fetch_by_client_id(self, client_order_id: str, symbol: str) -> Any:
        try:
            return self.exchange.fetch_order(None, symbol, {"clientOrderId": client_order_id})
        except ccxt_module().OrderNotFound:
            return None

    def open_orders(self, symbol: str | None = None) -> list[OrderResult]:
        """Every open order (of ``symbol``, or of every market)."""
        if symbol is None:
            # Binance asks for an acknowledgement before listing every market's open
            # orders (it costs more request weight); other exchanges ignore the option.
            self.exchange.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
        what = f"reading the open orders{f' of {symbol}' if symbol else ''}"
        orders = self._read(what, self.exchange.fetch_open_orders, symbol)
        return [self._result(order, None) for order in orders or []]

    def balances(self) -> dict[str, Balance]:
        """Free, used (in open orders) and total amount per currency, by currency code."""
        raw = self._read("reading the balances", self.exchange.fetch_balance) or {}
        totals = raw.get("total") or {}
        frees = raw.get("free") or {}
        useds = raw.get("used") or {}
        result: dict[str, Balance] = {}
        for currency in sorted(totals):
            total = _decimal(totals.get(currency))
            if total is None:
                continue
            used = _decimal(useds.get(currency))
            free = _decimal(frees.get(currency))
            if used is None:
                used = total - free if free is not None else Decimal(0)
            if free is None:
                free = total - used
            result[currency] = Balance(currency, free, used, total)
        return result

    def taker_fee(self, symbol: str) -> Decimal | None:
        """The taker fee rate of ``symbol`` from the exchange's market data when ccxt knows
        it (e.g. ``0.0026``), else ``None``: the caller then uses its configured rate.
        Raises ``ExchangeRequestError`` for a market the exchange does not have."""
        market = self._markets().get(symbol)
        if market is None:
            raise ExchangeRequestError(f"{self.exchange_id} has no market {symbol!r}")
        return _decimal(market.get("taker"))

    def fee_rate(self, symbol: str, configured: Decimal) -> Decimal:
        """``taker_fee(symbol)``, or ``configured`` when the exchange data has none."""
        known = self.taker_fee(symbol)
        return known if known is not None else configured

    # -- reconciling --------------------------------------------------------------------

    def reconcile(
        self,
        local_open: Iterable[tuple[str, str]],
        local_positions: Mapping[str, Decimal] | None = None,
    ) -> ReconcileReport:
        """Compare what the caller believes with the exchange (at worker start).

        ``local_open`` lists ``(client_order_id, symbol)`` of the orders the caller holds
        open; ``local_positions`` the amount per currency it believes the account holds
        (only those currencies are compared; give 0 for "none"). Reads the open orders of
        every market once, looks up each believed-open order that is no longer open, and
        reads the balances when positions are given. Acts on nothing: the report says
        what to do. Raises ``ExchangeUnavailableError``/``ExchangeRequestError`` when the
        exchange cannot be read (try again later).
        """
        local = [LocalOrder(cid, symbol) for cid, symbol in dict.fromkeys(local_open)]
        local_ids = {order.client_order_id for order in local}
        exchange_open = self.open_orders()
        open_by_id = {o.client_order_id: o for o in exchange_open if o.client_order_id}
        still_open: list[OrderResult] = []
        closed_since: list[OrderResult] = []
        missing: list[LocalOrder] = []
        for order in local:
            if order.client_order_id in open_by_id:
                still_open.append(open_by_id[order.client_order_id])
                continue
            found = self.lookup(order.client_order_id, order.symbol, include_open=False)
            if found is None:
                missing.append(order)
            elif found.status == "open":
                still_open.append(found)
            else:
                closed_since.append(found)
        unknown = [o for o in exchange_open if o.client_order_id not in local_ids]
        positions: list[PositionDifference] = []
        balances: dict[str, Balance] = {}
        if local_positions is not None:
            balances = self.balances()
            for currency, amount in sorted(local_positions.items()):
                held = balances[currency].total if currency in balances else Decimal(0)
                if held != Decimal(amount):
                    positions.append(PositionDifference(currency, Decimal(amount), held))
        report = ReconcileReport(
            exchange=self.exchange_id,
            still_open=tuple(still_open),
            closed_since=tuple(closed_since),
            missing=tuple(missing),
            unknown=tuple(unknown),
            positions=tuple(positions),
            balances=balances,
        )
        log = logger.info if report.in_sync else logger.warning
        log(
            "%s: reconciled %d believed-open order(s): %d still open, %d closed since, "
            "%d missing, %d unknown open on the exchange, %d position difference(s)",
            self.exchange_id,
            len(local),
            len(still_open),
            len(closed_since),
            len(missing),
            len(unknown),
            len(positions),
        )
        return report

    # -- plumbing -----------------------------------------------------------------------

    def _markets(self) -> dict[str, Any]:
        return self._read("loading markets", self.exchange.load_markets) or {}

    def _read(self, what: str, function: Callable[..., T], *args: Any) -> T:
        return call_with_retries(
            self.exchange_id,
            what,
            function,
            *args,
            max_attempts=self.read_attempts,
            backoff_seconds=self.backoff_seconds,
            max_backoff_seconds=self.max_backoff_seconds,
            sleep=self.sleep,
        )

    def _result(
        self,
        order: Mapping[str, Any],
        client_order_id: str | None,
        request: OrderRequest | None = None,
    ) -> OrderResult:
        info = order.get("info")
        raw_status = info.get("status") if isinstance(info, Mapping) else None
        ccxt_status = order.get("status")
        status = _STATUSES.get(str(ccxt_status), "open") if ccxt_status is not None else "open"
        amount = _decimal(order.get("amount"))
        if amount is None and request is not None:
            amount = request.amount
        filled = _decimal(order.get("filled")) or Decimal(0)
        remaining = _decimal(order.get("remaining"))
        if remaining is None and amount is not None:
            remaining = amount - filled
        average = _decimal(order.get("average"))
        cost = _decimal(order.get("cost"))
        if average is None and cost and filled:
            average = cost / filled
        fee_cost, fee_currency = _fee(order)
        return OrderResult(
            client_order_id=client_order_id or _text(order.get("clientOrderId")),
            exchange_order_id=_text(order.get("id")),
            status=status,
            symbol=_text(order.get("symbol")) or (request.symbol if request else None),
            side=_text(order.get("side")) or (request.side if request else None),
            amount=amount,
            filled=filled,
            remaining=remaining,
            average_price=average,
            fee_cost=fee_cost,
            fee_currency=fee_currency,
            raw_status=_text(raw_status) or _text(ccxt_status),
            reason=f"the exchange answered {raw_status or ccxt_status}"
            if status == "rejected"
            else None,
        )


def _fee(order: Mapping[str, Any]) -> tuple[Decimal | None, str | None]:
    """The fee of a ccxt order: ``fee``, or the sum of ``fees`` when in one currency."""
    fee = order.get("fee")
    if isinstance(fee, Mapping) and fee.get("cost") is not None:
        return _decimal(fee.get("cost")), _text(fee.get("currency"))
    fees = [
        f for f in order.get("fees") or [] if isinstance(f, Mapping) and f.get("cost") is not None
    ]
    currencies = {f.get("currency") for f in fees}
    if fees and len(currencies) == 1:
        total = sum((_decimal(f.get("cost")) or Decimal(0) for f in fees), Decimal(0))
        return total, _text(currencies.pop())
    return None, None


def _decimal(value: object) -> Decimal | None:
    """A ccxt number (float, int, numeric string) as a Decimal, or ``None``."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _required_decimal(value: object, name: str) -> Decimal:
    number = _decimal(value)
    if number is None:
        raise ValueError(f"{name} must be a number, not {value!r}")
    return number


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _describe(error: BaseException) -> str:
    text = " ".join(redact(str(error)).split())
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(error).__name__}: {text}"
