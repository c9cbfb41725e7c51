import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from markets.bars import Bar
from markets.cleaning import RawCandle, clean_candles

MINUTE = timedelta(minutes=1)
T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
LATER = T0 + timedelta(days=1)


def row(minute: int, o="100", h="110", low="90", c="105", v="2", where="") -> RawCandle:
    return RawCandle(T0_MS + minute * 60_000, o, h, low, c, v, where=where)


def test_good_rows_become_closed_bars_with_exact_decimals():
    result = clean_candles([row(0), row(1, c="101.5")], timeframe=MINUTE, now=LATER)

    assert result.bars == [
        Bar(T0, Decimal(100), Decimal(110), Decimal(90), Decimal(105), Decimal(2)),
        Bar(T0 + MINUTE, Decimal(100), Decimal(110), Decimal(90), Decimal("101.5"), Decimal(2)),
    ]
    assert result.rejections == []
    assert result.merged == 0
    assert result.gaps == []
    assert not result.dropped_open


def test_floats_from_ccxt_become_the_decimals_they_print_as():
    raw = RawCandle(T0_MS, 0.1, 0.3, 0.1, 0.2, 1e-08)

    [bar] = clean_candles([raw], timeframe=MINUTE, now=LATER).bars

    assert (bar.open, bar.high, bar.close, bar.volume) == (
        Decimal("0.1"),
        Decimal("0.3"),
        Decimal("0.2"),
        Decimal("1E-8"),
    )


def test_unsorted_rows_come_out_in_time_order_and_are_flagged():
    result = clean_candles([row(2), row(0), row(1)], timeframe=MINUTE, now=LATER)

    assert [bar.open_time for bar in result.bars] == [T0, T0 + MINUTE, T0 + 2 * MINUTE]
    assert result.reordered


def test_identical_duplicate_rows_are_stored_once_and_counted_as_merges():
    rows = [row(0, c="101"), row(1), row(0, c="101.0"), row(0, c="101")]

    result = clean_candles(rows, timeframe=MINUTE, now=LATER)

    assert [bar.close for bar in result.bars] == [Decimal(101), Decimal(105)]
    assert result.merged == 2
    assert result.conflicts == []


def test_duplicate_timestamp_with_different_values_is_a_conflict_and_neither_row_is_kept():
    rows = [
        row(0, c="101", where="line 2"),
        row(1, where="line 3"),
        row(0, c="102", where="line 4"),
    ]

    result = clean_candles(rows, timeframe=MINUTE, now=LATER)

    assert [bar.open_time for bar in result.bars] == [T0 + MINUTE]
    assert result.merged == 0
    assert result.rejections == []
    [conflict] = result.conflicts
    assert [where for where, _ in conflict.rows] == ["line 2", "line 4"]
    assert str(conflict) == (
        "2024-01-01 12:00: line 2 (open 100, high 110, low 90, close 101, volume 2) vs "
        "line 4 (open 100, high 110, low 90, close 102, volume 2)"
    )


def test_conflicts_are_logged(caplog):
    rows = [row(0, c="101", where="line 2"), row(0, c="102", where="line 3")]

    with caplog.at_level(logging.WARNING, logger="markets"):
        clean_candles(rows, timeframe=MINUTE, now=LATER)

    assert "1 conflicting duplicate candle timestamps" in caplog.text
    assert "line 2 (open 100" in caplog.text


