"""Live execution: real orders for the approved signals of live-flagged strategies.

Only when the process runs with ``TRADING_MODE=live`` and the book's frozen strategy
has its ``live`` flag. The engine keeps deciding and paper-trading exactly as in paper
mode (the signal's states follow the fill model); these orders are what the exchange
did, kept beside the paper trade so the two can be compared.

Every order is first written as an ``ExchangeOrder`` row with a client order id derived
from the book, the signal and the purpose, and only then sent. So a worker that dies
mid-send leaves a row that the next run (or the reconciliation at worker start) looks
up by that id: found, it is recorded; absent, it was never placed. An order is never
sent twice blindly (``markets.orders.OrderGateway.place`` owns that rule on timeouts).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction

from markets.errors import (
    ExchangeRequestError,
    ExchangeUnavailableError,
    OrderError,
    OrderStateUnknownError,
)
from markets.orders import OrderGateway, OrderRequest, OrderResult, client_order_id_for
from signals.models import Book, ExchangeOrder, PaperTrade, Signal, SignalState

logger = logging.getLogger("signals")

_AMOUNT_PLACES = Decimal("0.00000001")
# Signals that passed the guards and were paid on paper: the ones a live book trades.
_ENTERED_STATES = (SignalState.APPROVED, SignalState.EXECUTED, SignalState.CLOSED)
_UNSETTLED = (ExchangeOrder.Status.NEW, ExchangeOrder.Status.OPEN, ExchangeOrder.Status.UNKNOWN)


@dataclass
class ExecutionReport:
    """What one pass did, by client order id."""

    recorded: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "recorded": self.recorded,
            "sent": self.sent,
            "found": self.found,
            "unknown": self.unknown,
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
    due = [
        _order(book, signal, ExchangeOrder.Purpose.ENTRY, _entry_amount(signal))
        for signal in entries
    ]
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


def order_submit(*, order: ExchangeOrder, gateway: OrderGateway) -> ExchangeOrder:
    """Send a recorded order and keep what the exchange answered. A send whose fate the
    exchange could not tell leaves the order ``unknown``, to be looked up, not resent."""
    request = OrderRequest(
        symbol=order.symbol,
        side="buy" if order.side == "buy" else "sell",
        amount=order.amount,
        client_order_id=order.client_order_id,
    )
    try:
        result = gateway.place(request)
    except OrderStateUnknownError as error:
        return _update(order, status=ExchangeOrder.Status.UNKNOWN, reason=str(error))
    except OrderError as error:
        return _update(order, status=ExchangeOrder.Status.REJECTED, reason=str(error))
    return _apply(order, result)


def orders_settle(*, gateway: OrderGateway, now: datetime) -> ExecutionReport:
    """Look every unsettled order up by its client order id (at worker start, and before
    each pass): found, record it; absent and recorded recently, send it (it never left);
    absent and older than ``SIGNAL_MAX_AGE``, mark it rejected (too late to enter)."""
    report = ExecutionReport()
    unsettled = ExchangeOrder.objects.filter(status__in=_UNSETTLED, exchange=gateway.exchange_id)
    for order in unsettled:
        try:
            found = gateway.lookup(order.client_order_id, order.symbol)
        except (ExchangeUnavailableError, ExchangeRequestError, OrderError) as error:
            logger.warning(
                "[EXECUTION] %s could not be looked up: %s", order.client_order_id, error
            )
            report.unknown.append(order.client_order_id)
            continue
        if found is not None:
            _apply(order, found)
            report.found.append(order.client_order_id)
        elif (
            order.status == ExchangeOrder.Status.NEW
            and order.created_at >= now - settings.SIGNAL_MAX_AGE
        ):
            order_submit(order=order, gateway=gateway)
            report.sent.append(order.client_order_id)
        elif order.status != ExchangeOrder.Status.OPEN:
            _update(
                order,
                status=ExchangeOrder.Status.REJECTED,
                reason="never reached the exchange, and too late to send now",
            )
    return report


def book_execute(*, book_id: int, gateway: OrderGateway, now: datetime) -> ExecutionReport:
    """One pass of live execution for a book: settle what earlier passes left open,
    record the orders due now, and send them one by one."""
    book = Book.objects.get(pk=book_id)
    report = orders_settle(gateway=gateway, now=now)
    for order in orders_record_due(book=book, exchange=gateway.exchange_id, now=now):
        report.recorded.append(order.client_order_id)
        order_submit(order=order, gateway=gateway)
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


def _entry_amount(signal: Signal) -> Decimal:
    """The base amount worth the configured notional at the signal's reference price."""
    return (settings.FILL_NOTIONAL / signal.entry_price).quantize(_AMOUNT_PLACES)


def _paper_closed(signal: Signal) -> bool:
    return PaperTrade.objects.filter(signal=signal, status=PaperTrade.Status.CLOSED).exists()


def _apply(order: ExchangeOrder, result: OrderResult) -> ExchangeOrder:
    return _update(
        order,
        status=result.status,
        exchange_order_id=result.exchange_order_id or "",
        filled=result.filled,
        average_price=result.average_price,
        fee_cost=result.fee_cost,
        fee_currency=result.fee_currency or "",
        reason=result.reason or "",
    )


def _update(order: ExchangeOrder, **fields: object) -> ExchangeOrder:
    for name, value in fields.items():
        setattr(order, name, value)
    order.save(update_fields=[*fields, "updated_at"])
    return order


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
