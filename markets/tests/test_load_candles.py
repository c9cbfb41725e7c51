from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from markets.models import Candle
from markets.tests.shared_data import shared_path

pytestmark = pytest.mark.django_db

T0_MS = 1_704_110_400_000  # 2024-01-01 12:00 UTC
MARKET = ["--exchange", "bitstamp", "--symbol", "BTC/USD", "--timeframe", "1m"]


def load(path, *options):
    out = StringIO()
    call_command("load_candles", str(path), *(options or MARKET), stdout=out)
    return out.getvalue()


def minute(i: int) -> int:
    return T0_MS + i * 60_000


def test_it_loads_a_ccxt_json_file(tmp_path):
    path = tmp_path / "btc.json"
    path.write_text(
        f"[[{minute(0)}, 42000.5, 42100, 41900, 42050, 3.2], [{minute(1)}, 42050, 42060, 42000, 42001, 0]]"
    )

    output = load(path)

    assert "Loaded 2 candles (2 new, 0 already stored) into bitstamp BTC/USD 1m" in output
    assert "Rejected 0 row(s)." in output
    assert "Merged 0 duplicate" in output
    assert "Gaps: none." in output
    first = Candle.objects.get(open_time=datetime(2024, 1, 1, 12, tzinfo=UTC))
    assert (first.open, first.volume, first.source) == (Decimal("42000.5"), Decimal("3.2"), "file")


def test_it_loads_a_csv_file(tmp_path):
    path = tmp_path / "btc.csv"
    path.write_text(
        "datetime,open,high,low,close,volume,trades\n"
        "2024-01-01 12:00:00,1.5,2,1,2,10,4\n"
        "2024-01-01 12:01:00,2,2.5,1.5,2.5,11,5\n"
    )

    output = load(path)

    assert "Loaded 2 candles" in output
    assert Candle.objects.filter(exchange="bitstamp", symbol="BTC/USD", timeframe="1m").count() == 2


def test_it_loads_the_good_rows_and_names_each_bad_one(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        f"{minute(0)},1,2,1,2,1\n"
        f"{minute(1)},NaN,2,1,2,1\n"
        f"{minute(2)},1,2,1,2,1\n"
        f"{minute(3)},5,4,6,5,1\n"
        f"{minute(2)},1,2,1,2.0,1\n"
        f"{minute(6)},0,2,1,2,1\n"
        f"{minute(7)},1,2,1,2,1\n"
    )

    output = load(path)

    assert "Loaded 3 candles" in output
    assert "Rejected 3 row(s):" in output
    assert "  line 3: open is NaN" in output
    assert "  line 5: high 4 is below low 6" in output
    assert "  line 7: open 0 is not positive" in output
    assert "Conflicts: none." in output
    assert "Merged 1 duplicate timestamp(s)" in output
    assert "Gaps: 2 (5 missing candle(s)):" in output
    assert "2024-01-01 12:01 to 2024-01-01 12:01 (1 missing)" in output
    assert "2024-01-01 12:03 to 2024-01-01 12:06 (4 missing)" in output
    assert Candle.objects.get(open_time=datetime(2024, 1, 1, 12, 2, tzinfo=UTC)).close == Decimal(
        "2"
    )


def test_it_loads_the_same_file_twice_without_duplicates(tmp_path):
    path = tmp_path / "btc.json"
    path.write_text(f"[[{minute(0)}, 1, 2, 1, 2, 3]]")
    load(path)

    output = load(path)

    assert "Loaded 1 candles (0 new, 1 already stored)" in output
    assert Candle.objects.count() == 1


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.json", f"[[{T0_MS}, 1, 2, 1, 2, 3],\n[{T0_MS}, 1, 2", "line 2 column"),
        (
            "short.json",
            f"[[{T0_MS}, 1, 2, 1, 2, 3], [{T0_MS}, 1, 2]]",
            "index 1: expected [ms, open",
        ),
        (
            "bad.csv",
            f"timestamp,open,high,low,close,volume\n{T0_MS},1,2,1,2,3\n{T0_MS},1,2,one,2,3\n",
            "line 3: low 'one' is not a number",
        ),
        ("nohead.csv", f"{T0_MS},1,2,1,2,3\n", "line 1: no time column"),
        ("empty.json", "[]", "the file holds no candle rows"),
    ],
)
def test_it_fails_on_a_malformed_file_naming_the_line_and_loads_nothing(
    tmp_path, name, text, message
):
    path = tmp_path / name
    path.write_text(text)

    with pytest.raises(CommandError) as caught:
        load(path)

    assert message in str(caught.value)
    assert Candle.objects.count() == 0


