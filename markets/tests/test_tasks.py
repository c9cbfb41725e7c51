from datetime import UTC, datetime, timedelta

import ccxt
import pytest
import time_machine

from config.celery import app
from config.task_base import DATABASE_ERRORS
from markets.errors import ExchangeRequestError, ExchangeUnavailableError
from markets.gateway import DEFAULT_MAX_ATTEMPTS, ExchangeGateway
from markets.models import Candle
from markets.tasks import sync_candles
from markets.tests.recorded_http import (
    READ_TIMEOUT,
    SERVICE_UNAVAILABLE,
    TOO_MANY_REQUESTS,
    KrakenOHLC,
    kraken_fed,
    kraken_row,
)
from markets.tests.test_gateway import since_param

NOW = datetime(2024, 1, 1, 12, 30, 20, tzinfo=UTC)
T0_S = int(datetime(2024, 1, 1, 12, 0, tzinfo=UTC).timestamp())
ROWS = [kraken_row(T0_S + 60 * i, "42000", "42010", "41990", "42005") for i in range(31)]


@pytest.fixture
def adapter(monkeypatch):
    exchange, adapter = kraken_fed(KrakenOHLC("XXBTZUSD", ROWS))
    monkeypatch.setattr(
        "markets.gateway.build_exchange", lambda exchange_id, timeout_ms=None: exchange
    )
    return adapter


def test_task_is_registered_by_name_and_leaves_retries_to_the_gateway():
    task = app.tasks["markets.sync_candles"]

    assert task.name == "markets.sync_candles"
    # One retry layer for exchange errors: the gateway's bounded backoff. Celery retries
    # only database errors (every task does), never an exchange error on top of it.
    assert set(task.autoretry_for) == set(DATABASE_ERRORS)
    exchange_errors = [ExchangeUnavailableError, ExchangeRequestError, ccxt.BaseError]
    assert not [e for e in exchange_errors if issubclass(e, tuple(task.autoretry_for))]


@pytest.mark.django_db
@pytest.mark.parametrize("run", ["called-directly", "applied"])
@pytest.mark.parametrize(
    "failure", [SERVICE_UNAVAILABLE, READ_TIMEOUT, TOO_MANY_REQUESTS], ids=["503", "timeout", "429"]
)
def test_a_failing_sync_sends_at_most_the_gateways_attempts(monkeypatch, run, failure):
    """Celery autoretry around the gateway's own retries used to make 6 x 5 = 30 requests to
    an exchange that is down; now a failing sync costs the gateway's budget and no more.
    ``apply()`` runs the task eagerly, where Celery would also run any retries in place."""
    exchange, adapter = kraken_fed([failure] * (DEFAULT_MAX_ATTEMPTS * 10))
    sleeps: list[float] = []

    def for_exchange(cls, exchange_id, *, timeout_ms=None, **options):
        return cls(exchange, sleep=sleeps.append, backoff_seconds=0)

    monkeypatch.setattr(ExchangeGateway, "for_exchange", classmethod(for_exchange))

    with time_machine.travel(NOW, tick=False):
        if run == "called-directly":
            with pytest.raises(ExchangeUnavailableError):
                sync_candles("kraken", "BTC/USD", "1m", lookback_minutes=30)
        else:
            outcome = sync_candles.apply(
                args=("kraken", "BTC/USD", "1m"), kwargs={"lookback_minutes": 30}
            )
            assert outcome.failed()
            assert isinstance(outcome.result, ExchangeUnavailableError)

    assert len(adapter.requests) == DEFAULT_MAX_ATTEMPTS
    assert len(sleeps) == DEFAULT_MAX_ATTEMPTS - 1


@pytest.mark.django_db
def test_task_syncs_a_market_from_the_lookback_to_now(adapter):
    with time_machine.travel(NOW, tick=False):
        result = sync_candles.apply(
            args=("kraken", "BTC/USD", "1m"), kwargs={"lookback_minutes": 30}
        ).get()

    assert result["loaded"] == 30
    assert result["dropped_open"] is True
    assert Candle.objects.filter(source="exchange").count() == 30
    assert since_param(adapter.requests[0]) == T0_S - 60


@pytest.mark.django_db
def test_task_continues_after_the_newest_stored_candle(adapter):
    with time_machine.travel(NOW, tick=False):
        sync_candles("kraken", "BTC/USD", "1m", lookback_minutes=30)
        result = sync_candles("kraken", "BTC/USD", "1m")

    assert since_param(adapter.requests[-1]) == T0_S + 29 * 60
    assert result["loaded"] == 0
    assert Candle.objects.count() == 30


@pytest.mark.django_db
def test_task_started_later_picks_up_the_new_candles(adapter):
    with time_machine.travel(NOW, tick=False):
        sync_candles("kraken", "BTC/USD", "1m", lookback_minutes=10)
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        result = sync_candles("kraken", "BTC/USD", "1m")

    assert result["created"] == 1
    newest = Candle.objects.order_by("open_time").last()
    assert newest is not None
    assert newest.open_time == datetime(2024, 1, 1, 12, 30, tzinfo=UTC)
