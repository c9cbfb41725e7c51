"""``manage.py replay`` end to end on the configured database (PostgreSQL in CI)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from markets.models import Candle
from shadow.models import ShadowTrade
from shadow.persistence import BookWriter
from shadow.replay import ReplayRefusedError, replay_run
from shadow.tests.book_rows import book_rows
from signals.models import (
    Book,
    BookGuard,
    BookState,
    BookStrategy,
    EquityPoint,
    GuardConfig,
    GuardDecision,
    PaperTrade,
    Signal,
    SignalState,
    SignalTransition,
    StrategyConfig,
)
from signals.services import book_live, guard_config_save, guard_configs_default
from signals.tests.candles import MARKET, START, store, store_walk, walk
from signals.tests.factories import SignalFactory

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)
BASE = ["--exchange", MARKET["exchange"], "--timeframe", MARKET["timeframe"]]
ARGS = [*BASE, "--symbol", MARKET["symbol"]]
DEFAULT_BOOK = "replay testex BTC/USD 1h"


def replay(*extra: str, args: list[str] = ARGS) -> str:
    out = StringIO()
    call_command("replay", *args, "--no-progress", *extra, stdout=out)
    return out.getvalue()


def book_facts(book: Book) -> list[tuple]:
    return list(
        Signal.objects.filter(book=book)
        .order_by("candle_time", "symbol", "side")
        .values_list(
            "symbol", "candle_time", "side", "state", "shadow_trade__pnl", "paper_trade__pnl"
        )
    )


def decisions(book: Book) -> list[tuple]:
    return list(
        GuardDecision.objects.filter(signal__book=book)
        .order_by("signal__candle_time", "signal__symbol", "guard")
        .values_list(
            "signal__candle_time",
            "guard",
            "book_guard_id",
            "verdict",
            "observed_value",
            "threshold",
            "reason",
        )
    )


def frozen_guards(book: Book) -> list[tuple]:
    return list(
        BookGuard.objects.filter(book=book)
        .order_by("name")
        .values_list("pk", "name", "config_version", "kind", "params", "active")
    )


def test_it_runs_every_stage_on_generated_candles():
    store_walk(600, seed=11)
    output = replay()

    assert "created 'ema_crossover testex BTC/USD 1h'" in output
    assert "enabled max_open_positions, cooldown_after_stop" in output
    assert "SYNTHETIC" in output
    book = Book.objects.get(name=DEFAULT_BOOK)
    assert book.kind == Book.Kind.REPLAY
    signals = Signal.objects.filter(book=book)
    states = dict(signals.values_list("state").annotate(n=Count("id")))
    assert states.get(SignalState.BLOCKED, 0) > 0
    assert states.get(SignalState.CLOSED, 0) > 0
    assert SignalState.GENERATED not in states, "every signal is decided"

    # Every guard judged every decided signal: no short-circuit.
    decided = signals.exclude(state=SignalState.REJECTED)
    assert GuardDecision.objects.filter(signal__in=decided).count() == 2 * decided.count()
    # Every decided signal has exactly one shadow trade: blocked ones measure, approved
    # ones are the control; most have an outcome.
    blocked = signals.filter(state=SignalState.BLOCKED)
    assert (
        ShadowTrade.objects.filter(signal__in=blocked, group="blocked").count() == blocked.count()
    )
    assert ShadowTrade.objects.filter(book=book).count() == decided.count()
    closed = ShadowTrade.objects.filter(book=book, status="closed")
    assert closed.exists()
    assert not closed.filter(pnl__isnull=True).exists()
    assert not closed.filter(exit_reason="").exists()
    # Paper trades exist only for approved signals that were filled; each state change
    # is logged.
    assert (
        PaperTrade.objects.filter(book=book)
        .exclude(signal__state__in=["executed", "closed"])
        .count()
        == 0
    )
    assert PaperTrade.objects.filter(book=book, status="closed").count() == states["closed"]
    for signal in signals.filter(state=SignalState.CLOSED)[:5]:
        names = list(SignalTransition.objects.filter(signal=signal).values_list("name", flat=True))
        assert names == ["generate", "approve", "execute", "close"]
    for signal in blocked[:5]:
        names = list(SignalTransition.objects.filter(signal=signal).values_list("name", flat=True))
        assert names == ["generate", "block"]
    # The book froze what it ran, and where the engine stopped.
    assert list(BookStrategy.objects.filter(book=book).values_list("name", "config_version")) == [
        ("ema_crossover testex BTC/USD 1h", 1)
    ]
    assert sorted(BookGuard.objects.filter(book=book).values_list("name", flat=True)) == [
        "cooldown_after_stop",
        "max_open_positions",
    ]
    assert BookState.objects.get(book=book).state["last_time"]
    assert EquityPoint.objects.filter(book=book).count() == states["closed"]

    assert "candles                    600" in output
    assert f"signals                    {signals.count()}" in output
    assert f"blocked                    {blocked.count()}" in output


def test_it_replaces_its_book_and_gives_the_same_result_again():
    store_walk(400, seed=5)
    first_output = replay()
    first = book_rows(Book.objects.get())
    output = replay()
    assert "replacing the earlier one" not in first_output
    assert "replacing the earlier one" in output
    assert Book.objects.count() == 1
    assert book_rows(Book.objects.get()) == first
    assert first["signals"]


def test_it_uses_the_configured_strategy_and_guards():
    store_walk(400, seed=5)
    StrategyConfig.objects.create(
        name="fast", kind="ema_crossover", params={"fast": 5, "slow": 10}, **MARKET
    )
    StrategyConfig.objects.create(name="off", kind="ema_crossover", enabled=False, **MARKET)
    GuardConfig.objects.create(name="max 5", kind="max_open_positions", params={"max_open": 5})
    GuardConfig.objects.create(name="resting", kind="cooldown_after_stop", enabled=False)
    output = replay("--book", "mine")
    assert "strategies: fast v1; guards: max 5 v1" in output
    assert "created" not in output and "No guards" not in output
    assert set(GuardDecision.objects.values_list("guard", flat=True)) == {"max 5"}
    assert set(GuardDecision.objects.values_list("threshold", flat=True)) == {5}
    assert set(Signal.objects.values_list("strategy_config__name", flat=True)) == {"fast"}
    assert StrategyConfig.objects.count() == 2, "no default strategy next to a configured one"


def test_with_every_guard_disabled_every_signal_is_approved():
    store_walk(400, seed=5)
    GuardConfig.objects.create(name="max", kind="max_open_positions", enabled=False)
    output = replay()
    assert "guards: none" in output
    assert not GuardDecision.objects.exists()
    states = set(Signal.objects.values_list("state", flat=True))
    assert states and not states & {SignalState.BLOCKED, SignalState.GENERATED}


def test_a_disabled_default_strategy_is_not_brought_back():
    store_walk(50, seed=5)
    StrategyConfig.objects.create(
        name="ema_crossover testex BTC/USD 1h", kind="ema_crossover", enabled=False, **MARKET
    )
    with pytest.raises(CommandError, match="exists but is disabled"):
        replay()
    assert not Book.objects.exists()


def test_since_and_until_bound_the_replay_but_history_still_counts():
    store_walk(400, seed=5)
    replay("--book", "all")
    replay("--book", "part", "--since", "2024-01-07", "--until", "2024-01-13T23:00")
    part = book_facts(Book.objects.get(name="part"))
    days = range(7, 14)
    assert part
    assert all(row[1].day in days for row in part)
    whole = [row[:3] for row in book_facts(Book.objects.get(name="all")) if row[1].day in days]
    assert [row[:3] for row in part] == whole


def test_signals_before_since_are_history_only():
    store_walk(400, seed=5)
    output = replay("--book", "part", "--since", "2024-01-10")
    book = Book.objects.get(name="part")
    assert not Signal.objects.filter(book=book, candle_time__lt=START + timedelta(days=9)).exists()
    assert Signal.objects.filter(book=book).exists()
    assert "from 2024-01-10 00:00" in Book.objects.get(name="part").description
    assert "candles                    400" in output, "the history runs through the engine"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--since", "yesterday"], "--since: 'yesterday' is not an ISO date"),
        (["--since", "2024-02-01", "--until", "2024-01-01"], "--since is after --until"),
        (["--since", "2030-01-01"], "no stored candles"),
        (["--symbol", "ETH/USD"], "no stored candles for testex ETH/USD 1h"),
        (["--all-symbols"], "give --symbol or --all-symbols, not both"),
    ],
)
def test_bad_arguments_get_a_clear_error(extra, message):
    store_walk(50, seed=5)
    with pytest.raises(CommandError, match=message):
        replay(*extra)
    assert not Book.objects.exists()


@pytest.mark.parametrize(
    ("option", "value"), [("--until", "2024-13-45"), ("--since", "2024-01-31T25:00")]
)
def test_an_impossible_date_gets_a_clear_error(option, value):
    store_walk(50, seed=5)
    with pytest.raises(CommandError, match=f"{option}: '{value}' is not an ISO date"):
        replay(option, value)


def test_without_a_market_it_asks_for_one():
    store_walk(50, seed=5)
    with pytest.raises(CommandError, match="give --symbol SYMBOL"):
        replay(args=BASE)
    with pytest.raises(CommandError, match="no stored candles for testex at 4h"):
        replay("--all-symbols", args=[*BASE[:2], "--timeframe", "4h"])
    assert not Book.objects.exists()


def test_an_invalid_configuration_stops_the_replay_before_it_starts():
    store_walk(50, seed=5)
    StrategyConfig.objects.create(
        name="broken", kind="ema_crossover", params={"fast": 40}, **MARKET
    )
    GuardConfig.objects.create(
        name="max two", kind="max_open_positions", params={"max_open": "two"}
    )
    with pytest.raises(CommandError) as error:
        replay()
    assert "strategy 'broken': params: ema_crossover needs 1 < fast < slow" in str(error.value)
    assert "guard 'max two': params: parameter max_open must be int" in str(error.value)
    assert not Book.objects.exists()
    assert not BookStrategy.objects.exists()


def test_a_bad_timeframe_gets_a_clear_error():
    with pytest.raises(CommandError, match="unknown timeframe"):
        call_command("replay", "--exchange", "x", "--symbol", "A/B", "--timeframe", "1y")


# --- the live book is never written -------------------------------------------------


def live_rows(book: Book) -> tuple:
    return (
        list(Signal.objects.filter(book=book).values_list("pk", "state", "candle_time")),
        list(SignalTransition.objects.filter(signal__book=book).values_list("pk", "name")),
        list(BookStrategy.objects.filter(book=book).values_list("pk", "config_version")),
        list(BookState.objects.filter(book=book).values_list("pk", "revision", "state")),
    )


@pytest.mark.parametrize("name", ["live", "live 2"])
def test_a_live_book_is_refused_and_left_untouched(name):
    store_walk(200, seed=5)
    live = book_live() if name == "live" else Book.objects.create(name=name, kind="live")
    signal = SignalFactory(book=live, candle_time=START)
    SignalTransition.objects.create(
        signal=signal, name="generate", from_state="", to_state="generated", actor="system"
    )
    BookState.objects.create(book=live, state={"last_time": {"x": 1}}, revision=7)
    before = live_rows(live)

    with pytest.raises(CommandError, match=f"--book '{name}' is the live book"):
        replay("--book", name)

    assert Book.objects.get(name=name).kind == Book.Kind.LIVE
    assert live_rows(live) == before
    assert Book.objects.count() == 1


def test_the_name_live_is_refused_before_any_live_book_exists():
    store_walk(200, seed=5)
    with pytest.raises(CommandError, match="--book 'live' is the live book"):
        replay("--book", "live")
    assert not Book.objects.exists()


def test_the_replay_service_refuses_a_live_book_too():
    store_walk(100, seed=5)
    live = book_live()
    strategy = StrategyConfig.objects.create(name="ema", kind="ema_crossover", **MARKET)
    with pytest.raises(ReplayRefusedError, match="is the live book"):
        replay_run(name="live", description="", strategies=[strategy], guards=[])
    assert Book.objects.get() == live
    assert not Signal.objects.exists()


@pytest.mark.reliability(
    fault="a replay named like the live book (case, spaces, width)",
    expected="refused with a clear error; the live book untouched",
)
@pytest.mark.parametrize(
    "name", ["LIVE", " live", "Live ", "l i v e", "\tLiVe\n", "\uff2c\uff29\uff36\uff25"]
)
def test_a_name_that_reads_as_the_live_books_is_refused(name, reliability):
    store_walk(200, seed=5)
    live = book_live()
    with pytest.raises(CommandError, match="is the live book"):
        replay("--book", name)
    strategy = StrategyConfig.objects.create(name="ema", kind="ema_crossover", **MARKET)
    with pytest.raises(ReplayRefusedError, match="the live book"):
        replay_run(name=name, description="", strategies=[strategy], guards=[])
    assert list(Book.objects.all()) == [live]
    reliability.observed("refused; the live book unchanged", lost=0, duplicated=0)


def test_a_name_that_reads_as_another_live_books_is_refused():
    store_walk(200, seed=5)
    Book.objects.create(name="Live 2", kind="live")
    with pytest.raises(CommandError, match="--book 'LIVE2' is the live book 'Live 2'"):
        replay("--book", "LIVE2")
    assert Book.objects.count() == 1


def test_a_name_that_only_contains_live_is_a_replay_book():
    store_walk(200, seed=5)
    book_live()
    replay("--book", "live test")
    assert Book.objects.get(name="live test").kind == Book.Kind.REPLAY


# --- several markets in one book -----------------------------------------------------


def test_several_symbols_make_one_book_with_signals_on_each():
    store_walk(400, seed=5)
    store_walk(400, seed=6, symbol="ETH/USD")
    guard_configs_default()
    output = replay("--symbol", "ETH/USD", "--symbol", "BTC/USD")

    book = Book.objects.get()
    assert book.name == "replay testex 1h 2 markets"
    assert "testex BTC/USD, ETH/USD 1h" in output
    assert "candles                    800" in output
    assert set(BookStrategy.objects.filter(book=book).values_list("symbol", flat=True)) == {
        "BTC/USD",
        "ETH/USD",
    }
    together = book_facts(book)
    assert {row[0] for row in together} == {"BTC/USD", "ETH/USD"}

    # The same signals as each market alone, but decided by guards that see the whole
    # book: positions on one market count against the other.
    replay("--book", "btc")
    replay("--book", "eth", args=[*BASE, "--symbol", "ETH/USD"])
    alone = sorted(
        book_facts(Book.objects.get(name="btc")) + book_facts(Book.objects.get(name="eth")),
        key=lambda row: (row[1], row[0], row[2]),
    )
    assert [row[:3] for row in together] == [row[:3] for row in alone]
    assert [row[3] for row in together] != [row[3] for row in alone]
    cross = GuardDecision.objects.filter(
        signal__book=book, guard="max_open_positions", observed_value__gte=1
    )
    assert cross.filter(signal__symbol="ETH/USD").exists()


def test_all_symbols_takes_every_stored_market_of_the_exchange_and_timeframe():
    store_walk(300, seed=5)
    store_walk(300, seed=6, symbol="ETH/USD")
    store_walk(300, seed=7, symbol="SOL/USD", timeframe="4h")
    store_walk(300, seed=8, exchange="otherex", symbol="XRP/USD")
    output = replay("--all-symbols", args=BASE)

    book = Book.objects.get()
    assert book.name == "replay testex 1h 2 markets"
    assert "created 'ema_crossover testex ETH/USD 1h'" in output
    assert sorted(BookStrategy.objects.filter(book=book).values_list("symbol", flat=True)) == [
        "BTC/USD",
        "ETH/USD",
    ]
    assert set(Signal.objects.filter(book=book).values_list("symbol", flat=True)) == {
        "BTC/USD",
        "ETH/USD",
    }


# --- a book keeps the configuration it ran with --------------------------------------


def test_editing_a_guard_after_a_replay_changes_neither_its_book_nor_its_decisions():
    store_walk(400, seed=5)
    GuardConfig.objects.create(name="max", kind="max_open_positions", params={"max_open": 1})
    replay("--book", "before")
    book = Book.objects.get(name="before")
    guards_before, decisions_before = frozen_guards(book), decisions(book)

    guard = GuardConfig.objects.get(name="max")
    guard.params = {"max_open": 4}
    guard_config_save(config=guard)

    assert frozen_guards(book) == guards_before
    assert [row[2:5] for row in guards_before] == [(1, "max_open_positions", {"max_open": 1})]
    assert decisions(book) == decisions_before
    assert {row[5] for row in decisions_before} == {1}
    assert {row[2] for row in decisions_before} == {guards_before[0][0]}

    # A new replay runs the new version.
    output = replay("--book", "after")
    assert "guards: max v2" in output
    after = Book.objects.get(name="after")
    assert [row[2:5] for row in frozen_guards(after)] == [
        (2, "max_open_positions", {"max_open": 4})
    ]
    assert {row[5] for row in decisions(after)} == {4}


def test_two_guards_of_one_kind_each_decide_every_signal():
    store_walk(400, seed=5)
    StrategyConfig.objects.create(
        name="ema", kind="ema_crossover", params={"fast": 5, "slow": 12}, **MARKET
    )
    GuardConfig.objects.create(name="max 1", kind="max_open_positions", params={"max_open": 1})
    GuardConfig.objects.create(name="max 3", kind="max_open_positions", params={"max_open": 3})
    output = replay()
    assert "guards: max 1 v1, max 3 v1" in output

    book = Book.objects.get()
    guards = {g.name: g for g in BookGuard.objects.filter(book=book)}
    decided = Signal.objects.filter(book=book).exclude(state=SignalState.REJECTED)
    assert decided.count() > 5
    by_signal: dict[int, dict[str, GuardDecision]] = {}
    for decision in GuardDecision.objects.filter(signal__book=book):
        by_signal.setdefault(decision.signal_id, {})[decision.guard] = decision
    assert set(by_signal) == set(decided.values_list("pk", flat=True))
    for made in by_signal.values():
        assert set(made) == {"max 1", "max 3"}
        one, three = made["max 1"], made["max 3"]
        assert (one.book_guard_id, three.book_guard_id) == (guards["max 1"].pk, guards["max 3"].pk)
        assert (one.threshold, three.threshold) == (1, 3)
        assert one.observed_value == three.observed_value, "both saw the same book"
    verdicts = {(m["max 1"].verdict, m["max 3"].verdict) for m in by_signal.values()}
    assert ("block", "pass") in verdicts
    blocked = Signal.objects.filter(book=book, state=SignalState.BLOCKED)
    for signal in blocked:
        log = SignalTransition.objects.get(signal=signal, name="block")
        assert log.payload["blocked_by"] == [
            name for name in ("max 1", "max 3") if by_signal[signal.pk][name].verdict == "block"
        ]


# --- market time of every transition -------------------------------------------------


def test_every_transition_happens_at_its_candle_time():
    # A walk with every fifth candle missing, so an entry candle may open well after the
    # signal candle closed.
    store([row for i, row in enumerate(walk(500, seed=11)) if i % 5 != 3])
    replay()
    book = Book.objects.get()
    transitions = SignalTransition.objects.filter(signal__book=book)
    assert transitions.exists()
    assert not transitions.filter(simulated_at__isnull=True).exists()

    late_entries = 0
    closed = Signal.objects.filter(book=book, state=SignalState.CLOSED)
    assert closed.count() > 3
    for signal in closed.select_related("paper_trade"):
        at = dict(
            SignalTransition.objects.filter(signal=signal).values_list("name", "simulated_at")
        )
        paper = signal.paper_trade
        candle_close = signal.candle_time + HOUR
        assert at["generate"] == at["approve"] == candle_close == signal.decided_at
        assert at["execute"] == paper.entry_time, "the entry candle's open"
        assert Candle.objects.filter(open_time=paper.entry_time).exists()
        assert at["close"] == paper.exit_time + HOUR == paper.closed_at, "the exit candle's close"
        late_entries += at["execute"] > candle_close
    assert late_entries > 0
    for signal in Signal.objects.filter(book=book, state=SignalState.BLOCKED):
        at = dict(
            SignalTransition.objects.filter(signal=signal).values_list("name", "simulated_at")
        )
        assert at == {"generate": signal.candle_time + HOUR, "block": signal.candle_time + HOUR}


# --- all or nothing ------------------------------------------------------------------


def test_a_replay_that_fails_while_writing_leaves_no_book(monkeypatch):
    store_walk(400, seed=5)
    original = BookWriter.insert_new

    def first_table_then_fail(
        self, *, signals, transitions, trades, equity, on_rows=None, ids=None
    ):
        original(self, signals=signals, transitions=[], trades=[], equity=[], ids=ids)
        assert Signal.objects.filter(book=self.book).count() == len(signals) > 0
        raise RuntimeError("disk full")

    monkeypatch.setattr(BookWriter, "insert_new", first_table_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        replay()

    assert not Book.objects.exists()
    for model in (Signal, BookStrategy, BookGuard, BookState, GuardDecision, SignalTransition):
        assert not model.objects.exists(), model


def test_a_replacing_replay_that_fails_keeps_the_earlier_book(monkeypatch):
    store_walk(400, seed=5)
    replay()
    earlier = Book.objects.get()
    rows = book_rows(earlier)

    def fail(self, **_):
        Signal.objects.create(
            book=self.book,
            strategy_config=StrategyConfig.objects.get(),
            **MARKET,
            candle_time=START,
            side="long",
            entry_price=1,
            stop_loss=1,
            take_profit=1,
            max_hold_candles=1,
        )
        raise RuntimeError("connection lost")

    monkeypatch.setattr(BookWriter, "insert_new", fail)
    with pytest.raises(RuntimeError, match="connection lost"):
        replay()

    assert Book.objects.get() == earlier
    assert book_rows(earlier) == rows


def test_a_date_pushed_out_of_the_calendar_by_its_offset_gets_a_clear_error():
    with pytest.raises(CommandError, match=r"--since: .* out of range once converted to UTC"):
        call_command(
            "replay",
            "--exchange",
            "testex",
            "--symbol",
            "BTC/USD",
            "--timeframe",
            "1h",
            "--since",
            "0001-01-01T00:00+05:00",
            stdout=StringIO(),
        )
