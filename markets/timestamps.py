"""UTC time conversions for candles: epoch milliseconds, ISO text and the timeframe grid."""

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_from_ms(ms: int) -> datetime:
    """The aware UTC datetime of an epoch-milliseconds timestamp (exact, no float rounding)."""
    return EPOCH + timedelta(milliseconds=ms)


def ms_from_utc(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime; a naive one is read as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1)


def parse_utc(text: str) -> datetime:
    """An aware UTC datetime from ISO 8601 text (``2024-01-31``, ``2024-01-31T10:00``,
    ``2024-01-31 10:00:00.000000``, with or without ``Z``/offset; no zone means UTC).

    Raises ``ValueError`` with the offending text otherwise, including for impossible
    dates such as ``2024-13-45`` and for a date at the end of the calendar whose offset
    pushes it out of range in UTC.
    """
    cleaned = text.strip()
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError as exc:
        # "month must be in 1..12" says more than "not an ISO date"; "Invalid isoformat" does not.
        detail = "" if "isoformat" in str(exc) else f"{exc}; "
        raise ValueError(
            f"{text!r} is not an ISO date or date-time "
            f"({detail}e.g. 2024-01-31 or 2024-01-31T10:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range once converted to UTC") from None


def floor_to_grid(moment: datetime, step: timedelta) -> datetime:
    """The latest multiple of ``step`` since the Unix epoch at or before ``moment``."""
    return moment - (moment - EPOCH) % step


def is_on_grid(moment: datetime, step: timedelta) -> bool:
    """Whether ``moment`` is a whole number of ``step`` after the Unix epoch."""
    return (moment - EPOCH) % step == timedelta(0)
