from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from markets.models import Candle

pytestmark = pytest.mark.django_db

MARKET = ["--exchange", "synthetic", "--symbol", "BTC/USD", "--timeframe", "1h"]


def generate(*options):
    out = StringIO()
    call_command("generate_candles", *MARKET, *options, stdout=out)
    return out.getvalue()


def test_it_generates_synthetic_candles_and_says_so(caplog):
    output = generate("--count", "48", "--seed", "7", "--end", "2024-03-01T10:30:00Z")

    assert "SYNTHETIC data: 48 generated candles (seed 7), not market data." in output
    assert "Loaded 48 candles (48 new, 0 already stored)" in output
    rows = Candle.objects.filter(exchange="synthetic", symbol="BTC/USD", timeframe="1h")
    assert rows.count() == 48
    assert set(rows.values_list("source", flat=True)) == {"synthetic"}
    assert rows.order_by("open_time").last().open_time == datetime(2024, 3, 1, 9, tzinfo=UTC)
    assert "SYNTHETIC" in caplog.text


def test_it_is_deterministic_for_a_seed():
    generate("--count", "10", "--seed", "3", "--end", "2024-03-01")
    first = list(Candle.objects.order_by("open_time").values_list("close", flat=True))

    output = generate("--count", "10", "--seed", "3", "--end", "2024-03-01")

    assert "(0 new, 10 already stored)" in output
    assert list(Candle.objects.order_by("open_time").values_list("close", flat=True)) == first


def test_it_defaults_to_ending_now():
    generate("--count", "2")

    newest = Candle.objects.order_by("open_time").last()
    assert newest is not None
    assert (datetime.now(UTC) - newest.open_time).total_seconds() < 2 * 3600


def test_it_refuses_to_overwrite_real_candles(tmp_path):
    path = tmp_path / "real.json"
    path.write_text("[[1709280000000, 1, 2, 1, 2, 3]]")  # 2024-03-01 08:00 UTC
    call_command("load_candles", str(path), *MARKET, stdout=StringIO())

    with pytest.raises(CommandError, match="synthetic data never replaces them"):
        generate("--count", "5", "--end", "2024-03-01T10:00")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--count", "0"], "--count must be at least 1"),
        (["--count", "5", "--end", "soon"], "--end: 'soon' is not an ISO date"),
        (
            ["--count", "5", "--end", "2024-13-45"],
            r"--end: '2024-13-45' is not an ISO date or date-time \(month must be in 1\.\.12",
        ),
        (["--count", "5", "--end", "9999-12-31T23:00-05:00"], "--end: .* is out of range"),
        (["--count", "5", "--start-price", "-3"], "--start-price must be a positive number"),
        (["--count", "5", "--start-price", "abc"], "--start-price 'abc' is not a number"),
    ],
)
def test_it_rejects_bad_options_clearly(options, message):
    with pytest.raises(CommandError, match=message):
        generate(*options)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("symbol", "low", "high"),
    [
        ("BTC/USD", 50_000, 150_000),
        ("ETH/USD", 1_500, 6_000),
        ("SOL/USD", 60, 400),
        ("XRP/USD", 0.8, 6),
    ],
)
def test_each_demo_market_starts_near_its_real_level(symbol, low, high):
    from markets.models import Candle

    call_command(
        "generate_candles",
        "--exchange",
        "synthetic",
        "--symbol",
        symbol,
        "--timeframe",
        "1h",
        "--count",
        "200",
        "--seed",
        "1",
        stdout=StringIO(),
    )
    first = Candle.objects.filter(symbol=symbol).order_by("open_time").first()
    assert low <= float(first.open) <= high


def test_a_volatility_outside_zero_and_one_is_refused():
    with pytest.raises(CommandError, match="--daily-volatility must lie between 0 and 1"):
        call_command(
            "generate_candles",
            "--exchange",
            "synthetic",
            "--symbol",
            "BTC/USD",
            "--timeframe",
            "1h",
            "--count",
            "5",
            "--daily-volatility",
            "2",
            stdout=StringIO(),
        )


def test_an_altcoin_swings_more_than_btc():
    from datetime import UTC, datetime, timedelta

    import numpy as np

    from markets.synthetic import plausible_market, synthetic_bars

    def spread(symbol):
        price, volatility = plausible_market(symbol)
        bars = synthetic_bars(
            timeframe=timedelta(hours=1),
            count=2000,
            end=datetime(2026, 1, 1, tzinfo=UTC),
            seed=3,
            start_price=price,
            daily_volatility=volatility,
        )
        closes = np.array([float(b.close) for b in bars])
        return np.std(np.diff(np.log(closes)))

    assert spread("SOL/USD") > 1.5 * spread("BTC/USD")
