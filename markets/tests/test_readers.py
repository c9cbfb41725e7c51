from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from markets.cleaning import clean_candles
from markets.errors import CandleFileError
from markets.readers import iter_candle_file, read_candle_file
from markets.tests.shared_data import shared_path

T0_MS = 1_704_110_400_000  # 2024-01-01 12:00 UTC
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ccxt_json_array_is_read_with_exact_decimals_and_indexes(tmp_path):
    path = write(
        tmp_path,
        "c.json",
        f"[[{T0_MS}, 0.0984, 0.0994766, 0.09828605, 0.0994766, 1820.54447418],\n"
        f" [{T0_MS + 60_000}, 1, 2, 1, 2, 0]]",
    )

    first, second = read_candle_file(path)

    assert first.time_ms == T0_MS
    assert first.low == Decimal("0.09828605")
    assert first.volume == Decimal("1820.54447418")
    assert (first.where, second.where) == ("index 0", "index 1")
    assert second.open == Decimal(1)


def test_csv_with_epoch_milliseconds_is_read_with_line_numbers(tmp_path):
    path = write(
        tmp_path,
        "c.csv",
        f"timestamp,open,high,low,close,volume\n{T0_MS},1,2,0.5,1.5,10\n{T0_MS + 60_000},1,2,1,2,3\n",
    )

    rows = read_candle_file(path)

    assert [r.time_ms for r in rows] == [T0_MS, T0_MS + 60_000]
    assert [r.where for r in rows] == ["line 2", "line 3"]
    assert rows[0].low == Decimal("0.5")


def test_csv_header_is_matched_case_insensitively_in_any_order_ignoring_other_columns(tmp_path):
    path = write(
        tmp_path,
        "c.csv",
        f"Symbol,Volume,Close,Low,High,Open,Timestamp\nBTC/USD,10,1.5,0.5,2,1,{T0_MS}\n",
    )

    [candle] = read_candle_file(path)

    assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
        Decimal(1),
        Decimal(2),
        Decimal("0.5"),
        Decimal("1.5"),
        Decimal(10),
    )


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01 12:00:00.000000",  # FTX layout, no zone: UTC
        "2024-01-01T12:00:00Z",
        "2024-01-01T13:00:00+01:00",
        "1704110400",  # epoch seconds
        "1704110400000",
    ],
)
def test_csv_time_column_accepts_iso_text_and_epoch_numbers(tmp_path, text):
    path = write(tmp_path, "c.csv", f"date,open,high,low,close,volume\n{text},1,1,1,1,1\n")

    [candle] = read_candle_file(path)

    assert candle.time_ms == T0_MS


def test_csv_date_only_is_midnight_utc(tmp_path):
    path = write(tmp_path, "d.csv", "Date,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n")

    [candle] = read_candle_file(path)

    assert candle.time_ms == int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


def test_timestamp_ms_wins_over_a_human_readable_datetime_column(tmp_path):
    path = write(
        tmp_path,
        "c.csv",
        f"datetime_utc,timestamp_ms,open,high,low,close,volume\n"
        f"1999-01-01T00:00:00Z,{T0_MS},1,1,1,1,1\n",
    )

    [candle] = read_candle_file(path)

    assert candle.time_ms == T0_MS


def test_values_that_parse_but_are_bad_reach_cleaning_instead_of_failing_the_file(tmp_path):
    path = write(
        tmp_path,
        "c.csv",
        "timestamp,open,high,low,close,volume\n"
        f"{T0_MS},1,2,1,2,1\n"
        f"{T0_MS + 60_000},NaN,2,1,2,1\n"
        f"{T0_MS + 120_000},1,1,2,1,1\n"
        f"{T0_MS + 180_000},,2,1,2,1\n",
    )

    result = clean_candles(read_candle_file(path), timeframe=timedelta(minutes=1), now=NOW)

    assert len(result.bars) == 1
    assert [str(r) for r in result.rejections] == [
        "line 3: open is NaN",
        "line 4: high 1 is below low 2",
        "line 5: open is missing",
    ]


