"""Which signals are stuck: in a non-terminal state for longer than that state's deadline.

The deadlines come from ``settings.STUCK_SIGNAL_DEADLINES`` (a dict state -> deadline),
merged over ``DEFAULT_DEADLINES``. A deadline is either a ``timedelta`` (wall-clock time)
or an ``int`` (candles of the signal's own timeframe), counted from when the signal
entered its state:

- ``generated``: from ``created_at``. The engine decides a signal in the run that makes
  it, so a signal still generated after minutes was never decided.
- ``approved``: from ``decided_at`` (the close of the signal's candle; ``created_at``
  when missing). It is filled at the next candle's open, so two candles is already late.
- ``executed``: from ``decided_at`` too, after the trade's maximum hold
  (``max_hold_candles``): the deadline is how long PAST the latest possible exit an
  open paper trade may stay open.

A state mapped to ``None`` is not watched. Signals whose timeframe cannot be read are
never flagged (their candle length is unknown).
"""

from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.conf import settings
from django.db.models import (
    Case,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce
from django_stubs_ext import WithAnnotations

from markets.bars import timeframe_delta
from signals.models import Book, Signal, SignalState

Deadline = timedelta | int


class Since(TypedDict):
    since: datetime


DEFAULT_DEADLINES: dict[str, Deadline | None] = {
    SignalState.GENERATED.value: timedelta(minutes=10),
    SignalState.APPROVED.value: 2,
    SignalState.EXECUTED.value: 2,
}
WATCHABLE = frozenset(DEFAULT_DEADLINES)


def deadlines() -> dict[str, Deadline]:
    """The deadline of every watched state: the setting over the defaults, checked."""
    configured: dict[str, Any] = getattr(settings, "STUCK_SIGNAL_DEADLINES", None) or {}
    merged: dict[str, Any] = {**DEFAULT_DEADLINES, **configured}
    result: dict[str, Deadline] = {}
    for state, value in merged.items():
        if state not in WATCHABLE:
            raise ValueError(
                f"STUCK_SIGNAL_DEADLINES: {state!r} is not a non-terminal state "
                f"({', '.join(sorted(WATCHABLE))})"
            )
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, timedelta | int) or _empty(value):
            raise ValueError(
                f"STUCK_SIGNAL_DEADLINES[{state!r}] must be a positive timedelta or a "
                f"positive number of candles, not {value!r}"
            )
        result[state] = value
    return result


def _empty(value: Deadline) -> bool:
    return value <= timedelta(0) if isinstance(value, timedelta) else value <= 0


def describe(state: str, deadline: Deadline) -> str:
    """The deadline in words, as the page and the docs say it."""
    if isinstance(deadline, timedelta):
        amount = human_duration(deadline.total_seconds())
    else:
        amount = f"{deadline} candle{'s' if deadline != 1 else ''}"
    if state == SignalState.GENERATED:
        return f"{amount} after it was created"
    if state == SignalState.EXECUTED:
        return f"{amount} past its maximum hold"
    return f"{amount} after its candle closed"


def human_duration(seconds: float | None) -> str:
    """``95`` -> "1 min 35 s", ``7500`` -> "2 h 5 min", ``200000`` -> "2 d 7 h"."""
    if seconds is None:
        return "—"
    sign = "\u2212" if seconds < 0 else ""
    total = round(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days} d {hours} h" if hours else f"{days} d"
    elif hours:
        text = f"{hours} h {minutes} min" if minutes else f"{hours} h"
    elif minutes:
        text = f"{minutes} min {secs} s" if secs else f"{minutes} min"
    else:
        text = f"{secs} s"
    return sign + text


def entered_state() -> Case:
    """When a signal entered its current state, as far as the row tells."""
    return Case(
        When(state=SignalState.GENERATED, then=F("created_at")),
        default=Coalesce("decided_at", "created_at"),
    )


