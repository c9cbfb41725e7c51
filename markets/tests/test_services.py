from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from markets.bars import Bar
from markets.errors import ExchangeRequestError, MarketDataError
from markets.gateway import ExchangeGateway
from markets.models import Candle
from markets.services import (
    candles_generate_synthetic,
    candles_load_file,
    candles_sync,
    candles_sync_latest,
    candles_upsert,
)
from markets.tests.recorded_http import (
    KrakenOHLC,
    json_reply,
    kraken_error,
    kraken_fed,
    kraken_row,
)
from markets.tests.shared_data import shared_json
from markets.tests.test_gateway import since_param

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
T0_S = int(T0.timestamp())
MINUTE = timedelta(minutes=1)
MARKET = {"exchange": "kraken", "symbol": "BTC/USD", "timeframe": "1m"}


def bar(minute: int, close: str = "105") -> Bar:
    return Bar(
        T0 + minute * MINUTE, Decimal(100), Decimal(110), Decimal(90), Decimal(close), Decimal(2)
    )


def stored(**market) -> list[Candle]:
    return list(Candle.objects.filter(**(market or MARKET)).order_by("open_time"))


def fed_gateway(replies, **options) -> tuple[ExchangeGateway, object]:
    exchange, adapter = kraken_fed(replies)
    return ExchangeGateway(exchange, sleep=lambda seconds: None, **options), adapter


def test_upsert_creates_once_and_never_overwrites_a_restated_candle(caplog):
    created = candles_upsert(**MARKET, bars=[bar(0), bar(1)], source="file")
    caplog.set_level("WARNING", logger="markets")
    again = candles_upsert(**MARKET, bars=[bar(1, close="99"), bar(2)], source="exchange")

    assert created == (2, 0, 0)
    assert again == (1, 0, 1)
    assert "1 restated candle(s) of kraken BTC/USD 1m kept as first stored" in caplog.text
    rows = stored()
    assert [(c.open_time, c.close, c.source) for c in rows] == [
        (T0, Decimal(105), "file"),
        (T0 + MINUTE, Decimal(105), "file"),
        (T0 + 2 * MINUTE, Decimal(105), "exchange"),
    ]


def test_upsert_keeps_other_markets_apart():
    candles_upsert(**MARKET, bars=[bar(0)], source="file")
    candles_upsert(**{**MARKET, "timeframe": "5m"}, bars=[bar(0)], source="file")

    assert Candle.objects.count() == 2


def test_upsert_of_two_bars_with_one_open_time_keeps_the_last():
    assert candles_upsert(**MARKET, bars=[bar(0, "101"), bar(0, "102")], source="file") == (1, 0, 0)

    assert [c.close for c in stored()] == [Decimal(102)]


def test_upsert_rounds_to_the_stored_decimal_places():
    tiny = Bar(T0, Decimal("0.1234567890123456"), Decimal(1), Decimal("0.1"), Decimal("0.5"))

    candles_upsert(**MARKET, bars=[tiny], source="file")

    assert stored()[0].open == Decimal("0.123456789012")


def test_upsert_refuses_an_unknown_source():
    with pytest.raises(ValueError, match="source must be one of"):
        candles_upsert(**MARKET, bars=[bar(0)], source="guess")


def test_sync_stores_kraken_candles_and_leaves_out_the_open_one():
    # Kraken's documented OHLC shape, written here: [time_s, o, h, l, c, vwap, volume, count].
    body = {
        "error": [],
        "result": {
            "XXBTZUSD": [
                [T0_S, "42000.0", "42010.5", "41990.1", "42005.2", "42001.0", "1.25000000", 12],
                [T0_S + 60, "42005.2", "42005.2", "42005.2", "42005.2", "0.0", "0.00000000", 0],
                [
                    T0_S + 120,
                    "42005.2",
                    "42020.0",
                    "42000.0",
                    "42019.9",
                    "42010.0",
                    "0.50000000",
                    3,
                ],
            ],
            "last": T0_S + 60,
        },
    }
    gateway, adapter = fed_gateway([json_reply(body)])

    summary = candles_sync(
        **MARKET, since=T0, now=T0 + 2 * MINUTE + timedelta(seconds=20), gateway=gateway
    )

    assert [
        (c.open_time, c.open, c.high, c.low, c.close, c.volume, c.source) for c in stored()
    ] == [
        (
            T0,
            Decimal("42000.0"),
            Decimal("42010.5"),
            Decimal("41990.1"),
            Decimal("42005.2"),
            Decimal("1.25"),
            "exchange",
        ),
        (
            T0 + MINUTE,
            Decimal("42005.2"),
            Decimal("42005.2"),
            Decimal("42005.2"),
            Decimal("42005.2"),
            Decimal(0),
            "exchange",
        ),
    ]
    assert summary.dropped_open
    assert (summary.rows, summary.loaded, summary.created) == (3, 2, 2)
    assert len(adapter.requests) == 1


