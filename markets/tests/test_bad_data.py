"""Bad candle data through the real ``load_candles`` command: each defect is rejected or
merged with a count, the good rows are stored, and (on the real Coinbase file, through
the real ``replay``) no signal is ever computed on a rejected row."""

import csv
import gzip
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from markets.models import Candle
from signals.models import Signal

pytestmark = pytest.mark.django_db

T0_MS = 1_704_110_400_000  # 2024-01-01 12:00 UTC
T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
MARKET = ["--exchange", "bitstamp", "--symbol", "BTC/USD", "--timeframe", "1m"]
HEADER = "timestamp_ms,open,high,low,close,volume\n"


def load(path, *market: str) -> str:
    out = StringIO()
    call_command("load_candles", str(path), *(market or MARKET), stdout=out)
    return out.getvalue()


def minute(i: int) -> int:
    return T0_MS + i * 60_000


def line(i: int, close: str = "2", volume: str = "1", time_ms: int | None = None) -> str:
    """A valid row at minute ``i``; its open is unique to the minute (no chance repeats)."""
    return f"{minute(i) if time_ms is None else time_ms},1.{i:04d},3,1,{close},{volume}\n"


def stored() -> list[tuple[datetime, Decimal]]:
    return list(Candle.objects.order_by("open_time").values_list("open_time", "close"))


def stored_times() -> list[datetime]:
    return [t for t, _ in stored()]


def test_out_of_order_rows_are_stored_in_time_order_and_counted(tmp_path):
    path = tmp_path / "unsorted.csv"
    path.write_text(HEADER + line(0) + line(2) + line(1) + line(4) + line(3) + line(5))

    output = load(path)

    assert "Read 6 row(s). Loaded 6 candles (6 new, 0 already stored)" in output
    assert "Out of order: 2 row(s) came after a later candle in the file" in output
    assert "Gaps: none." in output
    assert stored_times() == [T0 + i * MINUTE for i in range(6)]


def test_identical_duplicates_are_merged_and_conflicting_ones_reported(tmp_path):
    path = tmp_path / "dupes.csv"
    path.write_text(
        HEADER + line(0) + line(1) + line(1) + line(2) + line(2, close="2.5") + line(3) + line(1)
    )

    output = load(path)

    assert "Loaded 3 candles (3 new" in output
    assert "Merged 2 duplicate timestamp(s)" in output
    assert "Conflicts: 1 timestamp(s) given different values" in output
    assert "2024-01-01 12:02: line 5 (" in output and "vs line 6 (" in output
    assert stored_times() == [T0, T0 + MINUTE, T0 + 3 * MINUTE]


def test_a_restated_candle_on_a_second_load_is_kept_as_first_stored_and_logged(tmp_path, caplog):
    first = tmp_path / "first.csv"
    first.write_text(HEADER + line(0) + line(1) + line(2))
    load(first)
    second = tmp_path / "second.csv"
    second.write_text(HEADER + line(1) + line(2, close="2.75") + line(3))

    with caplog.at_level(logging.WARNING, logger="markets"):
        output = load(second)

    assert "Loaded 2 candles (1 new, 1 already stored)" in output
    assert "Restated: 1 candle(s) already stored with other values were kept" in output
    assert "1 restated candle(s) of bitstamp BTC/USD 1m kept as first stored" in caplog.text
    assert "2024-01-01 12:02 stored o/h/l/c/v" in caplog.text
    assert stored() == [
        (T0, Decimal(2)),
        (T0 + MINUTE, Decimal(2)),
        (T0 + 2 * MINUTE, Decimal(2)),  # not 2.75
        (T0 + 3 * MINUTE, Decimal(2)),
    ]


