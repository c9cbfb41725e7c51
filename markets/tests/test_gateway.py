import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import ccxt
import pytest

from markets.errors import (
    ExchangeDataError,
    ExchangeRequestError,
    ExchangeUnavailableError,
    UnknownExchangeError,
)
from markets.gateway import ExchangeGateway, build_exchange
from markets.tests.recorded_http import (
    CONNECTION_RESET,
    EMPTY_BODY,
    EMPTY_RESULT,
    HTML_PAGE,
    READ_TIMEOUT,
    SERVICE_UNAVAILABLE,
    TOO_MANY_REQUESTS,
    KrakenOHLC,
    json_reply,
    kraken_error,
    kraken_fed,
    kraken_row,
)
from markets.tests.shared_data import shared_json

T0_S = 1_700_000_040  # 2023-11-14 22:14 UTC, on the minute grid
T0 = datetime.fromtimestamp(T0_S, UTC)
NOW = T0 + timedelta(hours=1)

# Kraken's documented OHLC answer, written here so the path is covered on a fresh clone.
KRAKEN_OHLC = {
    "error": [],
    "result": {
        "XXBTZUSD": [
            [T0_S, "30306.1", "30306.2", "30305.7", "30305.7", "30306.1", "3.39243896", 23],
            [T0_S + 60, "30305.7", "30305.7", "30300.0", "30300.1", "30302.9", "0.25000000", 2],
            [T0_S + 120, "30300.1", "30300.1", "30300.1", "30300.1", "0.0", "0.00000000", 0],
        ],
        "last": T0_S + 60,
    },
}


def gateway_for(replies, **options):
    """A gateway over a fed kraken, recording its backoff sleeps instead of sleeping."""
    exchange, adapter = kraken_fed(replies)
    sleeps: list[float] = []
    options.setdefault("clock", lambda: NOW)
    gateway = ExchangeGateway(exchange, sleep=sleeps.append, **options)
    return gateway, adapter, sleeps


def since_param(request) -> int:
    return int(parse_qs(urlparse(request.url).query)["since"][0])


def test_kraken_ohlc_answer_becomes_raw_candles_through_ccxt_parsing():
    gateway, adapter, _ = gateway_for([json_reply(KRAKEN_OHLC), json_reply(KRAKEN_OHLC)])

    rows = gateway.fetch_ohlcv("BTC/USD", "1m", T0)

    assert [r.time_ms for r in rows] == [T0_S * 1000, (T0_S + 60) * 1000, (T0_S + 120) * 1000]
    first = rows[0]
    assert (first.open, first.high, first.low, first.close) == (30306.1, 30306.2, 30305.7, 30305.7)
    assert first.volume == pytest.approx(3.39243896)  # the volume column, not the vwap
    assert first.where == "page 1 row 0"
    assert "pair=XXBTZUSD" in adapter.requests[0].url
    assert "interval=1" in adapter.requests[0].url


