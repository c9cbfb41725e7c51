"""The replay service behind ``manage.py replay`` (``shadow.services``), called directly:
what it freezes, what it refuses before writing anything, and that a replay through it
writes the very rows the command writes."""

from io import StringIO

import pytest
from django.core.management import call_command

from shadow.services import (
    ReplayRequestError,
    replay_markets,
    replay_prepare,
    replay_prepared,
)
from shadow.tests.book_rows import book_rows
from signals.models import Book, GuardConfig, Signal, SignalState, StrategyConfig
from signals.services import book_live
from signals.tests.candles import MARKET, store_walk

pytestmark = pytest.mark.django_db
EXCHANGE, SYMBOL, TIMEFRAME = MARKET["exchange"], MARKET["symbol"], MARKET["timeframe"]


def test_preparing_freezes_the_defaults_and_notes_each_creation():
    store_walk(300, seed=5)
    plan = replay_prepare(exchange=EXCHANGE, timeframe=TIMEFRAME, symbols=[SYMBOL, SYMBOL])
    assert plan.name == f"replay {EXCHANGE} {SYMBOL} {TIMEFRAME}"
    assert plan.symbols == [SYMBOL]
    assert [c.name for c in plan.strategies] == [f"ema_crossover {EXCHANGE} {SYMBOL} {TIMEFRAME}"]
    assert sorted(g.name for g in plan.guards) == ["cooldown_after_stop", "max_open_positions"]
    assert plan.notes == [
        f"No enabled strategy for {SYMBOL}: created "
        f"'ema_crossover {EXCHANGE} {SYMBOL} {TIMEFRAME}' (default parameters).",
        "No guards configured: enabled max_open_positions, cooldown_after_stop "
        "(default parameters).",
    ]
    assert plan.candles == 300
    assert plan.synthetic
    assert plan.description == f"{EXCHANGE} {SYMBOL} {TIMEFRAME} UTC, data: synthetic"
    # Preparing writes no book.
    assert not Book.objects.exists()


def test_every_stored_market_when_none_is_named():
    store_walk(100, seed=5)
    plan = replay_prepare(exchange=EXCHANGE, timeframe=TIMEFRAME, symbols=None)
    assert plan.symbols == [SYMBOL]
    with pytest.raises(ReplayRequestError, match=f"no stored candles for {EXCHANGE} at 4h"):
        replay_prepare(exchange=EXCHANGE, timeframe="4h", symbols=None)


def test_a_live_book_name_is_refused_naming_the_argument_before_any_default_is_made():
    store_walk(100, seed=5)
    book_live()
    with pytest.raises(ReplayRequestError, match="'LIVE' is the live book 'live'") as refused:
        replay_prepare(exchange=EXCHANGE, timeframe=TIMEFRAME, symbols=[SYMBOL], book="LIVE")
    assert refused.value.argument == "book"
    assert not StrategyConfig.objects.exists()
    assert not GuardConfig.objects.exists()


def test_a_configuration_that_does_not_build_is_refused_with_no_argument_named():
    store_walk(100, seed=5)
    GuardConfig.objects.create(name="max two", kind="max_open_positions", params={"max_open": "2"})
    with pytest.raises(
        ReplayRequestError, match="guard 'max two': params: parameter max_open"
    ) as refused:
        replay_prepare(exchange=EXCHANGE, timeframe=TIMEFRAME, symbols=[SYMBOL])
    assert refused.value.argument == ""
    assert not Book.objects.exists()


def test_a_replay_through_the_service_writes_what_the_command_writes():
    store_walk(500, seed=7)
    call_command(
        "replay",
        "--exchange",
        EXCHANGE,
        "--symbol",
        SYMBOL,
        "--timeframe",
        TIMEFRAME,
        "--book",
        "by command",
        "--no-progress",
        stdout=StringIO(),
    )
    progress: list[tuple[str, int]] = []
    outcome = replay_markets(
        exchange=EXCHANGE,
        timeframe=TIMEFRAME,
        symbols=[SYMBOL],
        book="by service",
        on_progress=lambda phase, n: progress.append((phase, n)),
    )
    by_command, by_service = Book.objects.get(name="by command"), outcome.result.book
    assert by_service.name == "by service"
    assert book_rows(by_service) == book_rows(by_command)
    assert book_rows(by_service)["signals"]
    signals = Signal.objects.filter(book=by_service)
    assert outcome.result.candles == 500
    assert outcome.summary.signals == signals.count() > 0
    assert outcome.summary.blocked == signals.filter(state=SignalState.BLOCKED).count()
    assert sum(n for phase, n in progress if phase == "candles") == 500
    # Again into the same book: replaced, the same rows.
    again = replay_prepared(outcome.plan)
    assert again.result.replaced
    assert book_rows(again.result.book) == book_rows(by_command)
