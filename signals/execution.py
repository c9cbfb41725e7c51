"""Live execution: real orders for the approved signals of live-flagged strategies.

Only when the process runs with ``TRADING_MODE=live`` and the book's frozen strategy
has its ``live`` flag. The engine keeps deciding and paper-trading exactly as in paper
mode (the signal's states follow the fill model); these orders are what the exchange
did, kept beside the paper trade so the two can be compared.

One order per intent (ADR 0017). Every order is first written as an ``ExchangeOrder``
row with a client order id derived from the book, the signal and the purpose. Before
each send a pass claims it: a conditional update from the status and send count it read
to ``sending``; only the pass whose update changed the row sends, so two execute passes,
two settle passes, or one of each, never send one order twice. A send whose outcome is
unknown (timeout, network error, a worker that died holding the claim) is sent again
only after a lookup by client order id, begun once the send's ``visible_by`` had passed
(claim + client timeout + the exchange's visibility delay), found nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F
from django.db.models.functions import Now

from markets.errors import (
    ExchangeRequestError,
    ExchangeUnavailableError,
    OrderError,
    OrderNotPlacedError,
    OrderStateUnknownError,
)
from markets.orders import OrderGateway, OrderRequest, OrderResult, client_order_id_for
from signals.economics import UnsizableSignalError, economics_seed, signal_notional
from signals.models import Book, ExchangeOrder, PaperTrade, Signal, SignalState

logger = logging.getLogger("signals")

_AMOUNT_PLACES = Decimal("0.00000001")
# Signals that passed the guards and were paid on paper: the ones a live book trades.
_ENTERED_STATES = (SignalState.APPROVED, SignalState.EXECUTED, SignalState.CLOSED)
_UNSETTLED = (
    ExchangeOrder.Status.NEW,
    ExchangeOrder.Status.SENDING,
    ExchangeOrder.Status.UNKNOWN,
    ExchangeOrder.Status.OPEN,
)
# A claim covers a send that starts within this many seconds of it (the markets are loaded
# before claiming, so a send starts at once); one due later is not sent (see ``place``).
SEND_START_SECONDS = 0.5


@dataclass
class ExecutionReport:
    """What one pass did, by client order id."""

    recorded: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    # Not looked at or not proven absent yet: another pass holds the claim, or its send's
    # visibility window has not passed.
    waiting: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "recorded": self.recorded,
            "sent": self.sent,
            "found": self.found,
            "unknown": self.unknown,
            "waiting": self.waiting,
        }


def orders_record_due(*, book: Book, exchange: str, now: datetime) -> list[ExchangeOrder]:
    """Write, before anything is sent, the orders ``book``'s live signals need now: an
    entry for each approved signal of a live-flagged strategy on ``exchange`` decided
    within ``SIGNAL_MAX_AGE`` of ``now``, and an exit for each of those whose paper trade
    has closed after a filled entry. Idempotent: one order per signal and purpose."""
    live = Signal.objects.filter(book=book, exchange=exchange, book_strategy__live=True)
    entries = live.filter(
        state__in=_ENTERED_STATES, decided_at__gte=now - settings.SIGNAL_MAX_AGE
    ).exclude(orders__purpose=ExchangeOrder.Purpose.ENTRY)
    exits = (
        ExchangeOrder.objects.filter(
            book=book,
            purpose=ExchangeOrder.Purpose.ENTRY,
            status=ExchangeOrder.Status.CLOSED,
            filled__gt=0,
            signal__state=SignalState.CLOSED,
        )
        .exclude(signal__orders__purpose=ExchangeOrder.Purpose.EXIT)
        .select_related("signal")
    )
    due = []
    for signal in entries:
        try:
            amount = _entry_amount(book, signal)
        except UnsizableSignalError as exc:
            # Recorded nowhere: nothing is sent for it, and it is said why.
            logger.error("[LIVE] %s: signal %s not sized: %s", book.name, signal.pk, exc)
            continue
        due.append(_order(book, signal, ExchangeOrder.Purpose.ENTRY, amount))
    due += [
        _order(book, entry.signal, ExchangeOrder.Purpose.EXIT, entry.filled or Decimal(0))
        for entry in exits
        if _paper_closed(entry.signal)
    ]
    recorded = []
    for order in due:
        try:
            with transaction.atomic():
                order.save()
        except IntegrityError:
            continue  # another worker recorded it first; it sends it too
        recorded.append(order)
    return recorded


def order_submit(
    *, order: ExchangeOrder, gateway: OrderGateway, proven_absent_at: datetime | None = None
) -> bool:
    """Claim ``order`` and, when this pass won the claim, send it and keep what the
    exchange answered. Returns whether this pass sent it.

    A ``new`` order is claimed as it is. An order sent before (``unknown``, or
    ``sending`` with a claim whose window has passed) is claimed only with
    ``proven_absent_at``: the database time a lookup that found nothing began, which
    must not be before the last send's ``visible_by``. A send whose fate stays unknown
    leaves the order ``unknown``, to be looked up, never resent blindly."""
    gateway.ready()  # a slow markets load must not eat into the claim's window
    if not _claim(order, gateway=gateway, proven_absent_at=proven_absent_at):
        return False
    request = OrderRequest(
        symbol=order.symbol,
        side="buy" if order.side == "buy" else "sell",
        amount=order.amount,
        client_order_id=order.client_order_id,
    )
    try:
        result = gateway.place(request, send_before=time.monotonic() + SEND_START_SECONDS)
    except OrderNotPlacedError as error:
        # Nothing left, but "unknown" costs one lookup after the window and is never wrong.
        _write(order, status=ExchangeOrder.Status.UNKNOWN, reason=str(error))
    except OrderStateUnknownError as error:
        _write(order, status=ExchangeOrder.Status.UNKNOWN, reason=str(error))
    except OrderError as error:
        _write(order, status=ExchangeOrder.Status.REJECTED, reason=str(error))
    except BaseException as error:
        _write(order, status=ExchangeOrder.Status.UNKNOWN, reason=f"sending failed: {error!r}")
        raise
    else:
        _apply(order, result)
    return True


def orders_settle(*, gateway: OrderGateway, now: datetime) -> ExecutionReport:
    """Find out what became of every unsettled order (at worker start, and before each
    pass): a ``new`` one never left, so it is sent (or marked rejected when older than
    ``SIGNAL_MAX_AGE``); any other is looked up by its client order id: found, it is
    recorded; absent, and the lookup began after its last send's ``visible_by``, it never
    reached the exchange and is sent again (or marked rejected when too old). One that
    another pass is sending right now is left alone."""
    report = ExecutionReport()
    unsettled = ExchangeOrder.objects.filter(status__in=_UNSETTLED, exchange=gateway.exchange_id)
    for order in unsettled:
        cid = order.client_order_id
        too_old = order.created_at < now - settings.SIGNAL_MAX_AGE
        if order.status == ExchangeOrder.Status.NEW:
            if too_old:
                _write(order, status=ExchangeOrder.Status.REJECTED, reason=_TOO_LATE)
            elif order_submit(order=order, gateway=gateway):
                report.sent.append(cid)
            continue
        if order.status != ExchangeOrder.Status.OPEN and order.visible_by is None:
            # No window on record (a row written by hand): no lookup can prove it absent
            # before one has passed from now.
            _write(order, visible_by=_window_from_now(gateway))
            report.waiting.append(cid)
            continue
        asked_at = _database_now(order)
        not_listed_yet = order.visible_by is not None and order.visible_by > asked_at
        if order.status == ExchangeOrder.Status.SENDING and not_listed_yet:
            report.waiting.append(cid)  # another pass is sending it now
            continue
        try:
            found = gateway.lookup(cid, order.symbol)
        except (ExchangeUnavailableError, ExchangeRequestError, OrderError) as error:
            logger.warning("[EXECUTION] %s could not be looked up: %s", cid, error)
            report.unknown.append(cid)
            continue
        if found is not None:
            _apply(order, found)
            report.found.append(cid)
        elif order.status == ExchangeOrder.Status.OPEN:
            continue  # listed as open before: a lag of the exchange's lists, look again
        elif not_listed_yet:
            report.waiting.append(cid)  # not listed yet proves nothing
        elif too_old:
            _write(order, status=ExchangeOrder.Status.REJECTED, reason=_TOO_LATE, asked=asked_at)
        elif order_submit(order=order, gateway=gateway, proven_absent_at=asked_at):
            report.sent.append(cid)
    return report


def book_execute(*, book_id: int, gateway: OrderGateway, now: datetime) -> ExecutionReport:
    """One pass of live execution for a book: settle what earlier passes left open,
    record the orders due now, and send them one by one (each only if this pass wins
    its claim)."""
    book = Book.objects.get(pk=book_id)
    report = orders_settle(gateway=gateway, now=now)
    for order in orders_record_due(book=book, exchange=gateway.exchange_id, now=now):
        report.recorded.append(order.client_order_id)
        if not order_submit(order=order, gateway=gateway):
            continue  # another pass (a settle) claimed it first and sends it
        report.sent.append(order.client_order_id)
        logger.info(
            "[EXECUTION] book=%s signal=%s %s %s %s %s: %s",
            book.name,
            order.signal_id,
            order.purpose,
            order.side,
            order.amount,
            order.symbol,
            order.status,
        )
    return report


_TOO_LATE = "never reached the exchange, and too late to send now"


def _claim(
    order: ExchangeOrder, *, gateway: OrderGateway, proven_absent_at: datetime | None
) -> bool:
    """Take the right to send ``order`` once more: a conditional update from the status
    and send count read, so of passes racing for it exactly one changes the row."""
    claimable = ExchangeOrder.objects.filter(pk=order.pk, status=order.status, sends=order.sends)
    if order.status != ExchangeOrder.Status.NEW:
        if proven_absent_at is None:
            return False
        claimable = claimable.filter(visible_by__lte=proven_absent_at)
    won = claimable.update(
        status=ExchangeOrder.Status.SENDING,
        sends=F("sends") + 1,
        claimed_at=Now(),
        visible_by=_window_from_now(gateway),
        updated_at=Now(),
    )
    if won != 1:
        return False
    order.refresh_from_db(fields=["status", "sends", "claimed_at", "visible_by", "updated_at"])
    return True


def _window_from_now(gateway: OrderGateway) -> ExpressionWrapper:
    """When a send starting now is listed by the exchange if it took it: the start's
    grace, the client's timeout and the exchange's visibility delay from now (database
    clock)."""
    window = timedelta(
        seconds=SEND_START_SECONDS + gateway.send_timeout_seconds + gateway.visibility_seconds
    )
    return ExpressionWrapper(Now() + window, output_field=DateTimeField())


def _database_now(order: ExchangeOrder) -> datetime:
    """The database's clock, the one claims are stamped with (no two workers' clocks
    need to agree)."""
    return (
        ExchangeOrder.objects.filter(pk=order.pk)
        .annotate(database_now=Now())
        .values_list("database_now", flat=True)
        .get()
    )


def _order(book: Book, signal: Signal, purpose: str, amount: Decimal) -> ExchangeOrder:
    buying = (signal.side == "long") == (purpose == ExchangeOrder.Purpose.ENTRY)
    return ExchangeOrder(
        book=book,
        signal=signal,
        purpose=purpose,
        exchange=signal.exchange,
        symbol=signal.symbol,
        side="buy" if buying else "sell",
        amount=amount,
        client_order_id=client_order_id_for(book.pk, signal.pk, purpose),
    )


def _entry_amount(book: Book, signal: Signal) -> Decimal:
    """The base amount worth the notional the book's frozen economics give the signal
    (what its paper trade was sized by) at the signal's reference price."""
    notional = signal_notional(economics=book.economics or economics_seed(), signal=signal)
    return (notional / signal.entry_price).quantize(_AMOUNT_PLACES)