def test_sync_twice_changes_nothing_the_second_time():
    rows = [kraken_row(T0_S + 60 * i, "10", "12", "9", "11") for i in range(5)]
    now = T0 + 10 * MINUTE
    first = candles_sync(
        **MARKET, since=T0, now=now, gateway=fed_gateway(KrakenOHLC("XXBTZUSD", rows))[0]
    )
    second = candles_sync(
        **MARKET, since=T0, now=now, gateway=fed_gateway(KrakenOHLC("XXBTZUSD", rows))[0]
    )

    assert (first.created, first.unchanged) == (5, 0)
    assert (second.created, second.unchanged, second.restated) == (0, 5, 0)
    assert len(stored()) == 5


def test_sync_over_several_pages_stores_every_candle_once():
    rows = [kraken_row(T0_S + 60 * i, "10", "12", "9", "11") for i in range(12)]
    gateway, adapter = fed_gateway(KrakenOHLC("XXBTZUSD", rows, page_size=4))

    summary = candles_sync(**MARKET, since=T0, now=T0 + 30 * MINUTE, gateway=gateway)

    assert summary.loaded == 12
    assert [c.open_time for c in stored()] == [T0 + i * MINUTE for i in range(12)]
    assert len(adapter.requests) > 3


def test_sync_that_fails_writes_nothing():
    gateway, _ = fed_gateway([kraken_error("EAPI:Invalid key")])

    with pytest.raises(ExchangeRequestError):
        candles_sync(**MARKET, since=T0, now=T0 + 5 * MINUTE, gateway=gateway)

    assert stored() == []


def test_sync_refuses_a_gateway_for_another_exchange():
    gateway, _ = fed_gateway([])

    with pytest.raises(ValueError, match="the gateway talks to kraken, not binance"):
        candles_sync(**{**MARKET, "exchange": "binance"}, since=T0, now=T0, gateway=gateway)


def test_sync_latest_continues_after_the_newest_stored_candle():
    candles_upsert(**MARKET, bars=[bar(0), bar(1)], source="exchange")
    rows = [kraken_row(T0_S + 60 * i, "10", "12", "9", "11") for i in range(6)]
    gateway, adapter = fed_gateway(KrakenOHLC("XXBTZUSD", rows))

    summary = candles_sync_latest(**MARKET, now=T0 + 6 * MINUTE, gateway=gateway)

    # ccxt asks Kraken for one candle before ``since`` (its since is exclusive).
    assert since_param(adapter.requests[0]) == T0_S + 60
    assert (summary.created, summary.unchanged) == (4, 0)
    assert len(stored()) == 6


def test_sync_latest_on_an_empty_market_reaches_back_the_lookback():
    rows = [kraken_row(T0_S + 60 * i, "10", "12", "9", "11") for i in range(30)]
    gateway, adapter = fed_gateway(KrakenOHLC("XXBTZUSD", rows))
    now = T0 + 30 * MINUTE

    candles_sync_latest(**MARKET, now=now, lookback=timedelta(minutes=10), gateway=gateway)

    assert since_param(adapter.requests[0]) == T0_S + 20 * 60 - 60


def test_sync_latest_never_reaches_back_further_than_the_lookback():
    candles_upsert(**MARKET, bars=[bar(0)], source="exchange")
    now = T0 + timedelta(days=30)
    recent = int(now.timestamp()) - 600
    rows = [kraken_row(recent + 60 * i, "10", "12", "9", "11") for i in range(10)]
    gateway, adapter = fed_gateway(KrakenOHLC("XXBTZUSD", rows))

    candles_sync_latest(**MARKET, now=now, lookback=timedelta(hours=1), gateway=gateway)

    assert since_param(adapter.requests[0]) == T0_S + 30 * 86400 - 3600 - 60


def test_load_file_reports_rejections_merges_and_gaps(tmp_path):
    path = tmp_path / "candles.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        f"{T0_S * 1000},1,2,1,2,1\n"
        f"{(T0_S + 60) * 1000},1,2,1,2,1\n"
        f"{(T0_S + 60) * 1000},1,2,1,2.0,1\n"
        f"{(T0_S + 120) * 1000},1,0.5,1,1,1\n"
        f"{(T0_S + 240) * 1000},1,2,1,2,1\n"
    )

    summary = candles_load_file(path=path, **MARKET, now=T0 + timedelta(days=1))

    assert (summary.rows, summary.loaded, summary.merged) == (5, 3, 1)
    assert [str(r) for r in summary.rejections] == ["line 5: high 0.5 is below low 1"]
    assert [(g.start, g.missing) for g in summary.gaps] == [(T0 + 2 * MINUTE, 2)]
    assert {c.source for c in stored()} == {"file"}
    assert stored()[1].close == Decimal("2")
    assert summary.conflicts == []
    assert summary.as_dict()["rejected"] == 1


def test_generate_synthetic_stores_count_candles_marked_synthetic():
    end = T0 + timedelta(hours=10, minutes=30)

    summary = candles_generate_synthetic(**{**MARKET, "timeframe": "1h"}, count=5, end=end, seed=7)

    rows = stored(exchange="kraken", symbol="BTC/USD", timeframe="1h")
    assert [c.open_time for c in rows] == [T0 + timedelta(hours=h) for h in range(5, 10)]
    assert {c.source for c in rows} == {"synthetic"}
    assert summary.created == 5


