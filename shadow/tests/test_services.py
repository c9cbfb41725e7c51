"""The shadow engine: one shadow trade per decided signal, outcomes recorded exactly once."""

from datetime import timedelta
from decimal import Decimal as D

import pytest

from markets.models import Candle
from shadow.models import ShadowTrade
from shadow.services import shadow_trades_evaluate, shadow_trades_sweep
from signals.services import guard_configs_default, signal_evaluate, signal_transition
from signals.tests.candles import START, store
from signals.tests.factories import BookFactory, SignalFactory

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)


@pytest.fixture
def free_fills(settings):
    settings.FILL_SLIPPAGE_BPS = D(0)
    settings.FILL_FEE_RATE = D(0)
    settings.FILL_NOTIONAL = D(1000)


def test_blocked_signal_gets_one_shadow_trade_and_approved_ones_are_the_control():
    book = BookFactory()
    blocked, approved, rejected, undecided = (
        SignalFactory(book=book, candle_time=START + i * HOUR) for i in range(4)
    )
    signal_transition(signal=blocked, name="block")
    signal_transition(signal=approved, name="approve")
    signal_transition(signal=rejected, name="reject")
    assert shadow_trades_sweep(book=book) == 2
    assert shadow_trades_sweep(book=book) == 0
    groups = dict(ShadowTrade.objects.values_list("signal_id", "group"))
    assert groups == {blocked.pk: "blocked", approved.pk: "control"}
    assert undecided.pk not in groups


def test_outcome_is_recorded_once_and_never_rewritten(free_fills):
    guard_configs_default()
    book = BookFactory()
    store(
        [
            (START, 100, 101, 99, 100),
            (START + HOUR, 100, 101, 90, 92),
            (START + 2 * HOUR, 92, 120, 91, 119),
        ]
    )
    signal = SignalFactory(book=book, candle_time=START, max_hold_candles=5)
    signal_transition(signal=signal, name="block")
    shadow_trades_sweep(book=book)

    progress = shadow_trades_evaluate(book=book, until=START)
    assert (progress.evaluated, progress.closed) == (0, 0), "the signal candle itself is no entry"
    progress = shadow_trades_evaluate(book=book, until=START + HOUR)
    assert progress.closed == 1
    trade = ShadowTrade.objects.get()
    assert (trade.status, trade.exit_reason, trade.exit_price, trade.pnl) == (
        "closed",
        "stop",
        95,
        -50,
    )
    assert trade.closed_at == START + 2 * HOUR

    # Even if the data were later rewritten, the recorded outcome stands.
    Candle.objects.filter(open_time=START + HOUR).update(low=D(99))
    assert shadow_trades_evaluate(book=book, until=START + 2 * HOUR).closed == 0
    assert ShadowTrade.objects.get().pnl == -50


def test_an_unfinished_trade_stays_open_with_its_entry(free_fills):
    book = BookFactory()
    store([(START, 100, 101, 99, 100), (START + HOUR, 100, 102, 98, 101)])
    signal = SignalFactory(book=book, candle_time=START, max_hold_candles=5)
    signal_evaluate(signal_id=signal.pk, now=START + HOUR)
    shadow_trades_sweep(book=book)
    shadow_trades_evaluate(book=book, until=START + HOUR)
    trade = ShadowTrade.objects.get()
    assert (trade.status, trade.entry_price, trade.pnl) == ("open", 100, None)
    assert trade.mae == -2
