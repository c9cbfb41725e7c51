from datetime import UTC, datetime, timedelta, timezone

import pytest

from markets.timestamps import floor_to_grid, is_on_grid, ms_from_utc, parse_utc, utc_from_ms


def test_milliseconds_round_trip_exactly():
    moment = datetime(2024, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)

    assert utc_from_ms(ms_from_utc(moment)) == moment
    assert ms_from_utc(datetime(1970, 1, 1, 0, 0, 1)) == 1000  # naive is UTC


@pytest.mark.parametrize(
    "text",
    ["2024-01-31T10:00:00Z", "2024-01-31 10:00", "2024-01-31T11:00:00+01:00", " 2024-01-31T10:00 "],
)
def test_parse_utc_reads_iso_text_as_utc(text):
    assert parse_utc(text) == datetime(2024, 1, 31, 10, tzinfo=UTC)


def test_parse_utc_date_only_is_midnight_and_result_is_in_utc():
    parsed = parse_utc("2024-01-31")

    assert parsed == datetime(2024, 1, 31, tzinfo=UTC)
    assert parsed.tzinfo is UTC
    assert parse_utc("2024-01-31T05:00-05:00").utcoffset() == timedelta(0)
    assert parse_utc("2024-01-31T05:00-05:00") == datetime(
        2024, 1, 31, 5, tzinfo=timezone(timedelta(hours=-5))
    )


def test_parse_utc_rejects_other_text_with_an_example():
    with pytest.raises(ValueError, match="'yesterday' is not an ISO date or date-time"):
        parse_utc("yesterday")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-13-45", r"'2024-13-45' is not an ISO date or date-time \(month must be in 1\.\.12"),
        ("2024-02-30", r"is not an ISO date or date-time \(day is out of range for month"),
        ("9999-12-31T23:59-05:00", "is out of range once converted to UTC"),
        ("0001-01-01T00:00+05:00", "is out of range once converted to UTC"),
    ],
)
def test_parse_utc_rejects_impossible_dates_with_a_value_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_utc(text)


def test_grid_helpers():
    moment = datetime(2024, 1, 1, 10, 37, 12, tzinfo=UTC)

    assert floor_to_grid(moment, timedelta(hours=1)) == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert floor_to_grid(moment, timedelta(minutes=5)) == datetime(2024, 1, 1, 10, 35, tzinfo=UTC)
    assert is_on_grid(datetime(2024, 1, 1, 10, 35, tzinfo=UTC), timedelta(minutes=5))
    assert not is_on_grid(moment, timedelta(minutes=1))