def test_json_nan_and_null_reach_cleaning(tmp_path):
    path = write(
        tmp_path, "c.json", f"[[{T0_MS}, NaN, 2, 1, 2, 1], [{T0_MS + 60000}, 1, 2, 1, 2, null]]"
    )

    result = clean_candles(read_candle_file(path), timeframe=timedelta(minutes=1), now=NOW)

    assert [str(r) for r in result.rejections] == [
        "index 0: open is NaN",
        "index 1: volume is missing",
    ]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.json", "[[1, 2, 3, 4, 5, 6],\n [1, 2, 3", "line 2 column 10: invalid JSON"),
        ("b.json", '{"date": {}}', "line 1: expected a JSON array"),
        ("c.json", f"[[{T0_MS}, 1, 2, 1, 2, 1], [{T0_MS}, 1, 2, 1]]", "index 1: expected [ms,"),
        ("d.json", '[[1.5e12, 1, 2, 1, 2, 1], ["x", 1, 1, 1, 1, 1]]', "index 1: timestamp 'x'"),
        ("e.json", f'[[{T0_MS}, "abc", 1, 1, 1, 1]]', "index 0: open 'abc' is not a number"),
        ("f.csv", "time,open,high,low,close\n1,1,1,1,1\n", "line 1: missing column(s) volume"),
        ("g.csv", "when,open,high,low,close,volume\n", "line 1: no time column"),
        (
            "h.csv",
            f"timestamp,open,high,low,close,volume\n{T0_MS},1,1,1,1,1\n{T0_MS},1,x,1,1,1\n",
            "line 3: high 'x' is not a number",
        ),
        (
            "i.csv",
            "timestamp,open,high,low,close,volume\n2024-13-45 10:00,1,1,1,1,1\n",
            "line 2: timestamp '2024-13-45 10:00' is neither epoch milliseconds nor an ISO date-time",
        ),
        (
            "j.csv",
            f"timestamp,open,high,low,close,volume\n\n{T0_MS},1,1,1,1\n",
            "line 3: expected 6 fields like the header, got 5",
        ),
        (
            "k.csv",
            "timestamp,open,high,low,close,volume\n,1,1,1,1,1\n",
            "line 2: the timestamp is empty",
        ),
        ("l.csv", "", "line 1: the file is empty"),
        (
            "m.csv",
            "timestamp,open,Open,high,low,close,volume\n",
            "line 1: column 'Open' appears twice",
        ),
    ],
)
def test_malformed_file_raises_an_error_naming_the_line_or_index(tmp_path, name, text, message):
    path = write(tmp_path, name, text)

    with pytest.raises(CandleFileError) as caught:
        read_candle_file(path)

    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CandleFileError, match="no such file"):
        read_candle_file(tmp_path / "nope.csv")


@pytest.mark.shared_data
def test_real_ftx_csv_with_naive_iso_timestamps_reads_clean_without_gaps():
    path = shared_path("candles/ftx/btc-perp-20211231-20220201_1m.csv")

    result = clean_candles(read_candle_file(path), timeframe=timedelta(minutes=1), now=NOW)

    assert len(result.bars) == 45031
    assert result.bars[0].open_time == datetime(2021, 12, 31, 23, 1, tzinfo=UTC)
    assert result.bars[-1].open_time == datetime(2022, 2, 1, 5, 31, tzinfo=UTC)
    assert result.bars[0].open == Decimal("46319.0")
    assert (result.rejections, result.merged, result.gaps) == ([], 0, [])


@pytest.mark.shared_data
def test_real_coinbase_normalized_csv_reads_timestamp_ms_and_finds_the_missing_march_days():
    path = shared_path("candles/coinbase/Coinbase_BTCUSD_d.normalized.csv")

    result = clean_candles(read_candle_file(path), timeframe=timedelta(days=1), now=NOW)

    assert len(result.bars) == 1770
    assert result.bars[0].open_time == datetime(2014, 12, 1, tzinfo=UTC)
    [gap] = result.gaps
    assert (gap.start, gap.end, gap.missing) == (
        datetime(2019, 3, 20, tzinfo=UTC),
        datetime(2019, 3, 31, tzinfo=UTC),
        12,
    )


@pytest.mark.shared_data
def test_real_bittrex_json_reports_its_known_gaps():
    path = shared_path("candles/bittrex/ADA_BTC-5m.json")

    result = clean_candles(read_candle_file(path), timeframe=timedelta(minutes=5), now=NOW)

    assert len(result.bars) == 5720
    assert result.missing == 40
    assert max(gap.missing for gap in result.gaps) == 33
    assert result.rejections == []


def test_iter_candle_file_streams_a_csv_row_by_row(tmp_path):
    path = tmp_path / "late_error.csv"
    path.write_text(
        "timestamp_ms,open,high,low,close,volume\n"
        "1704110400000,1,2,1,2,1\n"
        "1704110460000,1,2,1,2,1\n"
        "1704110520000,1,2\n"
    )

    rows = iter_candle_file(path)

    assert next(rows).where == "line 2"
    assert next(rows).where == "line 3"
    with pytest.raises(CandleFileError, match="line 4: expected 6 fields like the header, got 3"):
        next(rows)


def test_a_csv_with_a_byte_order_mark_and_a_json_without_the_suffix_are_read(tmp_path):
    csv_path = tmp_path / "bom.csv"
    csv_path.write_bytes(
        b"\xef\xbb\xbftimestamp_ms,open,high,low,close,volume\r\n1704110400000,1,2,1,2,1\r\n"
    )
    json_path = tmp_path / "candles.txt"
    json_path.write_text("  [[1704110400000, 1, 2, 1, 2, 1]]")

    [from_csv] = read_candle_file(csv_path)
    [from_json] = read_candle_file(json_path)

    assert from_csv.time_ms == from_json.time_ms == 1_704_110_400_000
    assert (from_csv.where, from_json.where) == ("line 2", "index 0")
