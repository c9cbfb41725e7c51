from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from markets.models import Candle
from markets.tests.recorded_http import (
    HTML_PAGE,
    TOO_MANY_REQUESTS,
    KrakenOHLC,
    kraken_error,
    kraken_fed,
    kraken_row,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 1, 1, 12, 30, 20, tzinfo=UTC)
T0_S = int(datetime(2024, 1, 1, 12, 0, tzinfo=UTC).timestamp())
MARKET = ["--exchange", "kraken", "--symbol", "BTC/USD", "--timeframe", "1m"]
ROWS = [kraken_row(T0_S + 60 * i, "42000", "42010", "41990", "42005") for i in range(31)]


@pytest.fixture
def fed(monkeypatch):
    """Make the command's exchange a real ccxt.kraken answering from recorded replies."""
    adapters = []

    def feed(replies):
        exchange, adapter = kraken_fed(replies)
        adapters.append(adapter)
        monkeypatch.setattr(
            "markets.gateway.build_exchange", lambda exchange_id, timeout_ms=None: exchange
        )
        return adapter

    return feed


def fetch(*options):
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("fetch_candles", *MARKET, *options, stdout=out)
    return out.getvalue()


def test_it_fetches_and_stores_closed_candles_with_progress(fed, capsys):
    adapter = fed(KrakenOHLC("XXBTZUSD", ROWS, page_size=10))

    output = fetch("--since", "2024-01-01T12:00:00Z")

    assert (
        "Loaded 30 candles (30 new, 0 already stored) into kraken BTC/USD 1m from the kraken API"
        in output
    )
    assert "Left out the last candle: it was still open." in output
    rows = Candle.objects.filter(exchange="kraken", symbol="BTC/USD", timeframe="1m")
    assert rows.count() == 30
    assert set(rows.values_list("source", flat=True)) == {"exchange"}
    assert len(adapter.requests) == 4
    progress = capsys.readouterr().err
    assert "kraken BTC/USD 1m" in progress
    assert "31 candles" in progress


def test_it_stops_at_until(fed):
    fed(KrakenOHLC("XXBTZUSD", ROWS, page_size=10))

    output = fetch("--since", "2024-01-01 12:00", "--until", "2024-01-01 12:05")

    assert "Loaded 5 candles" in output
    assert Candle.objects.count() == 5


def test_it_turns_a_refused_request_into_a_clear_error_after_one_request(fed):
    adapter = fed([kraken_error("EAPI:Invalid key")])

    with pytest.raises(
        CommandError,
        match=r"kraken: fetching BTC/USD 1m candles .* was refused: AuthenticationError",
    ):
        fetch("--since", "2024-01-01T12:00Z")

    assert len(adapter.requests) == 1
    assert Candle.objects.count() == 0


def test_it_gives_up_after_max_attempts_on_rate_limits(fed):
    adapter = fed([TOO_MANY_REQUESTS] * 3)

    with pytest.raises(CommandError, match="failed 3 time\\(s\\), giving up: RateLimitExceeded"):
        fetch("--since", "2024-01-01T12:00Z", "--max-attempts", "3", "--backoff", "0")

    assert len(adapter.requests) == 3


def test_it_reports_garbage_from_the_exchange(fed):
    fed([HTML_PAGE])

    with pytest.raises(CommandError, match="with a body that is not JSON"):
        fetch("--since", "2024-01-01T12:00Z")


def test_it_rejects_an_unknown_exchange_id():
    with pytest.raises(CommandError, match="unknown exchange id 'notanexchange'"):
        call_command(
            "fetch_candles",
            "--exchange",
            "notanexchange",
            "--symbol",
            "BTC/USD",
            "--timeframe",
            "1m",
            "--since",
            "2024-01-01",
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--since", "last tuesday"], "--since: 'last tuesday' is not an ISO date"),
        (["--since", "2024-01-01", "--until", "soon"], "--until: 'soon' is not an ISO date"),
        (
            ["--since", "2024-13-45"],
            r"--since: '2024-13-45' is not an ISO date or date-time \(month must be in 1\.\.12",
        ),
        (
            ["--since", "2024-01-01", "--until", "2024-02-30"],
            r"--until: '2024-02-30' is not an ISO date or date-time \(day is out of range",
        ),
        (["--since", "0001-01-01T00:00+05:00"], "--since: .* is out of range once converted"),
        (
            ["--since", "2024-01-02", "--until", "2024-01-01"],
            "--since 2024-01-02 00:00 must be before",
        ),
        (["--since", "2030-01-01"], "must be before --until / now"),
        (["--since", "2024-01-01", "--max-attempts", "0"], "--max-attempts must be at least 1"),
    ],
)
def test_it_rejects_bad_options_clearly(options, message):
    with pytest.raises(CommandError, match=message):
        fetch(*options)


def test_it_rejects_a_bad_symbol_or_timeframe():
    with pytest.raises(CommandError, match="not in BASE/QUOTE form"):
        call_command(
            "fetch_candles", "--symbol", "XBTUSD", "--timeframe", "1m", "--since", "2024-01-01"
        )
    with pytest.raises(CommandError, match="unknown timeframe"):
        call_command(
            "fetch_candles",
            "--symbol",
            "BTC/USD",
            "--timeframe",
            "1 minute",
            "--since",
            "2024-01-01",
        )


def test_it_refuses_a_timeframe_the_exchange_does_not_offer(fed):
    adapter = fed([])

    with pytest.raises(CommandError, match="kraken has no 3m candles"):
        call_command(
            "fetch_candles",
            "--exchange",
            "kraken",
            "--symbol",
            "BTC/USD",
            "--timeframe",
            "3m",
            "--since",
            (NOW - timedelta(hours=1)).isoformat(),
        )

    assert adapter.requests == []