def test_seconds_in_a_timestamp_ms_column_are_rejected_per_row(tmp_path):
    path = tmp_path / "seconds.csv"
    path.write_text(
        HEADER + line(0) + line(1, time_ms=minute(1) // 1000) + line(2, time_ms=minute(2) // 1000)
    )

    output = load(path)

    assert "Loaded 1 candles" in output
    assert "Rejected 2 row(s):" in output
    assert f"  line 3: timestamp {minute(1) // 1000} looks like seconds, not milliseconds" in output
    assert stored_times() == [T0]


def test_seconds_in_a_plain_timestamp_column_are_read_as_seconds(tmp_path):
    path = tmp_path / "seconds.csv"
    rows = "".join(line(i, time_ms=minute(i) // 1000) for i in range(3))
    path.write_text(HEADER.replace("timestamp_ms", "timestamp") + rows)

    output = load(path)

    assert "Loaded 3 candles" in output
    assert "Rejected 0 row(s)." in output
    assert stored_times() == [T0, T0 + MINUTE, T0 + 2 * MINUTE]


def test_a_file_only_in_seconds_fails_and_stores_nothing(tmp_path):
    path = tmp_path / "seconds.json"
    path.write_text(f"[[{minute(0) // 1000}, 1, 2, 1, 2, 1], [{minute(1) // 1000}, 1, 2, 1, 2, 1]]")

    with pytest.raises(CommandError, match="nothing loaded: all 2 row"):
        load(path)
    assert Candle.objects.count() == 0


def test_future_timestamps_are_rejected_and_the_rest_stored(tmp_path):
    future = int((datetime.now(UTC) + timedelta(days=3)).timestamp()) // 60 * 60_000
    path = tmp_path / "future.csv"
    path.write_text(HEADER + line(0) + line(1) + line(9, time_ms=future))

    output = load(path)

    assert "Loaded 2 candles" in output
    assert "Rejected 1 row(s):" in output
    assert "  line 4: open time " in output and "is in the future" in output
    assert stored_times() == [T0, T0 + MINUTE]


@pytest.mark.parametrize("name", ["empty.csv", "empty.json", "blank.csv"])
def test_an_empty_file_is_a_clear_error_and_stores_nothing(tmp_path, name):
    path = tmp_path / name
    path.write_text("\n\n" if name == "blank.csv" else "")

    with pytest.raises(CommandError, match=rf"{name}: line 1: the file is empty"):
        load(path)
    assert Candle.objects.count() == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (gzip.compress((HEADER + line(0)).encode()), "a binary file (a NUL byte at offset 3)"),
        (
            (HEADER + line(0) + "# prix en \u20ac, \xe9t\xe9\n").encode("cp1252"),
            "not UTF-8 text (byte 0x80 cannot be decoded)",
        ),
        (b"\x00\x01\x02PK\x03\x04" + bytes(range(256)), "a binary file (a NUL byte at offset 0)"),
        (HEADER.encode() + line(0).encode() + b"\x00\x00", "a binary file (a NUL byte"),
    ],
    ids=["gzip", "not-utf8", "zip-like", "nul-in-csv"],
)
def test_a_binary_file_exits_non_zero_with_a_clear_error_and_stores_nothing(
    tmp_path, content, message
):
    path = tmp_path / "candles.csv"
    path.write_bytes(content)

    with pytest.raises(CommandError) as caught:
        load(path)

    # ``manage.py`` exits with this status (``BaseCommand.run_from_argv``).
    assert caught.value.returncode != 0
    assert message in str(caught.value)
    assert Candle.objects.count() == 0


def test_a_csv_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(("\ufeff" + HEADER + line(0) + line(1)).encode("utf-8"))

    output = load(path)

    assert "Loaded 2 candles (2 new, 0 already stored)" in output
    assert "Rejected 0 row(s)." in output
    assert stored_times() == [T0, T0 + MINUTE]


def test_flat_candles_without_trades_are_rejected_as_fillers(tmp_path):
    path = tmp_path / "filler.csv"
    path.write_text(
        HEADER
        + line(0)
        + f"{minute(1)},2,2,2,2,0\n"
        + f"{minute(2)},2,2,2,2,0\n"
        + f"{minute(3)},2,2.5,2,2.5,0\n"  # volume 0 but not flat: a real (if odd) candle
        + line(4)
    )

    output = load(path)

    assert "Loaded 3 candles" in output
    assert "Rejected 2 row(s) (of which 2 filler(s) without trades):" in output
    assert "  line 3: filler: no trades (open = high = low = close, volume 0)" in output
    assert "Gaps: 1 (2 missing candle(s)):" in output
    assert stored_times() == [T0, T0 + 3 * MINUTE, T0 + 4 * MINUTE]


def test_a_spliced_run_of_repeated_candles_is_rejected_and_becomes_a_gap(tmp_path):
    # Minutes 5-7 repeat the values of minutes 1-3 (a stretch pasted 4 minutes later);
    # minute 9 repeats minute 0 alone, which can happen by chance, so it stays.
    def values(i: int) -> str:
        return f"1.{i:04d},3,1,2.{i:04d},{i + 1}"

    rows = [f"{minute(i)},{values(i)}\n" for i in range(5)]
    rows += [f"{minute(i)},{values(i - 4)}\n" for i in range(5, 8)]
    rows += [f"{minute(8)},{values(8)}\n", f"{minute(9)},{values(0)}\n"]
    path = tmp_path / "spliced.csv"
    path.write_text(HEADER + "".join(rows))

    output = load(path)

    assert "Loaded 7 candles" in output
    assert "Rejected 3 row(s) (of which 3 spliced repeat(s)):" in output
    assert "  line 7: repeats the candle of 2024-01-01 12:01: spliced data" in output
    assert "  line 9: repeats the candle of 2024-01-01 12:03: spliced data" in output
    assert "2024-01-01 12:05 to 2024-01-01 12:07 (3 missing)" in output
    assert stored_times() == [T0 + i * MINUTE for i in (0, 1, 2, 3, 4, 8, 9)]


def _coinbase_defects(path) -> tuple[set[datetime], set[datetime]]:
    """Plain reference: fillers (flat, volume 0) and rows repeating an earlier candle's
    whole (o, h, l, c, v) with volume > 0, by reading the CSV row by row."""
    fillers, repeats, seen = set(), set(), {}
    with path.open() as rows:
        for row in csv.DictReader(rows):
            when = datetime.fromtimestamp(int(row["timestamp_ms"]) / 1000, UTC)
            values = tuple(Decimal(row[k]) for k in ("open", "high", "low", "close", "volume"))
            if values[4] == 0 and len(set(values[:4])) == 1:
                fillers.add(when)
            elif values[4] > 0:
                if values in seen:
                    repeats.add(when)
                seen.setdefault(values, when)
    return fillers, repeats


@pytest.mark.shared_data
def test_the_real_coinbase_hourly_file_loses_its_splice_and_fillers_and_no_signal_uses_them(
    shared_dir,
):
    path = shared_dir / "data/candles/coinbase/Coinbase_BTCUSD_1h.normalized.csv"
    market = ["--exchange", "coinbase", "--symbol", "BTC/USD", "--timeframe", "1h"]
    fillers, repeats = _coinbase_defects(path)
    splice_day = datetime(2017, 11, 12, tzinfo=UTC)
    assert repeats == {splice_day + timedelta(hours=h) for h in range(4, 9)}
    assert len(fillers) == 28

    output = load(path, *market)

    assert "Read 20111 row(s). Loaded 20078 candles (20078 new, 0 already stored)" in output
    assert "Rejected 33 row(s) (of which 5 spliced repeat(s), 28 filler(s) without trades):" in (
        output
    )
    assert ": repeats the candle of 2017-11-11 23:00: spliced data" in output
    assert ": repeats the candle of 2017-11-12 03:00: spliced data" in output
    assert "  2017-11-12 04:00 to 2017-11-12 08:00 (5 missing)" in output
    assert "  2018-08-10 01:00 to 2018-08-10 15:00 (15 missing)" in output
    rejected = fillers | repeats
    assert not Candle.objects.filter(exchange="coinbase", open_time__in=rejected).exists()
    assert Candle.objects.filter(exchange="coinbase").count() == 20111 - len(rejected)

    replayed = StringIO()
    call_command(
        "replay",
        *market,
        "--since",
        "2017-10-15",
        "--until",
        "2018-09-15",
        "--no-progress",
        stdout=replayed,
    )

    signals = Signal.objects.filter(symbol="BTC/USD")
    assert signals.count() > 20, replayed.getvalue()
    assert not signals.filter(candle_time__in=rejected).exists()
    on_stored = signals.filter(
        candle_time__in=Candle.objects.filter(exchange="coinbase").values("open_time")
    )
    assert on_stored.count() == signals.count()
