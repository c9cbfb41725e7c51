"""Orders the code before claims (ADR 0017) left unsettled are looked up before any
re-send: the data step of migration signals/0012."""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from signals.models import ExchangeOrder
from signals.tests.factories import SignalFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("signals.migrations.0012_order_claims")


def _order(status: str) -> ExchangeOrder:
    signal = SignalFactory()
    return ExchangeOrder.objects.create(
        book=signal.book,
        signal=signal,
        purpose="entry",
        exchange="kraken",
        symbol="BTC/USD",
        side="buy",
        amount=Decimal("0.01"),
        client_order_id=f"cid-{status}-{signal.pk}",
        status=status,
    )


def test_new_and_unknown_orders_become_unknown_and_are_looked_up_first():
    before = timezone.now()
    maybe_sent = [_order("new"), _order("unknown")]
    settled = [_order("closed"), _order("open"), _order("rejected")]

    migration.unclaimed_sends_are_looked_up_first(apps, connection.schema_editor())

    for order in maybe_sent:
        order.refresh_from_db()
        assert (order.status, order.sends) == ("unknown", 1)
        assert order.visible_by is not None and order.visible_by >= before
    for order in settled:
        status = order.status
        order.refresh_from_db()
        assert (order.status, order.sends, order.visible_by) == (status, 0, None)