def test_pagination_moves_forward_page_after_page_until_nothing_new():
    rows = [kraken_row(T0_S + 60 * i, "10", "12", "9", "11") for i in range(10)]
    gateway, adapter, _ = gateway_for(KrakenOHLC("XXBTZUSD", rows, page_size=3))
    pages = []

    fetched = gateway.fetch_ohlcv("BTC/USD", "1m", T0, on_page=lambda p, n: pages.append((p, n)))

    assert [r.time_ms // 1000 for r in fetched] == [T0_S + 60 * i for i in range(10)]
    sinces = [since_param(request) for request in adapter.requests]
    assert sinces == sorted(set(sinces)), "every page must ask for later candles"
    assert len(adapter.requests) == 6  # five pages with candles, one that says "nothing new"
    assert pages == [(1, 3), (2, 5), (3, 7), (4, 9), (5, 10)]


def test_pagination_stops_at_until_without_asking_further():
    rows = [kraken_row(T0_S + 60 * i, "10", "12", "9", "11") for i in range(10)]
    gateway, adapter, _ = gateway_for(KrakenOHLC("XXBTZUSD", rows, page_size=3))

    fetched = gateway.fetch_ohlcv("BTC/USD", "1m", T0, T0 + timedelta(minutes=4))

    assert [r.time_ms // 1000 for r in fetched] == [T0_S + 60 * i for i in range(4)]
    assert len(adapter.requests) == 2


def test_nothing_is_asked_for_a_range_that_has_not_started():
    gateway, adapter, _ = gateway_for([])

    assert gateway.fetch_ohlcv("BTC/USD", "1m", NOW + timedelta(minutes=5)) == []
    assert adapter.requests == []


def test_max_pages_bounds_a_long_fetch_with_a_clear_error():
    rows = [kraken_row(T0_S + 60 * i, "10", "12", "9", "11") for i in range(10)]
    gateway, _, _ = gateway_for(KrakenOHLC("XXBTZUSD", rows, page_size=2), max_pages=2)

    with pytest.raises(ExchangeDataError, match="after 2 pages; fetch a shorter range"):
        gateway.fetch_ohlcv("BTC/USD", "1m", T0)


@pytest.mark.parametrize(
    ("reply", "ccxt_error"),
    [
        (TOO_MANY_REQUESTS, ccxt.RateLimitExceeded),
        (SERVICE_UNAVAILABLE, ccxt.ExchangeNotAvailable),
        (READ_TIMEOUT, ccxt.RequestTimeout),
        (CONNECTION_RESET, ccxt.NetworkError),
        (kraken_error("EAPI:Rate limit exceeded"), ccxt.DDoSProtection),
        (kraken_error("EService:Unavailable"), ccxt.ExchangeNotAvailable),
    ],
)
def test_transient_error_is_retried_five_times_with_backoff_then_reported(reply, ccxt_error):
    gateway, adapter, sleeps = gateway_for([reply] * 5)

    with pytest.raises(ExchangeUnavailableError) as caught:
        gateway.fetch_ohlcv("BTC/USD", "1m", T0)

    assert len(adapter.requests) == 5
    assert sleeps == [1.0, 2.0, 4.0, 8.0]
    assert isinstance(caught.value.__cause__, ccxt_error)
    assert "failed 5 time(s), giving up" in str(caught.value)
    assert ccxt_error.__name__ in str(caught.value)


def test_rate_limit_twice_then_a_good_answer_succeeds_with_three_requests():
    gateway, adapter, sleeps = gateway_for(
        [TOO_MANY_REQUESTS, TOO_MANY_REQUESTS, json_reply(KRAKEN_OHLC), json_reply(KRAKEN_OHLC)]
    )

    rows = gateway.fetch_ohlcv("BTC/USD", "1m", T0, T0 + timedelta(minutes=3))

    assert len(rows) == 3
    assert len(adapter.requests) == 3  # the third candle ends the range: no further page
    assert sleeps == [1.0, 2.0]


def test_max_attempts_and_backoff_are_configurable():
    gateway, adapter, sleeps = gateway_for([READ_TIMEOUT] * 2, max_attempts=2, backoff_seconds=0.5)

    with pytest.raises(ExchangeUnavailableError, match="failed 2 time"):
        gateway.fetch_ohlcv("BTC/USD", "1m", T0)

    assert len(adapter.requests) == 2
    assert sleeps == [0.5]


def test_retries_are_logged_as_warnings(caplog):
    gateway, _, _ = gateway_for([TOO_MANY_REQUESTS, json_reply(KRAKEN_OHLC)])

    with caplog.at_level(logging.WARNING, logger="markets"):
        gateway.fetch_ohlcv("BTC/USD", "1m", T0, T0 + timedelta(minutes=3))

    assert "RateLimitExceeded" in caplog.text
    assert "attempt 2 of 5" in caplog.text


@pytest.mark.parametrize(
    ("error", "ccxt_error"),
    [
        ("EAPI:Invalid key", ccxt.AuthenticationError),
        ("EGeneral:Permission denied", ccxt.PermissionDenied),
        ("EQuery:Invalid asset pair", ccxt.BadSymbol),
        # ccxt 4.5.90 has no mapping for this exact Kraken text, so it is a plain
        # ExchangeError; it must still fail at once rather than be retried.
        ("EQuery:Unknown asset pair", ccxt.ExchangeError),
        ("EGeneral:Invalid arguments", ccxt.BadRequest),
    ],
)
def test_refused_request_fails_at_once_with_exactly_one_request(error, ccxt_error):
    gateway, adapter, sleeps = gateway_for([kraken_error(error)])

    with pytest.raises(ExchangeRequestError) as caught:
        gateway.fetch_ohlcv("BTC/USD", "1m", T0)

    assert len(adapter.requests) == 1
    assert sleeps == []
    assert type(caught.value.__cause__) is ccxt_error
    assert error in str(caught.value)
    assert "BTC/USD" in str(caught.value)


def test_symbol_the_exchange_does_not_list_is_refused_without_a_request():
    gateway, adapter, _ = gateway_for([])

    with pytest.raises(ExchangeRequestError, match="kraken has no market 'BTC/EUR'"):
        gateway.fetch_ohlcv("BTC/EUR", "1m", T0)

    assert adapter.requests == []


def test_timeframe_the_exchange_does_not_offer_is_refused_without_a_request():
    gateway, adapter, _ = gateway_for([])

    with pytest.raises(ExchangeRequestError, match="kraken has no 3m candles; it offers 1m, 5m"):
        gateway.fetch_ohlcv("BTC/USD", "3m", T0)

    assert adapter.requests == []


@pytest.mark.parametrize(
    ("garbage", "described"),
    [
        (HTML_PAGE, "a body that is not JSON"),
        (EMPTY_BODY, "an empty body"),
        (EMPTY_RESULT, "no candles for a range in which closed candles must exist"),
    ],
)
def test_http_200_garbage_is_a_data_error_not_an_empty_answer_or_a_loop(garbage, described, caplog):
    gateway, adapter, sleeps = gateway_for([garbage])

    with (
        caplog.at_level(logging.ERROR, logger="markets"),
        pytest.raises(ExchangeDataError) as caught,
    ):
        gateway.fetch_ohlcv("BTC/USD", "1m", T0)

    assert described in str(caught.value)
    assert "kraken answered BTC/USD 1m since 2023-11-14 22:14 UTC" in str(caught.value)
    assert len(adapter.requests) == 1
    assert sleeps == []
    assert str(caught.value) in caplog.text


def test_html_page_on_a_later_page_is_a_data_error_too():
    rows = [kraken_row(T0_S + 60 * i, "10", "12", "9", "11") for i in range(3)]
    first_page = KrakenOHLC("XXBTZUSD", rows)
    gateway, adapter, _ = gateway_for(
        lambda request: first_page(request) if len(adapter.requests) == 1 else HTML_PAGE
    )

    with pytest.raises(ExchangeDataError, match="not JSON"):
        gateway.fetch_ohlcv("BTC/USD", "1m", T0)


def test_empty_result_for_a_range_with_no_closed_candle_yet_means_no_new_candles():
    gateway, adapter, _ = gateway_for([EMPTY_RESULT])

    assert gateway.fetch_ohlcv("BTC/USD", "1m", NOW - timedelta(seconds=90)) == []
    assert len(adapter.requests) == 1


def test_build_exchange_makes_a_real_rate_limited_ccxt_exchange(settings):
    settings.EXCHANGE_ID = "kraken"
    settings.EXCHANGE_API_KEY = ""
    settings.EXCHANGE_TIMEOUT_MS = 4321

    exchange = build_exchange("kraken")

    assert isinstance(exchange, ccxt.kraken)
    assert exchange.timeout == 4321
    assert exchange.enableRateLimit is True
    assert not exchange.apiKey
    assert build_exchange("kraken", timeout_ms=99).timeout == 99


def test_api_keys_go_only_to_the_configured_exchange(settings):
    settings.EXCHANGE_ID = "kraken"
    settings.EXCHANGE_API_KEY = "key-for-kraken"
    settings.EXCHANGE_API_SECRET = "c2VjcmV0"

    assert build_exchange("kraken").apiKey == "key-for-kraken"
    assert build_exchange("kraken").secret == "c2VjcmV0"
    assert not build_exchange("binance").apiKey


def test_unknown_exchange_id_is_a_clear_error_with_suggestions():
    with pytest.raises(
        UnknownExchangeError, match=r"unknown exchange id 'krakn'.*did you mean kraken"
    ):
        ExchangeGateway.for_exchange("krakn")


def test_for_exchange_uses_the_module_factory(monkeypatch):
    exchange, _ = kraken_fed([])
    monkeypatch.setattr(
        "markets.gateway.build_exchange", lambda exchange_id, timeout_ms=None: exchange
    )

    gateway = ExchangeGateway.for_exchange("kraken", max_attempts=3)

    assert gateway.exchange is exchange
    assert gateway.max_attempts == 3
    assert gateway.exchange_id == "kraken"


@pytest.mark.shared_data
def test_ccxt_static_kraken_fetch_ohlcv_case_parses_as_ccxt_recorded_it():
    case = shared_json("ccxt-static/kraken.json")["methods"]["fetchOHLCV"][0]
    symbol, timeframe, since_ms, limit = case["input"]
    markets = shared_json("ccxt-static/minimal-markets.handwritten.json")["kraken"]
    exchange, adapter = kraken_fed(
        lambda request: json_reply(case["httpResponse"]), markets=markets
    )
    last_ms = case["httpResponse"]["result"]["XBTUSDT"][-1][0] * 1000
    gateway = ExchangeGateway(exchange, page_limit=limit, sleep=lambda s: None)

    rows = gateway.fetch_ohlcv(
        symbol,
        timeframe,
        datetime.fromtimestamp(since_ms / 1000, UTC),
        datetime.fromtimestamp(last_ms / 1000 + 7200, UTC),
    )

    first_page = [[r.time_ms, r.open, r.high, r.low, r.close, r.volume] for r in rows[:limit]]
    assert first_page == case["parsedResponse"]
    assert [r.time_ms for r in rows[limit:]] == [1706641200000, 1706799600000]
    assert len(adapter.requests) == 3  # two pages with candles, one with nothing new


@pytest.mark.shared_data
def test_recorded_kraken_ohlc_response_is_fetched_whole_with_its_open_candle():
    body = shared_json("api-responses/kraken/http_ohlc.json")
    markets = shared_json("ccxt-static/minimal-markets.handwritten.json")["kraken"]
    exchange, adapter = kraken_fed(
        KrakenOHLC("XBTUSDT", body["result"]["XBTUSDT"]), markets=markets
    )
    server_time = datetime(2025, 11, 11, 0, 17, 4, tzinfo=UTC)
    gateway = ExchangeGateway(exchange, clock=lambda: server_time, sleep=lambda s: None)

    rows = gateway.fetch_ohlcv("BTC/USDT", "1m", datetime(2025, 11, 10, 12, 17, tzinfo=UTC))

    assert len(rows) == 721
    assert rows[-1].time_ms == 1762820220 * 1000
    assert Decimal(str(rows[0].open)) == Decimal(body["result"]["XBTUSDT"][0][1])
    # The newest candle is still open, so no later one can exist: one request is enough.
    assert len(adapter.requests) == 1


def test_history_starting_after_since_is_logged(caplog):
    rows = [kraken_row(T0_S + 60 * i, "10", "12", "9", "11") for i in range(3)]
    gateway, _, _ = gateway_for(KrakenOHLC("XXBTZUSD", rows))

    with caplog.at_level(logging.WARNING, logger="markets"):
        gateway.fetch_ohlcv("BTC/USD", "1m", T0 - timedelta(days=30))

    assert "the oldest candle served opens at 2023-11-14 22:14" in caplog.text


def test_exchange_api_url_moves_every_api_url_of_the_configured_exchange_only(settings):
    settings.EXCHANGE_ID = "kraken"
    settings.EXCHANGE_API_URL = "http://127.0.0.1:8123/"

    kraken = build_exchange("kraken")
    binance_urls = build_exchange("binance").urls["api"]

    assert kraken.urls["api"]["public"] == "http://127.0.0.1:8123"
    assert kraken.urls["api"]["private"] == "http://127.0.0.1:8123"
    assert binance_urls["public"] == "https://api.binance.com/api/v3"  # not the configured one
    settings.EXCHANGE_ID = "binance"
    assert build_exchange("binance").urls["api"]["public"] == "http://127.0.0.1:8123/api/v3"


def test_exchange_api_url_unset_leaves_ccxt_urls_alone(settings):
    settings.EXCHANGE_ID = "kraken"
    settings.EXCHANGE_API_URL = ""

    assert build_exchange("kraken").urls["api"]["public"] == "https://api.kraken.com"


def test_for_exchange_takes_its_retry_budget_from_the_settings(settings, monkeypatch):
    exchange, _ = kraken_fed([])
    monkeypatch.setattr(
        "markets.gateway.build_exchange", lambda exchange_id, timeout_ms=None: exchange
    )
    settings.EXCHANGE_MAX_ATTEMPTS = 2
    settings.EXCHANGE_BACKOFF_SECONDS = 0.25
    settings.EXCHANGE_MAX_BACKOFF_SECONDS = 3.0

    gateway = ExchangeGateway.for_exchange("kraken")
    assert (gateway.max_attempts, gateway.backoff_seconds, gateway.max_backoff_seconds) == (
        2,
        0.25,
        3.0,
    )
    assert ExchangeGateway.for_exchange("kraken", max_attempts=4).max_attempts == 4


IM_A_TEAPOT = json_reply(
    {"code": -1003, "msg": "Way too many requests; IP banned."}, status=418, reason="I'm a teapot"
)


def test_418_ip_ban_is_retried_with_backoff_like_a_rate_limit_then_reported():
    gateway, adapter, sleeps = gateway_for([IM_A_TEAPOT] * 5)

    with pytest.raises(ExchangeUnavailableError, match="DDoSProtection") as caught:
        gateway.fetch_ohlcv("BTC/USD", "1m", T0)

    assert len(adapter.requests) == 5
    assert sleeps == [1.0, 2.0, 4.0, 8.0]
    assert isinstance(caught.value.__cause__, ccxt.DDoSProtection)