def test_generate_synthetic_is_repeatable_and_replaces_its_own_candles():
    end = T0 + timedelta(hours=5)
    candles_generate_synthetic(**MARKET, count=20, end=end, seed=3)
    before = [(c.open_time, c.close) for c in stored()]

    again = candles_generate_synthetic(**MARKET, count=20, end=end, seed=3)

    assert (again.created, again.unchanged, again.restated) == (0, 20, 0)
    assert [(c.open_time, c.close) for c in stored()] == before


def test_generate_synthetic_never_overwrites_real_candles():
    candles_upsert(**MARKET, bars=[bar(0)], source="exchange")

    with pytest.raises(MarketDataError, match="already has 1 real candles"):
        candles_generate_synthetic(**MARKET, count=10, end=T0 + 5 * MINUTE, seed=1)

    assert [c.source for c in stored()] == ["exchange"]


@pytest.mark.shared_data
def test_recorded_kraken_ohlc_becomes_720_closed_candles():
    body = shared_json("api-responses/kraken/http_ohlc.json")
    markets = shared_json("ccxt-static/minimal-markets.handwritten.json")["kraken"]
    recorded = body["result"]["XBTUSDT"]
    exchange, adapter = kraken_fed(KrakenOHLC("XBTUSDT", recorded), markets=markets)
    gateway = ExchangeGateway(exchange, sleep=lambda seconds: None)
    server_time = datetime(2025, 11, 11, 0, 17, 4, tzinfo=UTC)  # from http_server_time.json

    summary = candles_sync(
        exchange="kraken",
        symbol="BTC/USDT",
        timeframe="1m",
        since=datetime(2025, 11, 10, 12, 17, tzinfo=UTC),
        now=server_time,
        gateway=gateway,
    )

    rows = stored(exchange="kraken", symbol="BTC/USDT", timeframe="1m")
    assert len(rows) == 720
    assert summary.dropped_open
    assert (summary.rejections, summary.merged, summary.gaps) == ([], 0, [])
    assert rows[0].open_time == datetime(2025, 11, 10, 12, 17, tzinfo=UTC)
    assert rows[-1].open_time == datetime.fromtimestamp(body["result"]["last"], UTC)
    for candle, raw in zip(rows, recorded, strict=False):
        assert int(candle.open_time.timestamp()) == raw[0]
        assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == tuple(
            Decimal(value) for value in (raw[1], raw[2], raw[3], raw[4], raw[6])
        )
    assert sum(1 for c in rows if c.volume == 0) > 0, "minutes without trades are kept"
    assert len(adapter.requests) == 1


@pytest.mark.shared_data
def test_ccxt_static_kraken_fixture_stores_its_closed_candles_and_reports_the_gap():
    case = shared_json("ccxt-static/kraken.json")["methods"]["fetchOHLCV"][0]
    symbol, timeframe, since_ms, _ = case["input"]
    markets = shared_json("ccxt-static/minimal-markets.handwritten.json")["kraken"]
    exchange, _ = kraken_fed(lambda request: json_reply(case["httpResponse"]), markets=markets)
    gateway = ExchangeGateway(exchange, sleep=lambda seconds: None)
    newest = datetime.fromtimestamp(case["httpResponse"]["result"]["XBTUSDT"][-1][0], UTC)

    summary = candles_sync(
        exchange="kraken",
        symbol=symbol,
        timeframe=timeframe,
        since=datetime.fromtimestamp(since_ms / 1000, UTC),
        now=newest + timedelta(minutes=90),
        gateway=gateway,
    )

    rows = stored(exchange="kraken", symbol=symbol, timeframe=timeframe)
    as_ccxt = [
        [
            int(c.open_time.timestamp() * 1000),
            *(float(v) for v in (c.open, c.high, c.low, c.close, c.volume)),
        ]
        for c in rows[:3]
    ]
    assert as_ccxt == case["parsedResponse"]
    assert [c.open_time for c in rows[3:]] == [
        datetime(2024, 1, 30, 19, 0, tzinfo=UTC),
        datetime(2024, 2, 1, 15, 0, tzinfo=UTC),
    ]
    [gap] = summary.gaps
    assert (gap.start, gap.missing) == (datetime(2024, 1, 30, 20, 0, tzinfo=UTC), 43)


def test_upsert_writes_more_bars_than_one_batch():
    bars = [
        Bar(T0 + i * MINUTE, Decimal(1), Decimal(2), Decimal(1), Decimal(2), Decimal(i))
        for i in range(2 * 1000 + 5)
    ]

    assert candles_upsert(**MARKET, bars=bars, source="file") == (2005, 0, 0)
    assert candles_upsert(**MARKET, bars=bars[-10:], source="file") == (0, 10, 0)
    assert len(stored()) == 2005
    assert stored()[-1].volume == Decimal(2004)
