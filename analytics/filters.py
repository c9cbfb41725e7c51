"""The query string every page and its JSON twin share, read and checked once.

``?book=<id>`` (default: the newest book with signals that is not an ablation leg), ``period`` (``1d``, ``7d``,
``30d``, ``90d``, ``all``; default ``all``) or ``since``/``until`` (``YYYY-MM-DD``, UTC,
``until`` inclusive), ``strategy`` (a strategy configuration's name in the book),
``symbol``, ``side`` (``long``/``short``), ``outcome`` (``win``/``loss``/``open``),
``compare`` (a second book's id), ``page`` (a page number for long lists), ``after`` or
``before`` (a signal's id: a long list's page read from where that signal stands) and
``sort`` (a column of a paginated table, ``-`` for descending; ``analytics.sorting``).

Periods end at the book's clock: the open time of the last closed candle of the book's
markets it has seen (a replay: the last candle it replayed, its ``until``; the live book:
the last candle stored for its markets), so a replay of 2019 reads "last 7 days" as its
own last week (for the live book that is about now), and a trade that closed after the
last signal is inside the period. A period counts signals by their candle time and money
by when the trade closed (its exit time, the open time of its exit candle).
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django.http import QueryDict

from analytics.stamps import clock_column, with_stamp
from signals.models import Book, Signal

PERIODS: dict[str, timedelta | None] = {
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "all": None,
}
PERIOD_LABELS = {
    "1d": "last day",
    "7d": "last 7 days",
    "30d": "last 30 days",
    "90d": "last 90 days",
    "all": "all time",
    "custom": "chosen dates",
}
SIDES = ("long", "short")
OUTCOMES = ("win", "loss", "open")
NAMES = (
    "book",
    "period",
    "since",
    "until",
    "strategy",
    "symbol",
    "side",
    "outcome",
    "compare",
    "page",
    "after",
    "before",
    "sort",
)
MAX_PAGE = 1_000_000
# The largest id PostgreSQL's bigint holds: a longer one names no book.
MAX_ID = 2**63 - 1


def _shown(raw: str) -> str:
    """``raw`` as an error message quotes it: a long value cut short."""
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")


class BadFilterError(ValueError):
    """A query-string value the pages cannot use; the message says which and why."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


class NoSuchBookError(LookupError):
    """``?book=`` names no book."""