def _paper_closed(signal: Signal) -> bool:
    return PaperTrade.objects.filter(signal=signal, status=PaperTrade.Status.CLOSED).exists()


def _apply(order: ExchangeOrder, result: OrderResult) -> bool:
    return _write(
        order,
        status=result.status,
        exchange_order_id=result.exchange_order_id or "",
        filled=result.filled,
        average_price=result.average_price,
        fee_cost=result.fee_cost,
        fee_currency=result.fee_currency or "",
        reason=result.reason or "",
    )


def _write(order: ExchangeOrder, *, asked: datetime | None = None, **fields: object) -> bool:
    """Write ``fields`` only if the order is still as this pass read it (status and send
    count): a pass that lost it to another (a claim, a newer fate) changes nothing.
    ``asked``: only if that moment is past the last send's ``visible_by`` too."""
    current = ExchangeOrder.objects.filter(pk=order.pk, status=order.status, sends=order.sends)
    if asked is not None and order.visible_by is not None:
        current = current.filter(visible_by__lte=asked)
    if current.update(**fields, updated_at=Now()) != 1:
        logger.warning(
            "[EXECUTION] %s changed under this pass (now not %s, send %d): left as it is",
            order.client_order_id,
            order.status,
            order.sends,
        )
        return False
    for name, value in fields.items():
        setattr(order, name, value)
    return True


