"""Exchange keys never in the database, the logs, the error pages or the admin.

Fake but distinctive credentials go to a real worker (environment) and to this process
(settings); the fake Kraken (config/tests/fake_exchange.py) answers every call with an
authentication failure that quotes them back, as a proxy or a chatty exchange would.
Then everything a person or a log collector can see is searched for them: the worker's
log, this process's log records, every page of the site and its JSON twin as a superuser,
every admin changelist and change page, the 404 and 500 pages, /healthz, and every row of
every table.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import path, reverse
from django.utils import timezone

from analytics.models import TaskHeartbeat
from analytics.pages import PAGES
from config import urls as project_urls
from config.celery import app
from config.tests import fake_exchange as fx
from markets.errors import ExchangeRequestError
from markets.gateway import ExchangeGateway
from markets.orders import OrderGateway, OrderRequest
from markets.services import candles_sync_latest
from signals.tests.factories import BookFactory

pytestmark = [pytest.mark.fault, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

API_KEY = "LEAKCHECK-key-Qx7+Zp/93=wv"
# Kraken signs with the base64-decoded secret, so the secret must be valid base64.
API_SECRET = base64.b64encode(b"LEAKCHECK secret bytes 7f3a9c0d1e2b>>??").decode()
SECRETS = (API_KEY, API_SECRET)
assert "+" in API_SECRET or "/" in API_SECRET or "=" in API_SECRET  # URL-encoding differs


def leaks(text: str) -> list[str]:
    """Every form of a credential found in ``text`` (plain, percent- or form-encoded)."""
    forms = {
        form for value in SECRETS for form in (value, quote(value, safe=""), quote_plus(value))
    }
    return sorted(form for form in forms if form in text)


def exchange_sync_view(request):
    """A page that reads candles and lets the exchange's refusal become a server error."""
    candles_sync_latest(exchange="kraken", symbol=fx.SYMBOL, timeframe="1m", now=timezone.now())


urlpatterns = [path("leak-check/sync/", exchange_sync_view), *project_urls.urlpatterns]


def _recorded_dir() -> Path:
    shared = Path(os.environ.get("SHARED_DIR", Path(settings.BASE_DIR).resolve().parent / "shared"))
    return shared / fx.RECORDED


@pytest.fixture
def kraken():
    recorded = _recorded_dir()
    if not recorded.is_dir():
        pytest.skip(f"recorded Kraken answers not available: {recorded} is absent (SHARED_DIR)")
    refusal = json.dumps(
        # A chatty refusal that quotes the whole request back, credentials included.
        {"error": ["EAPI:Invalid key"], "request": {"key": API_KEY, "secret": API_SECRET}}
    )
    server = fx.FakeKraken(
        recorded, private_answer=fx.Answer(body=refusal), echo_api_key=True
    ).start()
    server.refusal = fx.Answer(body=refusal)
    yield server
    server.stop()


@pytest.fixture
def exchange_settings(settings, kraken):
    settings.EXCHANGE_ID = "kraken"
    settings.EXCHANGE_API_KEY = API_KEY
    settings.EXCHANGE_API_SECRET = API_SECRET
    settings.EXCHANGE_API_URL = kraken.url
    settings.EXCHANGE_MAX_ATTEMPTS = 1
    settings.EXCHANGE_TIMEOUT_MS = 2000
    return settings


def run_worker_failures(kraken) -> str:
    """A live-mode worker with the credentials: at start it reconciles orders (a private,
    signed call: refused), then one candle sync is refused. Returns its whole log."""
    db = connection.settings_dict
    kraken.script(kraken.refusal)
    with fx.start_worker(
        base_dir=Path(settings.BASE_DIR),
        database_url=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        broker_url=settings.CELERY_BROKER_URL,
        log=Path(settings.BASE_DIR) / "var" / "test-secrets-worker.log",
        env={
            "EXCHANGE_ID": "kraken",
            "EXCHANGE_API_KEY": API_KEY,
            "EXCHANGE_API_SECRET": API_SECRET,
            "TRADING_MODE": "live",
            # ccxt logs every request's headers (API-Key among them) at DEBUG.
            "LOG_LEVEL": "DEBUG",
            "EXCHANGE_API_URL": kraken.url,
            "EXCHANGE_MAX_ATTEMPTS": "1",
            "EXCHANGE_TIMEOUT_MS": "2000",
            "ALERT_EXCHANGE_ERROR_STREAK": "1",
        },
    ) as worker:
        app.send_task(
            "markets.sync_candles",
            kwargs={"exchange": "kraken", "symbol": fx.SYMBOL, "timeframe": "1m"},
        )
        deadline = time.monotonic() + 30
        while TaskHeartbeat.objects.filter(failures__gte=1).count() < 2:
            assert time.monotonic() < deadline, worker.text()[-4000:]
            time.sleep(0.2)
    return worker.text()


