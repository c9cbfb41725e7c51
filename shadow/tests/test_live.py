"""The live driver: a catch-up in any number of runs writes what a replay writes; a run
is all or nothing; two workers on one book leave one outcome."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection

from markets.services import candles_upsert
from markets.synthetic import synthetic_bars
from shadow import live, rollups
from shadow.live import BookBusyError, book_advance
from shadow.tests.book_rows import book_rows
from signals.models import Book, BookState, GuardConfig, Signal, StrategyConfig
from signals.services import book_live, guard_configs_default

END = datetime(2024, 3, 1, tzinfo=UTC)
SYMBOLS = ("AAA/USD", "BBB/USD")


def _market_data(count: int = 600) -> None:
    for seed, symbol in enumerate(SYMBOLS, start=1):
        bars = synthetic_bars(timeframe=timedelta(hours=1), count=count, end=END, seed=seed)
        candles_upsert(exchange="gen", symbol=symbol, timeframe="1h", bars=bars, source="synthetic")
        StrategyConfig.objects.create(
            name=f"ema {symbol}",
            kind="ema_crossover",
            params={"max_hold": 12},
            exchange="gen",
            symbol=symbol,
            timeframe="1h",
        )
    guard_configs_default()
    GuardConfig.objects.create(name="max 3", kind="max_open_positions", params={"max_open": 3})


def _replay() -> Book:
    call_command(
        "replay",
        "--exchange",
        "gen",
        *[arg for s in SYMBOLS for arg in ("--symbol", s)],
        "--timeframe",
        "1h",
        "--book",
        "reference",
        "--no-progress",
        stdout=StringIO(),
    )
    return Book.objects.get(name="reference")


@pytest.mark.django_db
def test_a_catch_up_in_several_runs_writes_what_a_replay_writes(fresh_signals_forever):
    _market_data()
    replayed = _replay()
    book = book_live()
    first_close = END - timedelta(hours=599)
    moments = [first_close + timedelta(hours=h) for h in (1, 40, 41, 150, 333, 334, 500, 600)]
    for now in moments:
        book_advance(book_id=book.pk, now=now)
    expected, got = book_rows(replayed), book_rows(book)
    assert len(got["signals"]) > 30
    assert got == expected
    # And another run with no new candle changes nothing, not even the book's revision
    # (what the pages' cache is keyed by).
    revision = BookState.objects.get(book=book).revision
    book_advance(book_id=book.pk, now=moments[-1])
    assert book_rows(book) == expected
    assert BookState.objects.get(book=book).revision == revision


@pytest.mark.django_db
def test_a_run_writes_a_bounded_number_of_statements(
    fresh_signals_forever, django_assert_max_num_queries
):
    _market_data(count=400)
    book = book_live()
    book_advance(book_id=book.pk, now=END - timedelta(hours=200))
    Signal.objects.filter(book=book).count()
    # Two hundred more candles on two markets: a fixed number of statements for the
    # reads and the bulk inserts, plus one update per existing signal and trade moved.
    with django_assert_max_num_queries(60):
        book_advance(book_id=book.pk, now=END)


@pytest.mark.django_db
def test_a_worker_that_lost_the_race_writes_nothing(fresh_signals_forever, monkeypatch):
    _market_data(count=300)
    book = book_live()
    real_run = live.engine.run
    raced = []

    def run_and_let_another_worker_finish_first(*args, **kwargs):
        result = real_run(*args, **kwargs)
        if not raced:
            raced.append(True)
            book_advance(book_id=book.pk, now=END)  # the other worker, committed first
        return result

    monkeypatch.setattr(live.engine, "run", run_and_let_another_worker_finish_first)
    with pytest.raises(BookBusyError):
        book_advance(book_id=book.pk, now=END)
    monkeypatch.setattr(live.engine, "run", real_run)
    assert BookState.objects.get(book=book).revision == 1
    once = book_rows(book)
    assert once["signals"]
    book_advance(book_id=book.pk, now=END)
    assert book_rows(book) == once


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_while_writing_leaves_nothing_and_the_next_run_equals_a_clean_one(
    fresh_signals_forever,
):
    _market_data(count=400)
    replayed = _replay()
    book = book_live()
    # A real process, killed with SIGKILL after it wrote the new signals but before it
    # committed: the database drops the whole transaction.
    script = textwrap.dedent(
        f"""
        import os, signal
        import django
        django.setup()
        from django.utils import timezone
        from shadow import persistence
        from shadow.live import book_advance
        real = persistence.BookWriter._insert
        def insert_then_die(self, table, columns, rows):
            real(self, table, columns, rows)
            if table == "signals_signaltransition":
                os.kill(os.getpid(), signal.SIGKILL)
        persistence.BookWriter._insert = insert_then_die
        from datetime import datetime
        book_advance(book_id={book.pk}, now=datetime.fromisoformat("{END.isoformat()}"))
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": _database_url(),
        "SIGNAL_MAX_AGE_MINUTES": str(60 * 24 * 36500),
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr[-2000:]
    assert not Signal.objects.filter(book=book).exists()
    assert BookState.objects.get(book=book).revision == 0

    book_advance(book_id=book.pk, now=END)
    assert book_rows(book) == book_rows(replayed)
    # The rollups went with the killed transaction and were kept by the next run.
    kept = rollups.stored(book.pk)
    rollups.rebuild(book.pk)
    assert kept == rollups.stored(book.pk)