@pytest.mark.parametrize(
    ("time_ms", "reason"),
    [
        (T0_MS // 1000, f"timestamp {T0_MS // 1000} looks like seconds, not milliseconds"),
        (T0_MS * 1000, f"timestamp {T0_MS * 1000} is out of range (16 digits;"),
        (10**30, "is out of range (31 digits;"),
        (-T0_MS, "is out of range (1916-01-01 12:00; expected epoch milliseconds from 2009"),
        (0, "timestamp 0 is out of range"),
        (946_684_800_000, "is out of range (12 digits;"),  # 2000-01-01
        (4_102_444_800_000, "is out of range (2100-01-01 00:00;"),
    ],
)
def test_implausible_timestamps_are_rejected_per_row(time_ms, reason):
    bad = RawCandle(time_ms, "1", "1", "1", "1", "1", where="line 3")

    result = clean_candles([row(0), bad, row(1)], timeframe=MINUTE, now=LATER)

    assert len(result.bars) == 2
    [rejection] = result.rejections
    assert rejection.where == "line 3"
    assert reason in rejection.reason


def test_timestamps_at_the_edges_of_the_plausible_range_are_kept():
    early = RawCandle(1_230_768_000_000, "1", "1", "1", "1", "1")  # 2009-01-01
    late = RawCandle(4_102_444_800_000 - 60_000, "1", "1", "1", "1", "1")  # 2099-12-31 23:59

    result = clean_candles([early, late], timeframe=MINUTE, now=datetime(2100, 1, 2, tzinfo=UTC))

    assert len(result.bars) == 2
    assert result.rejections == []


def test_still_open_last_candle_is_dropped():
    now = T0 + 2 * MINUTE + timedelta(seconds=30)

    result = clean_candles([row(0), row(1), row(2)], timeframe=MINUTE, now=now)

    assert [bar.open_time for bar in result.bars] == [T0, T0 + MINUTE]
    assert result.dropped_open
    assert result.rejections == []


def test_candle_opening_just_after_now_is_clock_skew_and_dropped_like_an_open_one():
    result = clean_candles([row(0), row(1)], timeframe=MINUTE, now=T0 + timedelta(seconds=59))

    assert [bar.open_time for bar in result.bars] == []
    assert result.dropped_open
    assert result.rejections == []


def test_candle_closing_exactly_now_is_kept():
    result = clean_candles([row(0), row(1)], timeframe=MINUTE, now=T0 + 2 * MINUTE)

    assert len(result.bars) == 2
    assert not result.dropped_open


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (row(1, o="NaN"), "open is NaN"),
        (row(1, c="nan"), "close is NaN"),
        (row(1, h="Infinity"), "high is Infinity (not finite)"),
        (row(1, o="0"), "open 0 is not positive"),
        (row(1, low="-5"), "low -5 is not positive"),
        (row(1, v="-1"), "volume -1 is negative"),
        (row(1, h="80", low="90", o="85", c="85"), "high 80 is below low 90"),
        (row(1, h="104"), "high 104 is below max(open, close) 105"),
        (row(1, low="101"), "low 101 is above min(open, close) 100"),
        (row(1, o=None), "open is missing"),
        (row(1, v=None), "volume is missing"),
        (row(1, c="abc"), "close 'abc' is not a number"),
        (RawCandle(T0_MS + 90_000, "1", "1", "1", "1", "1"), "is not on the 1m grid"),
        (RawCandle(T0_MS + 86_400_000 * 2, "1", "1", "1", "1", "1"), "is in the future"),
    ],
)
def test_bad_row_is_rejected_with_its_location_and_reason_while_good_rows_load(bad, reason):
    bad = RawCandle(bad.time_ms, bad.open, bad.high, bad.low, bad.close, bad.volume, "line 3")

    result = clean_candles([row(0), bad, row(2)], timeframe=MINUTE, now=LATER)

    assert [bar.open_time for bar in result.bars] == [T0, T0 + 2 * MINUTE]
    [rejection] = result.rejections
    assert rejection.where == "line 3"
    assert reason in rejection.reason
    assert str(rejection).startswith("line 3: ")


def test_zero_volume_candles_are_kept():
    # Kraken reports minutes without trades as flat zero-volume candles: real data, not errors.
    result = clean_candles([row(0, v="0.00000000")], timeframe=MINUTE, now=LATER)

    assert result.bars[0].volume == 0
    assert result.rejections == []


def test_rejection_without_a_location_names_the_row_index():
    result = clean_candles([row(0), row(1, o="NaN")], timeframe=MINUTE, now=LATER)

    assert str(result.rejections[0]) == "row 1: open is NaN"


def test_a_rejected_duplicate_does_not_replace_the_good_one():
    result = clean_candles([row(0, c="101"), row(0, c="NaN")], timeframe=MINUTE, now=LATER)

    assert [bar.close for bar in result.bars] == [Decimal(101)]
    assert len(result.rejections) == 1
    assert result.merged == 0


def test_gaps_report_the_missing_open_times_and_counts():
    result = clean_candles([row(0), row(1), row(5), row(7)], timeframe=MINUTE, now=LATER)

    assert [(g.start, g.end, g.missing) for g in result.gaps] == [
        (T0 + 2 * MINUTE, T0 + 4 * MINUTE, 3),
        (T0 + 6 * MINUTE, T0 + 6 * MINUTE, 1),
    ]
    assert result.missing == 4
    assert str(result.gaps[0]) == "2024-01-01 12:02 to 2024-01-01 12:04 (3 missing)"


def test_rejections_are_logged_with_their_count(caplog):
    rows = [row(0), row(1, o="NaN"), row(2, h="1", low="2")]

    with caplog.at_level(logging.WARNING, logger="markets"):
        clean_candles(rows, timeframe=MINUTE, now=LATER)

    [record] = [r for r in caplog.records if r.name == "markets"]
    assert "rejected 2 of 3 candle rows" in record.getMessage()
    assert "row 1: open is NaN" in record.getMessage()


def test_weekly_candles_are_not_held_to_the_epoch_grid():
    # ccxt's weekly candles open on Mondays; the epoch grid would put them on Thursdays.
    monday_ms = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
    raw = RawCandle(monday_ms, "1", "2", "1", "2", "3")

    result = clean_candles([raw], timeframe=timedelta(weeks=1), now=LATER + timedelta(weeks=2))

    assert len(result.bars) == 1
