"""Signal generation, guard decisions and paper trading against the real database."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
import time_machine

from signals.domain.strategies import Proposal
from signals.models import (
    GuardConfig,
    GuardDecision,
    PaperTrade,
    Signal,
    SignalState,
    SignalTransition,
)
from signals.services import (
    guard_configs_default,
    paper_trades_advance,
    signal_create,
    signal_evaluate,
    signals_process_candle,
)
from signals.tests.candles import MARKET, START, store, store_walk
from signals.tests.factories import BookFactory, SignalFactory, StrategyConfigFactory

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)
PROPOSAL = Proposal("long", D(100), D(95), D(110), 3, "test")


def closes_at(signal):
    return signal.candle_time + HOUR


def test_generation_is_idempotent():
    book, config = BookFactory(), StrategyConfigFactory()
    first = signal_create(book=book, config=config, candle_time=START, proposal=PROPOSAL)
    again = signal_create(book=book, config=config, candle_time=START, proposal=PROPOSAL)
    assert first is not None and again is None
    assert Signal.objects.count() == 1
    assert SignalTransition.objects.get().name == "generate"
    other_book = signal_create(
        book=BookFactory(), config=config, candle_time=START, proposal=PROPOSAL
    )
    assert other_book is not None, "uniqueness holds within a book"


def test_every_guard_decides_and_one_block_blocks():
    GuardConfig.objects.create(kind="max_open_positions", params={"max_open": 0})
    GuardConfig.objects.create(kind="cooldown_after_stop", params={"minutes": 60})
    signal = SignalFactory()
    signal = signal_evaluate(signal_id=signal.pk, now=closes_at(signal))
    assert signal.state == SignalState.BLOCKED
    decisions = {d.guard: d for d in GuardDecision.objects.filter(signal=signal)}
    assert decisions["max_open_positions"].verdict == "block"
    assert (
        decisions["max_open_positions"].observed_value,
        decisions["max_open_positions"].threshold,
    ) == (0, 0)
    assert decisions["cooldown_after_stop"].verdict == "pass"
    log = SignalTransition.objects.get(signal=signal, name="block")
    assert log.payload["blocked_by"] == ["max_open_positions"]


def test_all_guards_passing_approves():
    guard_configs_default()
    signal = SignalFactory()
    assert signal_evaluate(signal_id=signal.pk, now=closes_at(signal)).state == SignalState.APPROVED
    assert GuardDecision.objects.filter(signal=signal, verdict="pass").count() == 2


def test_an_approved_signal_counts_as_an_open_position_for_the_next():
    guard_configs_default()
    book = BookFactory()
    first = SignalFactory(book=book)
    signal_evaluate(signal_id=first.pk, now=closes_at(first))
    second = SignalFactory(book=book, candle_time=first.candle_time + HOUR)
    assert signal_evaluate(signal_id=second.pk, now=closes_at(second)).state == SignalState.BLOCKED


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"stop_loss": D(101)}, "stop < entry < target"),
        ({"side": "short"}, "target < entry < stop"),
        ({"entry_price": D(0)}, "non-positive"),
    ],
)
def test_bad_prices_are_rejected_without_guard_decisions(fields, reason):
    signal = SignalFactory(**fields)
    signal = signal_evaluate(signal_id=signal.pk, now=closes_at(signal))
    assert signal.state == SignalState.REJECTED
    assert reason in SignalTransition.objects.get(signal=signal, name="reject").payload["reason"]
    assert not GuardDecision.objects.filter(signal=signal).exists()


def test_a_stale_candle_is_rejected(settings):
    settings.SIGNAL_MAX_AGE = timedelta(hours=2)
    signal = SignalFactory()
    late = closes_at(signal) + timedelta(hours=3)
    assert signal_evaluate(signal_id=signal.pk, now=late).state == SignalState.REJECTED


def test_deciding_twice_keeps_the_first_decision():
    guard_configs_default()
    signal = SignalFactory()
    signal_evaluate(signal_id=signal.pk, now=closes_at(signal))
    signal_evaluate(signal_id=signal.pk, now=closes_at(signal))
    assert GuardDecision.objects.filter(signal=signal).count() == 2
    assert SignalTransition.objects.filter(signal=signal).count() == 1


def test_paper_trade_enters_next_open_and_closes_on_target(settings):
    settings.FILL_SLIPPAGE_BPS = D(0)
    settings.FILL_FEE_RATE = D(0)
    settings.FILL_NOTIONAL = D(1000)
    guard_configs_default()
    book = BookFactory()
    store(
        [
            (START, 100, 101, 99, 100),
            (START + HOUR, 100, 104, 99, 103),
            (START + 2 * HOUR, 103, 111, 102, 108),
        ]
    )
    signal = SignalFactory(book=book, candle_time=START, max_hold_candles=3)
    signal_evaluate(signal_id=signal.pk, now=closes_at(signal))
    market = {"book": book, **MARKET}

    paper_trades_advance(**market, until=START)
    assert not PaperTrade.objects.exists(), "no entry before the next candle exists"
    progress = paper_trades_advance(**market, until=START + HOUR)
    assert (progress.executed, progress.closed) == (1, 0)
    assert Signal.objects.get(pk=signal.pk).state == SignalState.EXECUTED
    progress = paper_trades_advance(**market, until=START + 2 * HOUR)
    assert progress.closed == 1
    trade = PaperTrade.objects.get()
    assert (trade.status, trade.exit_reason, trade.entry_price, trade.exit_price, trade.pnl) == (
        "closed",
        "target",
        100,
        110,
        100,
    )
    assert trade.closed_at == START + 3 * HOUR
    assert Signal.objects.get(pk=signal.pk).state == SignalState.CLOSED
    assert paper_trades_advance(**market, until=START + 2 * HOUR).closed == 0


def test_an_entry_candle_that_never_comes_expires_the_signal():
    guard_configs_default()
    book = BookFactory()
    signal = SignalFactory(book=book, candle_time=START, max_hold_candles=2)
    signal_evaluate(signal_id=signal.pk, now=closes_at(signal))
    paper_trades_advance(book=book, **MARKET, until=START + 2 * HOUR)
    assert Signal.objects.get(pk=signal.pk).state == SignalState.EXPIRED


def test_processing_a_candle_sees_no_later_candle():
    guard_configs_default()
    store_walk(400, seed=3)
    book_a, book_b = BookFactory(), BookFactory()
    config = StrategyConfigFactory(params={"fast": 5, "slow": 12})
    times = [START + i * HOUR for i in range(300)]
    for t in times:
        signals_process_candle(book=book_a, config=config, candle_time=t)
    # The same candles again after the future ones are rewritten: nothing may change.
    from markets.models import Candle

    Candle.objects.filter(open_time__gt=times[-1]).update(close=D(1), low=D(1))
    for t in times:
        signals_process_candle(book=book_b, config=config, candle_time=t)
    key = ("candle_time", "side", "state", "entry_price", "stop_loss")
    a = list(Signal.objects.filter(book=book_a).values_list(*key))
    b = list(Signal.objects.filter(book=book_b).values_list(*key))
    assert a and a == b


def test_the_live_task_skips_an_invalid_configuration_and_runs_the_others(caplog):
    from signals.tasks import generate_signals

    guard_configs_default()
    store_walk(300, seed=3)
    StrategyConfigFactory(name="broken", params={"fast": 40})
    StrategyConfigFactory(name="good", params={"fast": 5, "slow": 12})
    with time_machine.travel(START + 300 * HOUR, tick=False):
        processed = generate_signals()
    assert processed > 0
    assert "strategy 'broken' skipped" in caplog.text