def test_it_fails_when_every_row_is_rejected(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(f"[[{T0_MS}, NaN, 2, 1, 2, 3]]")

    with pytest.raises(CommandError, match="nothing loaded: all 1 row"):
        load(path)


def test_it_fails_clearly_on_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match=r"nope\.csv: no such file"):
        load(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--timeframe", "1x", "unknown timeframe '1x'"),
        ("--symbol", "BTCUSD", "symbol 'BTCUSD' is not in BASE/QUOTE form"),
        ("--exchange", "my exchange", "exchange 'my exchange' is not a valid name"),
    ],
)
def test_it_rejects_a_bad_market_before_reading(tmp_path, option, value, message):
    options = dict(zip(MARKET[::2], MARKET[1::2], strict=True))
    options[option] = value
    args = [item for pair in options.items() for item in pair]

    with pytest.raises(CommandError, match=message):
        load(tmp_path / "unused.csv", *args)


@pytest.mark.shared_data
def test_it_loads_a_real_bittrex_file_and_reports_its_gaps():
    path = shared_path("candles/bittrex/ADA_BTC-5m.json")

    output = load(path, "--exchange", "bittrex", "--symbol", "ADA/BTC", "--timeframe", "5m")

    assert "Loaded 5720 candles (5720 new, 0 already stored) into bittrex ADA/BTC 5m" in output
    assert "2018-01-10 04:55 to 2018-01-30 04:50 UTC" in output
    assert "Rejected 0 row(s)." in output
    assert "(40 missing candle(s))" in output
    assert Candle.objects.filter(symbol="ADA/BTC", source="file").count() == 5720


@pytest.mark.shared_data
def test_it_loads_a_real_coinbase_normalized_csv():
    path = shared_path("candles/coinbase/Coinbase_BTCUSD_d.normalized.csv")

    output = load(path, "--exchange", "coinbase", "--symbol", "BTC/USD", "--timeframe", "1d")

    # 37 of its 38 zero-volume days are flat fillers without trades: rejected, now gaps.
    assert "Read 1770 row(s). Loaded 1733 candles" in output
    assert "Rejected 37 row(s) (of which 37 filler(s) without trades):" in output
    assert "2019-03-20 00:00 to 2019-03-31 00:00 (12 missing)" in output
    assert Candle.objects.filter(volume=0, open=F("close"), high=F("low")).count() == 0


def test_it_reports_a_conflicting_duplicate_and_stores_the_other_rows(tmp_path):
    path = tmp_path / "conflict.csv"
    path.write_text(
        "timestamp_ms,open,high,low,close,volume\n"
        f"{minute(0)},1,2,1,2,1\n"
        f"{minute(1)},1,2,1,2,1\n"
        f"{minute(1)},1,2,1,1.5,1\n"
        f"{minute(2)},1,2,1,2,1\n"
    )

    output = load(path)

    assert "Loaded 2 candles" in output
    assert (
        "Conflicts: 1 timestamp(s) given different values by different rows "
        "(none of those rows loaded):"
    ) in output
    assert (
        "  2024-01-01 12:01: line 3 (open 1, high 2, low 1, close 2, volume 1) vs "
        "line 4 (open 1, high 2, low 1, close 1.5, volume 1)"
    ) in output
    stored = Candle.objects.order_by("open_time").values_list("open_time", flat=True)
    assert list(stored) == [
        datetime(2024, 1, 1, 12, tzinfo=UTC),
        datetime(2024, 1, 1, 12, 2, tzinfo=UTC),
    ]


def test_it_fails_when_the_only_rows_conflict(tmp_path):
    path = tmp_path / "conflict.csv"
    path.write_text(
        f"timestamp_ms,open,high,low,close,volume\n{minute(0)},1,2,1,2,1\n{minute(0)},1,2,1,1.5,1\n"
    )

    with pytest.raises(CommandError, match="nothing loaded"):
        load(path)
    assert Candle.objects.count() == 0


def test_it_rejects_second_and_overlong_timestamps_per_row(tmp_path):
    path = tmp_path / "units.csv"
    path.write_text(
        "timestamp_ms,open,high,low,close,volume\n"
        f"{minute(0)},1,2,1,2,1\n"
        f"{minute(1) // 1000},1,2,1,2,1\n"
        f"{minute(2) * 1000},1,2,1,2,1\n"
        f"{minute(3)},1,2,1,2,1\n"
    )

    output = load(path)

    assert "Loaded 2 candles" in output
    assert "Rejected 2 row(s):" in output
    assert "  line 3: timestamp 1704110460 looks like seconds, not milliseconds" in output
    assert "  line 4: timestamp 1704110520000000 is out of range (16 digits;" in output
    assert Candle.objects.filter(open_time__year__lt=2009).count() == 0
    assert Candle.objects.count() == 2