@pytest.mark.django_db
def test_an_invalid_configuration_is_left_out_and_said_while_the_others_run(
    fresh_signals_forever, caplog
):
    _market_data(count=300)
    # Saved around the form's validation, as a bad data migration or a script could.
    StrategyConfig.objects.filter(name="ema AAA/USD").update(params={"fast": 50, "slow": 10})
    book = book_live()
    with caplog.at_level("ERROR", logger="shadow"):
        book_advance(book_id=book.pk, now=END)
    assert "left out: strategy 'ema AAA/USD'" in caplog.text
    symbols = set(Signal.objects.filter(book=book).values_list("symbol", flat=True))
    assert symbols == {"BBB/USD"}


@pytest.mark.django_db
def test_an_edited_guard_takes_effect_from_the_next_run_and_old_decisions_keep_their_version(
    fresh_signals_forever,
):
    from signals.models import BookGuard, GuardDecision
    from signals.services import guard_config_save

    _market_data(count=400)
    book = book_live()
    book_advance(book_id=book.pk, now=END - timedelta(hours=200))
    guard = GuardConfig.objects.get(name="max 3")
    guard.params = {"max_open": 0}
    guard_config_save(config=guard)
    book_advance(book_id=book.pk, now=END)
    versions = dict(
        BookGuard.objects.filter(book=book, name="max 3").values_list("config_version", "active")
    )
    assert versions == {1: False, 2: True}
    late = GuardDecision.objects.filter(
        signal__book=book, guard="max 3", book_guard__config_version=2
    )
    early = GuardDecision.objects.filter(
        signal__book=book, guard="max 3", book_guard__config_version=1
    )
    assert early.exists() and late.exists()
    assert set(late.values_list("verdict", flat=True)) == {"block"}
    assert early.filter(verdict="pass").exists()


@pytest.mark.django_db
def test_a_strategy_disabled_with_a_trade_open_lets_the_trade_finish(fresh_signals_forever):
    from signals.models import PaperTrade

    _market_data(count=400)
    book = book_live()
    # Run until a paper trade is open, then disable its strategy.
    for hours in range(150, 400, 5):
        book_advance(book_id=book.pk, now=END - timedelta(hours=400 - hours))
        open_trade = (
            PaperTrade.objects.filter(book=book, status="open").select_related("signal").first()
        )
        if open_trade:
            break
    assert open_trade is not None
    StrategyConfig.objects.filter(pk=open_trade.signal.strategy_config_id).update(enabled=False)
    book_advance(book_id=book.pk, now=END)
    open_trade.refresh_from_db()
    assert open_trade.status == "closed"
    assert Signal.objects.get(pk=open_trade.signal_id).state == "closed"


@pytest.mark.django_db
@pytest.mark.parametrize("edit", ["rename", "new parameters", "rename back and forth"])
def test_an_admin_edit_of_a_strategy_with_a_trade_open_never_stops_the_live_book(
    fresh_signals_forever, edit
):
    """A configuration is known by its id: renaming it (or changing its parameters) while
    the live book holds its open trade makes a new version, and the carried trade of the
    old one still finishes. A rename once made every later run raise KeyError."""
    from signals.models import PaperTrade
    from signals.services import strategy_config_save

    _market_data(count=400)
    book = book_live()
    for hours in range(150, 400, 5):
        book_advance(book_id=book.pk, now=END - timedelta(hours=400 - hours))
        open_trade = (
            PaperTrade.objects.filter(book=book, status="open").select_related("signal").first()
        )
        if open_trade:
            break
    assert open_trade is not None
    config = StrategyConfig.objects.get(pk=open_trade.signal.strategy_config_id)
    original = config.name
    if edit == "new parameters":
        config.params = {**config.params, "max_hold": 13}
        strategy_config_save(config=config)
    else:
        config.name = f"{original} renamed"
        strategy_config_save(config=config)
        if edit == "rename back and forth":
            book_advance(book_id=book.pk, now=END - timedelta(hours=400 - hours - 1))
            config.name = original
            strategy_config_save(config=config)

    book_advance(book_id=book.pk, now=END)

    open_trade.refresh_from_db()
    assert open_trade.status == "closed"
    assert Signal.objects.get(pk=open_trade.signal_id).state == "closed"
    # Signals made after the edit carry the new version.
    newest = Signal.objects.filter(book=book).order_by("-candle_time").first()
    assert newest.book_strategy.config_version >= 1