@dataclass(frozen=True)
class Filters:
    """What a page shows: one book, a time window, and optional narrowing."""

    book: Book | None
    period: str = "all"
    since: datetime | None = None
    until: datetime | None = None  # exclusive
    strategy: str = ""
    symbol: str = ""
    side: str = ""
    outcome: str = ""
    compare: Book | None = None
    page: int = 1
    sort: str = ""
    clock: datetime | None = None
    raw: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The filters as the JSON twin echoes them."""
        return {
            "book": self.book.pk if self.book is not None else None,
            "period": self.period,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "strategy": self.strategy or None,
            "symbol": self.symbol or None,
            "side": self.side or None,
            "outcome": self.outcome or None,
            "compare": self.compare.pk if self.compare is not None else None,
            "page": self.page,
            "sort": self.sort or None,
        }

    @property
    def period_label(self) -> str:
        return PERIOD_LABELS.get(self.period, self.period)

    def query(self, **changes: str) -> str:
        """This query string with ``changes`` applied (empty values dropped), for links."""
        values = {**self.raw, **changes}
        return "&".join(f"{key}={value}" for key, value in values.items() if value)


def _book(raw: str, name: str) -> Book:
    # isdigit() alone takes "²" for a digit, which int() then refuses; past bigint (or
    # Python's 4,300-digit limit for int()) no id can match.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or int(raw) > MAX_ID:
        raise NoSuchBookError(f"no book with id {_shown(raw)}")
    book = _framed(Book.objects.filter(pk=int(raw))).first()
    if book is None:
        raise NoSuchBookError(f"no book with id {_shown(raw)}")
    return book


def _framed(books: QuerySet[Book]) -> QuerySet[Book]:
    """``books`` with what the frame reads about them in the same query: the clock and
    the data stamp the page cache keys pages by (index probes, ``analytics.page_cache``)."""
    return with_stamp(books)


def default_book() -> Book | None:
    """The most recently created book that has signals, else the newest book, or ``None``;
    never an ablation leg (a leg is a variant of its book, opened from the picker only)."""
    books = Book.objects.filter(ablation_of__isnull=True)
    with_signals = books.filter(Exists(Signal.objects.filter(book=OuterRef("pk"))))
    return (
        _framed(with_signals.order_by("-created_at", "-id")).first()
        or _framed(books.order_by("-created_at", "-id")).first()
    )


def book_clock(book: Book) -> datetime | None:
    """The open time of the last closed candle of ``book``'s markets, no later than its
    ``until`` (``None`` without candles or signals): read with the book when framed
    (``clock_column``), else queried with the same index probes."""
    if hasattr(book, "frame_clock"):
        return book.frame_clock
    clocked = Book.objects.filter(pk=book.pk).annotate(frame_clock=clock_column())
    return clocked.values_list("frame_clock", flat=True).first()


def empty_period_reason(filters: Filters) -> str:
    """Why a chosen window holds nothing of the book (it lies wholly after the book's last
    candle or before its first), for the page to say so; ``""`` otherwise."""
    book, clock = filters.book, filters.clock
    if book is None or clock is None:
        return ""
    if filters.since is not None and filters.since > clock:
        return (
            f"No candles after {filters.since:%Y-%m-%d}: the data end {clock:%Y-%m-%d %H:%M} UTC."
        )
    if filters.until is None:
        return ""
    start = (
        book.since
        or Signal.objects.filter(book=book)
        .order_by("candle_time")
        .values_list("candle_time", flat=True)
        .first()
    )
    if start is not None and filters.until <= start:
        last_day = filters.until - timedelta(days=1)
        return f"No candles up to {last_day:%Y-%m-%d}: the data start {start:%Y-%m-%d %H:%M} UTC."
    return ""


def _day(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadFilterError(name, f"{_shown(raw)} is not a date (YYYY-MM-DD)") from None


def parse_filters(
    params: QueryDict | dict[str, str],
    *,
    default_period: str = "all",
    sorts: Collection[str] = (),
) -> Filters:
    """The filters in ``params``; raises ``NoSuchBookError`` or ``BadFilterError`` with a
    clear message. ``sorts`` are the page's sort keys (``?sort=`` must be one of them,
    with or without ``-``); a page without any ignores ``sort`` and drops it from its
    links."""
    raw = {key: str(params.get(key, "")).strip() for key in params}
    for name in NAMES:
        # PostgreSQL refuses NUL in text: no name, symbol or date holds one.
        if "\x00" in raw.get(name, ""):
            raise BadFilterError(name, "contains a NUL character")
    book_raw = raw.get("book", "")
    book = _book(book_raw, "book") if book_raw else default_book()
    compare_raw = raw.get("compare", "")
    compare = _book(compare_raw, "compare") if compare_raw else None

    period = raw.get("period") or default_period
    since_raw, until_raw = raw.get("since", ""), raw.get("until", "")
    clock = book_clock(book) if book is not None else None
    since = until = None
    if since_raw or until_raw:
        period = "custom"
        if since_raw:
            since = datetime.combine(_day(since_raw, "since"), time(), tzinfo=UTC)
        if until_raw:
            last = _day(until_raw, "until")
            # The calendar's last day has no day after it: "until 9999-12-31" is no end.
            if last < date.max:
                until = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
        if since and until and since >= until:
            raise BadFilterError("since", "must be on or before until")
    elif period not in PERIODS:
        raise BadFilterError("period", f"{_shown(period)} is not one of {', '.join(PERIODS)}")
    else:
        span = PERIODS[period]
        if span is not None and clock is not None:
            # The window ends after the clock's candle and reaches ``span`` back.
            until = clock + timedelta(microseconds=1)
            since = until - span

    side = raw.get("side", "")
    if side and side not in SIDES:
        raise BadFilterError("side", f"{_shown(side)} is not one of {', '.join(SIDES)}")
    outcome = raw.get("outcome", "")
    if outcome and outcome not in OUTCOMES:
        raise BadFilterError("outcome", f"{_shown(outcome)} is not one of {', '.join(OUTCOMES)}")
    page_raw = raw.get("page", "") or "1"
    digits = page_raw.lstrip("0")
    if not (page_raw.isascii() and page_raw.isdigit()) or not digits:
        raise BadFilterError("page", f"{_shown(page_raw)} is not a page number (1, 2, ...)")
    if len(digits) > len(str(MAX_PAGE)) or int(digits) > MAX_PAGE:
        raise BadFilterError("page", f"{_shown(page_raw)} is too large (at most {MAX_PAGE:,})")
    for name in ("after", "before"):
        # A long list's keyset (the blocked page's pager): the id of a signal.
        cursor = raw.get(name, "")
        if cursor and not (
            cursor.isascii() and cursor.isdigit() and len(cursor) <= 19 and int(cursor) <= MAX_ID
        ):
            raise BadFilterError(name, f"{_shown(cursor)} is not a signal id")
    for name in ("strategy", "symbol"):
        if len(raw.get(name, "")) > 100:
            raise BadFilterError(name, "longer than 100 characters")
    sort = raw.get("sort", "") if sorts else ""
    if sort and sort.removeprefix("-") not in sorts:
        choices = ", ".join(value for key in sorts for value in (key, f"-{key}"))
        raise BadFilterError("sort", f"{_shown(sort)} is not one of {choices}")
    return Filters(
        book=book,
        period=period,
        since=since,
        until=until,
        strategy=raw.get("strategy", ""),
        symbol=raw.get("symbol", ""),
        side=side,
        outcome=outcome,
        compare=compare,
        page=int(digits),
        sort=sort,
        clock=clock,
        raw={
            key: value
            for key, value in raw.items()
            if key != "page" and value and (key != "sort" or sorts)
        },
    )