def positions_reconcile(*, gateway: OrderGateway) -> dict[str, object]:
    """Compare the orders and positions the book's real orders account for with the
    exchange (at worker start): orders believed open that closed since are recorded;
    each base currency's net filled amount is set beside the account's balance, and a
    difference is logged (holdings from outside this system show up there too)."""
    orders = ExchangeOrder.objects.filter(exchange=gateway.exchange_id)
    open_orders = {o.client_order_id: o for o in orders.filter(status=ExchangeOrder.Status.OPEN)}
    positions: dict[str, Decimal] = {}
    for order in orders.filter(filled__gt=0):
        base = order.symbol.split("/", 1)[0]
        signed = order.filled if order.side == "buy" else -(order.filled or Decimal(0))
        positions[base] = positions.get(base, Decimal(0)) + (signed or Decimal(0))
    report = gateway.reconcile(
        [(cid, order.symbol) for cid, order in open_orders.items()], local_positions=positions
    )
    for result in report.closed_since:
        if result.client_order_id in open_orders:
            _apply(open_orders[result.client_order_id], result)
    for difference in report.positions:
        logger.warning(
            "[EXECUTION] %s: the orders here account for %s %s, the account holds %s",
            gateway.exchange_id,
            difference.local,
            difference.currency,
            difference.exchange,
        )
    return report.as_dict()
