"""A file load checks plain CSV rows on a fast path (floats or Decimals, no RawCandle or
Bar) and keeps the accepted rows in a spool instead of reading the file twice: every
verdict, report and stored value must be the one the row-by-row checks give."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from markets.cleaning import CandleSorter, CleanedCandles, _identity, clean_candles
from markets.models import Candle
from markets.readers import iter_candle_rows, new_digest, read_candle_file
from markets.services import _stored

MINUTE = timedelta(minutes=1)
T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)
T0_MS = 1_704_110_400_000
NOW = T0 + timedelta(minutes=420)
HEADER = "timestamp_ms,open,high,low,close,volume\n"

# Values as files write them: plain (fast path, float tier), long plain (Decimal tier),
# and forms only the row-by-row path reads (exponent, sign, spaces, more than 12 places).
SAME_VALUES = {
    "2": ["2", "2.0", "02", "2.000000000000", " 2", "+2", "2E0", "2.0000000000000", "0002.000"],
    "0.1": ["0.1", "0.10", "00.1", "1E-1", "0.1000000000000", ".1"],
    "46319.5": ["46319.5", "46319.500000", "46319.5000000000", "4.63195E+4"],
    "1234567.12345678": ["1234567.12345678", "1234567.123456780", "01234567.12345678"],
    "0": ["0", "0.0", "0.000000000000", "-0", "0E-20"],
}
ODD_VALUES = [
    "1.0000000000005",  # 13 places: rounds half to even, to 1.000000000000
    "1.0000000000015",
    "0.0000001",  # prints as 1E-7
    "1E-12",
    "1E-13",  # below the smallest stored
    "999999999999999",
    "1000000000000000000",  # a price not below 1E+18
    "123456789012345678901234567",  # a volume not below 1E+26
    "NaN",
    "-1",
    "",
    "7.123456789012",
    "99999999999999.99",
]


def _load(path: Path) -> None:
    """``manage.py load_candles`` of ``path`` into x BTC/USD 1m."""
    call_command(
        "load_candles",
        str(path),
        *("--exchange", "x", "--symbol", "BTC/USD", "--timeframe", "1m"),
        stdout=StringIO(),
    )


def _value(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return rng.choice(ODD_VALUES)
    return rng.choice(rng.choice(list(SAME_VALUES.values())))


def _time(rng: random.Random, index: int) -> int:
    pick = rng.random()
    if pick < 0.03:
        return T0_MS + index * 60_000 + 30_000  # off the grid
    if pick < 0.05:
        return (T0_MS + index * 60_000) // 1000  # seconds
    if pick < 0.07:
        return T0_MS + rng.randrange(418, 440) * 60_000  # open or in the future
    if pick < 0.25:
        return T0_MS + rng.randrange(0, max(index, 1)) * 60_000  # an earlier minute again
    return T0_MS + index * 60_000


def _random_file(path: Path, seed: int, rows: int = 400) -> Path:
    rng = random.Random(seed)
    lines = [HEADER]
    run: list[str] = []
    for index in range(rows):
        if lines[1:] and rng.random() < 0.08:
            lines.append(rng.choice(lines[1:]))  # an identical duplicate
            continue
        if run and rng.random() < 0.05:
            # A repeat of earlier rows' values at later times: spliced data, or not.
            values = run[rng.randrange(len(run))]
        elif rng.random() < 0.5:
            low, high = sorted(Decimal(rng.choice(v).strip() or 1) for v in (["1"], ["2"]))
            values = ",".join(
                [_value(rng), _value(rng), _value(rng), _value(rng), _value(rng)]
                if rng.random() < 0.3
                else [str(low), str(high), str(low), str(high), _value(rng)]
            )
        else:
            base = rng.choice(["1", "2", "0.1", "46319.5"])
            text = rng.choice(SAME_VALUES.get(base, [base]))
            values = ",".join([text, text, text, text, _value(rng)])
        run.append(values)
        lines.append(f"{_time(rng, index)},{values}\n")
    path.write_text("".join(lines))
    return path


def _spooled(path: Path, chunk_rows: int) -> tuple[CleanedCandles, list[tuple[str, ...]], int]:
    with CandleSorter(timeframe=MINUTE, now=NOW, reject_fillers=True) as sorter:
        sorter.scan_spooled(iter_candle_rows(path, new_digest()))
        sorter.decide()
        bars = [bar for chunk in sorter.spooled_chunks(chunk_rows) for bar in chunk]
        result = sorter.result()
    return result, [_shown(bar) for bar in sorted(bars, key=lambda bar: bar.open_time)], len(bars)


def _shown(bar) -> tuple[str, ...]:
    return (bar.open_time.isoformat(), *map(repr, (bar.open, bar.high, bar.low, bar.close)))


def _report(result: CleanedCandles) -> tuple:
    return (
        [str(r) for r in result.rejections],
        [str(c) for c in result.conflicts],
        [str(g) for g in result.gaps],
        result.kept,
        result.rejected,
        result.merged,
        result.conflicted,
        result.spliced,
        result.fillers,
        result.out_of_range,
        result.out_of_order,
        result.dropped_open,
        result.gap_total,
        result.missing,
        result.first,
        result.last,
    )


@pytest.mark.parametrize("seed", range(12))
def test_the_fast_path_and_the_spool_give_what_the_row_by_row_checks_give(tmp_path, seed):
    path = _random_file(tmp_path / "random.csv", seed)
    reference = clean_candles(
        read_candle_file(path), timeframe=MINUTE, now=NOW, reject_fillers=True
    )

    result, bars, count = _spooled(path, chunk_rows=7)

    assert _report(result) == _report(reference)
    assert bars == [_shown(bar) for bar in reference.bars]
    assert count == reference.kept
    assert reference.rejected and reference.merged  # the file exercises both


def test_one_value_written_many_ways_is_one_candle_and_different_values_conflict(tmp_path):
    rows = []
    for minute, (value, texts) in enumerate(SAME_VALUES.items()):
        if value == "0":
            continue
        for text in texts:
            rows.append(f"{T0_MS + minute * 60_000},{text},{text},{text},{text},1\n")
    rows.append(f"{T0_MS + 10 * 60_000},1.00000000000001,2,1,2,1\n")
    rows.append(f"{T0_MS + 10 * 60_000},1.00000000000002,2,1,2,1\n")
    path = tmp_path / "same.csv"
    path.write_text(HEADER + "".join(rows))

    result, bars, _ = _spooled(path, chunk_rows=3)

    assert result.rejected == 0
    assert result.merged == sum(
        len(texts) - 1 for value, texts in SAME_VALUES.items() if value != "0"
    )
    assert result.conflicted == 1 and len(bars) == 4
    assert [str(c) for c in result.conflicts] == [
        "2024-01-01 12:10: line 24 (open 1.00000000000001, high 2, low 1, close 2, volume 1) "
        "vs line 25 (open 1.00000000000002, high 2, low 1, close 2, volume 1)"
    ]


def test_identities_are_equal_exactly_when_the_values_are():
    rng = random.Random(7)
    texts = [t.strip() or "0" for texts in SAME_VALUES.values() for t in texts]
    texts += [t for t in ODD_VALUES if t not in ("", "NaN")]
    texts += [
        f"{rng.randrange(10 ** rng.randrange(1, 20))}.{rng.randrange(10**12):012d}"[:18]
        for _ in range(300)
    ]
    values = [Decimal(t) for t in texts]
    for x in values:
        for y in values:
            assert (_identity(x) == _identity(y)) == (x == y), (x, y)
    # What the fast path computes from a plain text of at most 15 characters.
    for text in texts:
        if len(text) < 16 and text.replace(".", "", 1).isdigit():
            assert float(text) == _identity(Decimal(text))


ODD_STORED_FILE = (
    HEADER
    + f"{T0_MS},1.0000000000005,2,1,1.5,0.0000001\n"
    + f"{T0_MS + 60_000},1.0000000000015,2.5E0,1,2,12345.1234567890\n"
    + f"{T0_MS + 120_000},46319.500000,46320,46319,46319.5,4851453.305300\n"
    + f"{T0_MS + 180_000},0.000000000001,0.000000000003,0.000000000001,0.000000000002,0\n"
)


@pytest.mark.django_db
def test_stored_values_are_those_of_the_row_by_row_path(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text(ODD_STORED_FILE)

    _load(path)

    expected = [
        (
            bar.open_time,
            *(
                _stored(getattr(bar, name), name)
                for name in ("open", "high", "low", "close", "volume")
            ),
        )
        for bar in clean_candles(read_candle_file(path), timeframe=MINUTE, now=NOW).bars
    ]
    stored = list(
        Candle.objects.order_by("open_time").values_list(
            "open_time", "open", "high", "low", "close", "volume"
        )
    )
    assert [tuple(map(str, row)) for row in stored] == [tuple(map(str, row)) for row in expected]
    assert stored[0][1] == Decimal("1.000000000000")  # half to even, as Python rounds
    assert stored[1][1] == Decimal("1.000000000002")


@pytest.mark.django_db
def test_a_value_that_rounds_out_of_its_column_stores_nothing(tmp_path):
    path = tmp_path / "edge.csv"
    path.write_text(
        HEADER
        + f"{T0_MS},1,2,1,2,1\n"
        + f"{T0_MS + 60_000},1,999999999999999999.9999999999999,1,2,1\n"
    )

    with pytest.raises(
        CommandError, match=r"high 999999999999999999.9999999999999 is too large to store"
    ):
        _load(path)
    assert Candle.objects.count() == 0


def test_the_digest_covers_every_byte_read(tmp_path):
    from markets.readers import candle_file_digest

    path = tmp_path / "d.csv"
    path.write_text(HEADER + "".join(f"{T0_MS + i * 60_000},1,2,1,2,{i}\n" for i in range(3000)))
    digest = new_digest()

    rows = list(iter_candle_rows(path, digest))

    assert len(rows) == 3000
    assert digest.hexdigest() == candle_file_digest(path)
    path.write_text(path.read_text().replace(",2999\n", ",2998\n"))
    assert digest.hexdigest() != candle_file_digest(path)


def test_a_spliced_run_written_in_other_forms_is_found_as_on_the_row_by_row_path(tmp_path):
    forms = [
        lambda v: v,
        lambda v: f"{v}.000000" if "." not in v else f"{v}000",
        lambda v: f"{v}.0000000000" if "." not in v else f"{v}0000000",  # the Decimal tier
        lambda v: f"{Decimal(v):E}",  # the row-by-row path
    ]
    lines = [HEADER]
    for i in range(40):
        price = 30000 + (i * 7919) % 1000
        values = [str(price), str(price + 5), str(price - 5), str(price + 1), f"1.{i:04d}"]
        lines.append(f"{T0_MS + i * 60_000},{','.join(values)}\n")
    for i in range(40, 52):  # minutes 40-51 repeat minutes 10-21, each in another form
        price = 30000 + ((i - 30) * 7919) % 1000
        values = [str(price), str(price + 5), str(price - 5), str(price + 1), f"1.{i - 30:04d}"]
        form = forms[i % len(forms)]
        lines.append(f"{T0_MS + i * 60_000},{','.join(form(v) for v in values)}\n")
    path = tmp_path / "spliced.csv"
    path.write_text("".join(lines))
    reference = clean_candles(
        read_candle_file(path), timeframe=MINUTE, now=NOW, reject_fillers=True
    )

    result, bars, _ = _spooled(path, chunk_rows=5)

    assert reference.spliced == 12
    assert _report(result) == _report(reference)
    assert bars == [_shown(bar) for bar in reference.bars]
