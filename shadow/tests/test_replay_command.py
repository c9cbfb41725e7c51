"""``manage.py replay`` end to end on the configured database (PostgreSQL in CI)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from shadow.models import ShadowTrade
from signals.models import (
    Book,
    GuardConfig,
    GuardDecision,
    PaperTrade,
    Signal,
    SignalState,
    SignalTransition,
    StrategyConfig,
)
from signals.tests.candles import MARKET, store_walk

pytestmark = pytest.mark.django_db
ARGS = ["--exchange", MARKET["exchange"], "--symbol", MARKET["symbol"], "--timeframe", "1h"]


def replay(*extra: str) -> str:
    out = StringIO()
    call_command("replay", *ARGS, "--no-progress", *extra, stdout=out)
    return out.getvalue()


def book_facts(book: Book) -> list[tuple]:
    return list(
        Signal.objects.filter(book=book)
        .order_by("candle_time", "side")
        .values_list("candle_time", "side", "state", "shadow_trade__pnl", "paper_trade__pnl")
    )


def test_it_runs_every_stage_on_generated_candles():
    store_walk(600, seed=11)
    output = replay()

    assert "created 'ema_crossover testex BTC/USD 1h'" in output
    assert "enabled max_open_positions, cooldown_after_stop" in output
    assert "SYNTHETIC" in output
    book = Book.objects.get(name="replay testex BTC/USD 1h")
    signals = Signal.objects.filter(book=book)
    states = dict(signals.values_list("state").annotate(n=Count("id")))
    assert states.get(SignalState.BLOCKED, 0) > 0
    assert states.get(SignalState.CLOSED, 0) > 0
    assert SignalState.GENERATED not in states, "every signal is decided"

    # Every guard judged every decided signal: no short-circuit.
    decided = signals.exclude(state=SignalState.REJECTED)
    assert GuardDecision.objects.filter(signal__in=decided).count() == 2 * decided.count()
    # Every blocked signal has exactly one shadow trade, and most have an outcome.
    blocked = signals.filter(state=SignalState.BLOCKED)
    assert (
        ShadowTrade.objects.filter(signal__in=blocked, group="blocked").count() == blocked.count()
    )
    closed = ShadowTrade.objects.filter(book=book, status="closed")
    assert closed.exists()
    assert not closed.filter(pnl__isnull=True).exists()
    assert not closed.filter(exit_reason="").exists()
    # Paper trades exist only for approved signals, and each state change is logged.
    assert (
        PaperTrade.objects.filter(book=book)
        .exclude(signal__state__in=["executed", "closed"])
        .count()
        == 0
    )
    for signal in signals.filter(state=SignalState.CLOSED)[:5]:
        names = list(SignalTransition.objects.filter(signal=signal).values_list("name", flat=True))
        assert names == ["generate", "approve", "execute", "close"]

    assert f"signals                    {signals.count()}" in output
    assert f"blocked                    {blocked.count()}" in output


def test_it_replaces_its_book_and_gives_the_same_result_again():
    store_walk(400, seed=5)
    replay()
    first = book_facts(Book.objects.get())
    output = replay()
    assert "Replacing book" in output
    assert Book.objects.count() == 1
    assert book_facts(Book.objects.get()) == first


def test_it_uses_the_configured_strategy_and_guards():
    store_walk(400, seed=5)
    StrategyConfig.objects.create(
        name="fast", kind="ema_crossover", params={"fast": 5, "slow": 10}, **MARKET
    )
    GuardConfig.objects.create(kind="max_open_positions", params={"max_open": 5})
    output = replay("--book", "mine")
    assert "strategies: fast; guards: max_open_positions" in output
    assert set(GuardDecision.objects.values_list("guard", flat=True)) == {"max_open_positions"}
    assert set(Signal.objects.values_list("strategy_config__name", flat=True)) == {"fast"}


def test_since_and_until_bound_the_replay_but_history_still_counts():
    store_walk(400, seed=5)
    replay("--book", "all")
    replay("--book", "part", "--since", "2024-01-07", "--until", "2024-01-13T23:00")
    part = book_facts(Book.objects.get(name="part"))
    days = range(7, 14)
    assert part
    assert all(row[0].day in days for row in part)
    whole = [row[:2] for row in book_facts(Book.objects.get(name="all")) if row[0].day in days]
    assert [row[:2] for row in part] == whole


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--since", "yesterday"], "--since: 'yesterday' is not an ISO date"),
        (["--since", "2024-02-01", "--until", "2024-01-01"], "--since is after --until"),
        (["--since", "2030-01-01"], "no stored candles"),
    ],
)
def test_bad_arguments_get_a_clear_error(extra, message):
    store_walk(50, seed=5)
    with pytest.raises(CommandError, match=message):
        replay(*extra)
    assert not Book.objects.exists()


def test_an_invalid_configuration_stops_the_replay_before_it_starts():
    store_walk(50, seed=5)
    StrategyConfig.objects.create(
        name="broken", kind="ema_crossover", params={"fast": 40}, **MARKET
    )
    GuardConfig.objects.create(kind="max_open_positions", params={"max_open": "two"})
    with pytest.raises(CommandError) as error:
        replay()
    assert "strategy 'broken': params: ema_crossover needs 1 < fast < slow" in str(error.value)
    assert "guard 'max_open_positions': params: parameter max_open must be int" in str(error.value)
    assert not Book.objects.exists()


def test_a_bad_timeframe_gets_a_clear_error():
    with pytest.raises(CommandError, match="unknown timeframe"):
        call_command("replay", "--exchange", "x", "--symbol", "A/B", "--timeframe", "1y")


def test_the_live_catch_up_decides_exactly_like_the_replay(settings):
    import time_machine

    from signals.services import book_live
    from signals.tasks import generate_signals

    candles = store_walk(500, seed=11)
    replay()
    settings.SIGNAL_MAX_AGE = timedelta(days=365)
    last_close = candles[-1].open_time + timedelta(hours=1)
    with time_machine.travel(last_close + timedelta(minutes=1), tick=False):
        generate_signals()
    replayed = book_facts(Book.objects.get(name="replay testex BTC/USD 1h"))
    live = book_facts(book_live())
    assert live
    # Shadow trades are the shadow task's job; compare everything the signal side decides.
    assert [(t, side, state, paper) for t, side, state, _, paper in live] == [
        (t, side, state, paper) for t, side, state, _, paper in replayed
    ]
