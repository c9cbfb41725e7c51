"""Live execution: real orders for a live book's live-flagged signals, through a real
``ccxt.binance`` whose HTTP layer answers in Binance's documented format."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from markets.orders import OrderGateway, client_order_id_for
from markets.services import candles_upsert
from markets.synthetic import synthetic_bars
from markets.tests.recorded_http import (
    Reply,
    binance_error,
    binance_fed,
    json_reply,
    request_params,
    request_path,
)
from shadow.live import book_advance
from signals.execution import book_execute, orders_settle, positions_reconcile
from signals.models import ExchangeOrder, Signal, StrategyConfig
from signals.services import book_live, guard_configs_default
from signals.tasks import execute_book

pytestmark = pytest.mark.django_db

CREATE = ("POST", "/api/v3/order")
LOOKUP = ("GET", "/api/v3/order")


class Binance:
    """Answers order requests like Binance spot: every market order fills at once."""

    def __init__(
        self,
        *,
        refuse: bool = False,
        known: dict[str, dict] | None = None,
        balances: dict[str, Decimal] | None = None,
    ) -> None:
        self.refuse = refuse
        self.known = known or {}
        self.balances = balances or {}

    def __call__(self, request) -> Reply:
        key = (request.method, request_path(request))
        params = request_params(request)
        if key == CREATE:
            if self.refuse:
                return binance_error(
                    -2010, "Account has insufficient balance for requested action."
                )
            order = _filled(params["newClientOrderId"], params["side"], params["quantity"])
            self.known[order["clientOrderId"]] = order
            return json_reply(order)
        if key == ("GET", "/api/v3/openOrders"):
            return json_reply([])
        if key == ("GET", "/api/v3/account"):
            return json_reply(
                {
                    "makerCommission": 10,
                    "takerCommission": 10,
                    "canTrade": True,
                    "updateTime": 1_700_000_000_000,
                    "accountType": "SPOT",
                    "balances": [
                        {"asset": asset, "free": str(amount), "locked": "0.00000000"}
                        for asset, amount in self.balances.items()
                    ],
                }
            )
        if key == LOOKUP:
            found = self.known.get(params["origClientOrderId"])
            if found is None:
                return binance_error(-2013, "Order does not exist.")
            return json_reply({k: v for k, v in found.items() if k != "fills"})
        raise AssertionError(f"unplanned request {key}")


def _filled(client_id: str, side: str, quantity: str) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "orderId": abs(hash(client_id)) % 10**9,
        "orderListId": -1,
        "clientOrderId": client_id,
        "transactTime": 1_700_000_000_000,
        "price": "0.00000000",
        "origQty": quantity,
        "executedQty": quantity,
        "cummulativeQuoteQty": str(Decimal(quantity) * 30000),
        "status": "FILLED",
        "timeInForce": "GTC",
        "type": "MARKET",
        "side": side,
        "fills": [
            {
                "price": "30000.00000000",
                "qty": quantity,
                "commission": "0.00000100",
                "commissionAsset": "BTC",
                "tradeId": 1,
            }
        ],
    }


@pytest.fixture
def live_book(settings):
    settings.SIGNAL_MAX_AGE = timedelta(days=12)
    now = timezone.now()
    bars = synthetic_bars(timeframe=timedelta(hours=1), count=800, end=now, seed=21)
    candles_upsert(
        exchange="binance", symbol="BTC/USDT", timeframe="1h", bars=bars, source="synthetic"
    )
    StrategyConfig.objects.create(
        name="ema live",
        kind="ema_crossover",
        exchange="binance",
        symbol="BTC/USDT",
        timeframe="1h",
        live=True,
    )
    guard_configs_default()
    book = book_live()
    book_advance(book_id=book.pk, now=now)
    assert Signal.objects.filter(book=book, state="closed").exists()
    return book, now


def gateway(responder: Binance) -> tuple[OrderGateway, Any]:
    exchange, adapter = binance_fed(responder)
    return OrderGateway(
        exchange, sleep=lambda _s: None, settle_seconds=0, backoff_seconds=0
    ), adapter


def creates(adapter) -> list[dict[str, str]]:
    return [request_params(r) for r in adapter.requests if (r.method, request_path(r)) == CREATE]


def test_each_live_signal_gets_one_entry_then_one_exit_each_sent_once(live_book):
    book, now = live_book
    venue = Binance()
    orders_gateway, adapter = gateway(venue)
    passes = [book_execute(book_id=book.pk, gateway=orders_gateway, now=now) for _ in range(3)]

    due = Signal.objects.filter(
        book=book,
        state__in=["approved", "executed", "closed"],
        decided_at__gte=now - timedelta(days=12),
    )
    entries = ExchangeOrder.objects.filter(book=book, purpose="entry")
    assert entries.count() == due.count() > 0
    for order in entries.select_related("signal"):
        assert order.client_order_id == client_order_id_for(book.pk, order.signal_id, "entry")
        assert order.side == ("buy" if order.signal.side == "long" else "sell")
        assert order.status == "closed"
        # ccxt rounds the amount down to the market's lot size before sending it.
        assert order.amount - Decimal("0.00001") < order.filled <= order.amount
        assert order.amount == (Decimal(1000) / order.signal.entry_price).quantize(Decimal("1e-8"))
    exits = ExchangeOrder.objects.filter(book=book, purpose="exit").select_related("signal")
    assert {o.signal_id for o in exits} == set(
        due.filter(state="closed").values_list("pk", flat=True)
    )
    assert all(o.side != entries.get(signal=o.signal).side for o in exits)
    # Every order went out exactly once, with its own client order id.
    sent = [p["newClientOrderId"] for p in creates(adapter)]
    assert sorted(sent) == sorted(ExchangeOrder.objects.values_list("client_order_id", flat=True))
    assert passes[-1].sent == []


def test_a_worker_that_died_after_recording_finds_its_order_instead_of_sending_it_again(live_book):
    book, now = live_book
    signal = Signal.objects.filter(book=book, state__in=["executed", "closed"]).last()
    order = ExchangeOrder.objects.create(
        book=book,
        signal=signal,
        purpose="entry",
        exchange="binance",
        symbol="BTC/USDT",
        side="buy",
        amount=Decimal("0.03"),
        client_order_id=client_order_id_for(book.pk, signal.pk, "entry"),
        # The worker had claimed the send, and its window has passed.
        status="sending",
        sends=1,
        visible_by=timezone.now() - timedelta(seconds=1),
    )
    # The exchange did receive it before the worker died.
    venue = Binance(known={order.client_order_id: _filled(order.client_order_id, "BUY", "0.03")})
    orders_gateway, adapter = gateway(venue)

    report = orders_settle(gateway=orders_gateway, now=now)

    order.refresh_from_db()
    assert report.found == [order.client_order_id]
    assert order.status == "closed" and order.filled == Decimal("0.03")
    assert creates(adapter) == []


def test_an_order_recorded_but_never_sent_is_sent_once_with_its_own_client_id(live_book):
    book, now = live_book
    signal = Signal.objects.filter(book=book, state__in=["executed", "closed"]).last()
    order = ExchangeOrder.objects.create(
        book=book,
        signal=signal,
        purpose="entry",
        exchange="binance",
        symbol="BTC/USDT",
        side="buy",
        amount=Decimal("0.03"),
        client_order_id=client_order_id_for(book.pk, signal.pk, "entry"),
    )
    orders_gateway, adapter = gateway(Binance())

    report = orders_settle(gateway=orders_gateway, now=now)

    order.refresh_from_db()
    assert report.sent == [order.client_order_id]
    assert [p["newClientOrderId"] for p in creates(adapter)] == [order.client_order_id]
    assert order.status == "closed"


def _sent_once_unknown(book, **fields) -> ExchangeOrder:
    """An entry sent once whose fate the exchange has not told (the send timed out)."""
    signal = Signal.objects.filter(book=book, state__in=["executed", "closed"]).last()
    order = ExchangeOrder.objects.create(
        book=book,
        signal=signal,
        purpose="entry",
        exchange="binance",
        symbol="BTC/USDT",
        side="buy",
        amount=Decimal("0.03"),
        client_order_id=client_order_id_for(book.pk, signal.pk, "entry"),
        status="unknown",
        sends=1,
    )
    ExchangeOrder.objects.filter(pk=order.pk).update(**fields)
    order.refresh_from_db()
    return order


def test_an_unknown_order_not_listed_before_its_window_passed_waits(live_book):
    book, now = live_book
    order = _sent_once_unknown(book, visible_by=timezone.now() + timedelta(seconds=30))
    orders_gateway, adapter = gateway(Binance())

    report = orders_settle(gateway=orders_gateway, now=now)

    order.refresh_from_db()
    assert report.waiting == [order.client_order_id]
    assert (order.status, order.sends) == ("unknown", 1)
    assert creates(adapter) == []
    assert [request_path(r) for r in adapter.requests] == ["/api/v3/order"]  # the lookup


def test_an_unknown_order_proven_absent_after_its_window_is_sent_once_more(live_book):
    book, now = live_book
    order = _sent_once_unknown(book, visible_by=timezone.now() - timedelta(seconds=1))
    orders_gateway, adapter = gateway(Binance())

    first = orders_settle(gateway=orders_gateway, now=now)
    second = orders_settle(gateway=orders_gateway, now=now)

    order.refresh_from_db()
    assert first.sent == [order.client_order_id] and second.sent == []
    assert (order.status, order.sends) == ("closed", 2)
    assert [p["newClientOrderId"] for p in creates(adapter)] == [order.client_order_id]


def test_an_unknown_order_proven_absent_but_too_old_is_rejected_not_sent(live_book, settings):
    book, now = live_book
    order = _sent_once_unknown(
        book,
        visible_by=timezone.now() - timedelta(seconds=1),
        created_at=now - settings.SIGNAL_MAX_AGE - timedelta(minutes=1),
    )
    orders_gateway, adapter = gateway(Binance())

    orders_settle(gateway=orders_gateway, now=now)

    order.refresh_from_db()
    assert order.status == "rejected" and "too late" in order.reason
    assert creates(adapter) == []


def test_an_unknown_order_with_no_window_on_record_gets_one_and_waits(live_book, settings):
    settings.ORDER_VISIBILITY_SECONDS = {"binance": 5.0}
    book, now = live_book
    order = _sent_once_unknown(book, visible_by=None)
    orders_gateway, adapter = gateway(Binance())
    before = timezone.now()

    report = orders_settle(gateway=orders_gateway, now=now)

    order.refresh_from_db()
    assert report.waiting == [order.client_order_id]
    assert order.status == "unknown" and order.visible_by is not None
    # start 0.5 s + the client's 10 s timeout + the exchange's 5 s
    assert order.visible_by >= before + timedelta(seconds=15.5)
    assert adapter.requests == []


def test_an_order_another_pass_is_sending_is_left_alone(live_book):
    book, now = live_book
    order = _sent_once_unknown(
        book, status="sending", visible_by=timezone.now() + timedelta(seconds=30)
    )
    orders_gateway, adapter = gateway(Binance())

    report = orders_settle(gateway=orders_gateway, now=now)

    order.refresh_from_db()
    assert report.waiting == [order.client_order_id]
    assert order.status == "sending"
    assert adapter.requests == []  # not even looked up


def test_a_refused_entry_is_recorded_with_its_reason_and_never_retried(live_book):
    book, now = live_book
    orders_gateway, adapter = gateway(Binance(refuse=True))
    book_execute(book_id=book.pk, gateway=orders_gateway, now=now)
    refused = ExchangeOrder.objects.filter(book=book)
    assert refused.exists()
    assert set(refused.values_list("status", flat=True)) == {"rejected"}
    assert "insufficient balance" in refused.first().reason.lower()
    before = len(creates(adapter))
    book_execute(book_id=book.pk, gateway=orders_gateway, now=now)
    assert len(creates(adapter)) == before


def test_signals_of_a_strategy_without_the_live_flag_place_nothing(live_book):
    book, now = live_book
    from signals.models import BookStrategy

    BookStrategy.objects.filter(book=book).update(live=False)
    orders_gateway, adapter = gateway(Binance())
    book_execute(book_id=book.pk, gateway=orders_gateway, now=now)
    assert adapter.requests == []
    assert not ExchangeOrder.objects.exists()


def test_in_paper_mode_the_execution_task_places_nothing(live_book, settings):
    book, _ = live_book
    settings.TRADING_MODE = "paper"
    assert execute_book(book.pk) == {"skipped": "paper mode"}
    assert not ExchangeOrder.objects.exists()


def test_at_worker_start_positions_are_compared_with_the_account(live_book, caplog):
    book, now = live_book
    venue = Binance()
    orders_gateway, _ = gateway(venue)
    book_execute(book_id=book.pk, gateway=orders_gateway, now=now)
    net = Decimal(0)
    for order in ExchangeOrder.objects.filter(filled__gt=0):
        net += order.filled if order.side == "buy" else -order.filled

    venue.balances = {"BTC": net, "USDT": Decimal(5000)}
    assert positions_reconcile(gateway=orders_gateway)["positions"] == []

    venue.balances = {"BTC": net + Decimal("0.5")}
    with caplog.at_level("WARNING", logger="signals"):
        report = positions_reconcile(gateway=orders_gateway)
    assert [p["currency"] for p in report["positions"]] == ["BTC"]
    assert "the account holds" in caplog.text