def site_pages(client: Client, book_id: int) -> dict[str, str]:
    """Every page a superuser can open: analytics pages and their JSON twins, the API
    index, the admin index, every registered model's changelist and its rows' change
    pages, /healthz, a 404."""
    urls = ["/", "/api/v1/", "/healthz", "/admin/", "/no-such-page/", "/api/v1/no-such/"]
    for name, page in PAGES.items():
        urls += [f"/{page.path}?book={book_id}", f"/api/v1/{name}/?book={book_id}"]
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        for pk in model_admin.get_queryset(_request_for(client)).values_list("pk", flat=True)[:5]:
            urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[pk]))
    pages = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 302, 404), (url, response.status_code)
        pages[url] = response.content.decode(errors="replace")
    return pages


def _request_for(client: Client):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.get(username="ops")
    return request


def test_exchange_keys_appear_in_no_log_page_admin_or_table(
    kraken, exchange_settings, client, caplog
):
    # 1. The worker: a signed private call and a candle sync, both refused with the
    # credentials quoted back.
    worker_log = run_worker_failures(kraken)
    sent_keys = {seen.headers.get("API-Key") for seen in kraken.requests if seen.method == "POST"}
    assert sent_keys == {API_KEY}, "the worker never used the key: the test would prove nothing"
    beats = {beat.task: beat for beat in TaskHeartbeat.objects.all()}
    assert "ExchangeRequestError" in beats["signals.settle_orders"].last_error
    assert "***" in beats["markets.sync_candles"].last_error  # masked where it was quoted

    # 2. This process: a refused candle read, a refused order, a 500 page.
    caplog.set_level(logging.DEBUG)
    kraken.script(kraken.refusal)
    with pytest.raises(ExchangeRequestError) as refused:
        ExchangeGateway.for_exchange("kraken").fetch_ohlcv(
            fx.SYMBOL, "1m", timezone.now() - timedelta(hours=1)
        )
    orders = OrderGateway.for_exchange("kraken", read_attempts=1, settle_seconds=0)
    order_texts = []
    try:
        order_texts.append(
            repr(
                orders.place(OrderRequest(fx.SYMBOL, "buy", "0.001", client_order_id="leakcheck1"))
            )
        )
    except Exception as error:  # any outcome is fine as long as it quotes no credential
        order_texts.append(f"{type(error).__name__}: {error} {error.__cause__!r}")

    exchange_settings.ROOT_URLCONF = __name__
    mail.outbox.clear()
    exchange_settings.ADMINS = [("ops", "ops@example.org")]
    user = get_user_model().objects.create_superuser("ops", "ops@example.org", "x")
    client.force_login(user)
    client.raise_request_exception = False
    kraken.script(kraken.refusal)
    server_error = client.get("/leak-check/sync/")
    assert server_error.status_code == 500

    # 3. Search everything.
    book = BookFactory()
    pages = site_pages(client, book.pk)
    assert any("markets.sync_candles" in text for text in pages.values())
    found = {url: leaks(text) for url, text in pages.items() if leaks(text)}
    assert found == {}

    assert leaks(worker_log) == []
    assert "API-Key" in worker_log or "***" in worker_log  # ccxt's DEBUG headers were there
    assert leaks(caplog.text) == []
    assert leaks(" ".join(record.getMessage() for record in caplog.records)) == []
    assert leaks(f"{refused.value} {refused.value.__cause__}") == []
    assert leaks(" ".join(order_texts)) == []
    assert leaks(server_error.content.decode()) == []
    assert leaks(" ".join(f"{m.subject} {m.body}" for m in mail.outbox)) == []

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert leaks(dump.getvalue()) == []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            assert leaks(repr(cursor.fetchall())) == [], table