def test_a_json_file_with_second_timestamps_is_rejected_row_by_row_not_stored_as_1970(tmp_path):
    path = tmp_path / "seconds.json"
    path.write_text(f"[[{minute(0) // 1000}, 1, 2, 1, 2, 1], [{minute(1) // 1000}, 1, 2, 1, 2, 1]]")

    with pytest.raises(CommandError, match="nothing loaded"):
        load(path)
    assert Candle.objects.count() == 0


def test_it_shows_the_progress_of_both_passes_on_stderr_unless_asked_not_to(tmp_path, capsys):
    path = tmp_path / "btc.json"
    path.write_text("[" + ", ".join(f"[{minute(i)}, 1, 2, 1, 2, 3]" for i in range(30)) + "]")

    output = load(path)
    shown = capsys.readouterr().err
    assert "btc.json: checking rows" in shown
    assert "btc.json: storing candles" in shown
    assert "Loaded 30 candles" in output
    assert "checking rows" not in output, "the bars stay off stdout"

    load(path, *MARKET, "--no-progress")
    assert "checking rows" not in capsys.readouterr().err


@pytest.mark.reliability(
    fault="candle values out of the stored range in a file (1e-30, 1e400)",
    expected="each such row rejected with its reason and counted; the rest loaded",
)
def test_it_rejects_values_the_candle_table_cannot_store_per_row(tmp_path, reliability):
    from markets.cleaning import SMALLEST_STORED

    path = tmp_path / "edges.json"
    path.write_text(
        "["
        f"[{minute(0)}, 1, 2, 1, 2, 1],"
        f"[{minute(1)}, 1e-30, 1e-30, 1e-30, 1e-30, 1],"
        f"[{minute(2)}, 1e400, 1e400, 1e400, 1e400, 1],"
        f"[{minute(3)}, 1, 2, 1, 2, 1e400],"
        f"[{minute(4)}, 1, 2, 1, 2, 1e-30],"
        f"[{minute(5)}, 1, 1e18, 1, 2, 1],"
        f"[{minute(6)}, 1e-12, 1e-12, 1e-12, 1e-12, 1e-12],"
        f"[{minute(7)}, 1, 2, 1, 2, 1]"
        "]"
    )

    output = load(path)

    assert "Loaded 3 candles" in output
    assert "Rejected 5 row(s) (of which 5 out of the stored range):" in output
    assert "  index 1: open 1E-30 is below the smallest price stored (1E-12)" in output
    assert "  index 2: open 1E+400 is not below the largest price stored (1E+18)" in output
    assert "  index 3: volume 1E+400 is not below the largest volume stored (1E+26)" in output
    assert "  index 4: volume 1E-30 is below the smallest volume stored (1E-12)" in output
    assert "  index 5: high 1E+18 is not below the largest price stored (1E+18)" in output
    smallest = Candle.objects.get(open_time=datetime(2024, 1, 1, 12, 6, tzinfo=UTC))
    assert smallest.low == smallest.volume == SMALLEST_STORED
    assert not Candle.objects.filter(low=0).exists()
    reliability.observed("each rejected with its reason; the others stored", lost=0, duplicated=0)


def test_it_rejects_out_of_range_values_in_a_csv_too(tmp_path):
    path = tmp_path / "edges.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        f"{minute(0)},1,2,1,2,1\n"
        f"{minute(1)},1e-30,1e-30,1e-30,1e-30,1\n"
        f"{minute(2)},1,1e400,1,2,1\n"
    )

    output = load(path)

    assert "Loaded 1 candles" in output
    assert "  line 3: open 1E-30 is below the smallest price stored (1E-12)" in output
    assert "  line 4: high 1E+400 is not below the largest price stored (1E+18)" in output


def test_the_stored_range_is_the_candle_tables():
    from markets.cleaning import PRICE_CEILING, SMALLEST_STORED, VOLUME_CEILING

    price, volume = Candle._meta.get_field("open"), Candle._meta.get_field("volume")
    assert Decimal(1).scaleb(-price.decimal_places) == SMALLEST_STORED
    assert Decimal(1).scaleb(-volume.decimal_places) == SMALLEST_STORED
    assert Decimal(10) ** (price.max_digits - price.decimal_places) == PRICE_CEILING
    assert Decimal(10) ** (volume.max_digits - volume.decimal_places) == VOLUME_CEILING


def test_no_room_for_the_spool_is_a_clear_error_and_stores_nothing(tmp_path, monkeypatch):
    """The accepted rows are spooled to a temporary file; when it cannot be written (here
    TMPDIR is gone, as a full disk would refuse it) the command says so and stores
    nothing, instead of a traceback."""
    import tempfile

    path = tmp_path / "btc.csv"
    path.write_text(f"timestamp,open,high,low,close,volume\n{minute(0)},1,2,1,2,10\n")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    with pytest.raises(
        CommandError, match=r"btc\.csv: No such file or directory .*gone.*nothing was loaded"
    ):
        load(path)
    assert not Candle.objects.exists()