def overdue(*, book: Book, now: datetime) -> "QuerySet[WithAnnotations[Signal, Since]]":
    """The stuck signals of ``book`` at ``now``, annotated with ``since`` (when they
    entered their state). Two queries: the states and timeframes in play, then this one.

    One condition per state and timeframe in play: an executed signal's maximum hold is
    read from its row in the statement (``since`` before ``now`` minus the state's
    deadline minus ``max_hold_candles`` candles), not one condition per hold in play,
    which made a statement of tens of conditions to compile and send on every read."""
    rules = deadlines()
    signals = Signal.objects.filter(book=book).annotate(since=entered_state())
    if not rules:
        return signals.none()
    in_play = (
        Signal.objects.filter(book=book, state__in=list(rules))
        .order_by()
        .values_list("state", "timeframe")
        .distinct()
    )
    late = Q()
    matched = False
    for state, timeframe in in_play:
        candle = _candle(timeframe)
        if candle is None:
            continue
        allowed = _allowed(rules[state], candle)
        deadline: datetime | ExpressionWrapper = now - allowed
        if state == SignalState.EXECUTED:
            deadline = ExpressionWrapper(
                Value(now - allowed) - _candles("max_hold_candles", candle),
                output_field=DateTimeField(),
            )
        late |= Q(state=state, timeframe=timeframe, since__lt=deadline)
        matched = True
    # The state filter first: the index on (book, state) reads only the book's signals in
    # a watched state, which are few (a live book's pending ones), whatever its history.
    return signals.filter(state__in=list(rules)).filter(late) if matched else signals.none()


def _candle(timeframe: str) -> timedelta | None:
    """A timeframe's candle, ``None`` for one the project cannot read (never stuck)."""
    try:
        return timeframe_delta(timeframe)
    except ValueError:
        return None


def _allowed(rule: Deadline, candle: timedelta) -> timedelta:
    """How long a signal may stay in its state: the rule's time, or its candles."""
    return rule if isinstance(rule, timedelta) else rule * candle


def _candles(field: str, candle: timedelta) -> ExpressionWrapper:
    """SQL for ``field`` (a whole number of candles) times ``candle``, as a duration. The
    cast makes it a plain integer, which SQLite's duration arithmetic requires."""
    return ExpressionWrapper(
        Cast(field, IntegerField()) * Value(candle), output_field=DurationField()
    )


def pending(*, book: Book) -> list[tuple[Any, ...]]:
    """The book's signals in a watchable state (``WATCHABLE``, whatever the deadlines),
    as rows for ``late``: id, state, exchange, symbol, timeframe, when it entered its
    state (``since``), candle time, maximum hold. One index range read (a live book's
    pending signals are few)."""
    return list(
        Signal.objects.filter(book=book, state__in=sorted(WATCHABLE))
        .annotate(since=entered_state())
        .order_by()
        .values_list(
            "id",
            "state",
            "exchange",
            "symbol",
            "timeframe",
            "since",
            "candle_time",
            "max_hold_candles",
        )
    )


def late(rows: list[tuple[Any, ...]], *, now: datetime) -> list[tuple[Any, ...]]:
    """The rows of ``pending`` that are stuck at ``now``, the oldest first (by ``since``,
    then id): the rule of ``overdue``, applied here to rows already read."""
    rules = deadlines()
    candles: dict[str, timedelta | None] = {}
    found = []
    for row in rows:
        _id, state, _exchange, _symbol, timeframe, since, _candle_time, max_hold = row
        rule = rules.get(state)
        if rule is None:
            continue
        if timeframe not in candles:
            candles[timeframe] = _candle(timeframe)
        candle = candles[timeframe]
        if candle is None:
            continue
        allowed = _allowed(rule, candle)
        if state == SignalState.EXECUTED:
            allowed += max_hold * candle
        if since < now - allowed:
            found.append(row)
    found.sort(key=lambda row: (row[5], row[0]))
    return found


def live_stuck_count(*, now: datetime) -> dict[str, Any]:
    """``/healthz``'s check of the live books' stuck signals (registered by the app)."""
    live = Book.objects.filter(kind=Book.Kind.LIVE)
    count = sum(overdue(book=book, now=now).count() for book in live)
    return {"status": "ok" if count == 0 else "stuck", "count": count}
