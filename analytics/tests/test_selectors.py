"""Analytics selectors checked against hand-computed reference values."""

from decimal import Decimal

import pytest

from analytics.filters import default_book
from analytics.selectors import (
    COSTS_MONEY,
    INCONCLUSIVE,
    SAVES_MONEY,
    book_summary,
    books,
    data_sources,
    guard_effectiveness,
    opportunity_cost,
    signal_state_counts,
)
from analytics.tests.factories import (
    BookFactory,
    CandleFactory,
    PaperTradeFactory,
    SignalFactory,
    StrategyConfigFactory,
    decided_signal,
)
from markets.models import Candle
from shadow.models import ShadowTrade
from signals.models import PaperTrade, SignalState
from signals.services import book_configure, strategy_config_save

pytestmark = pytest.mark.django_db

MAX_OPEN = "max_open_positions"
COOLDOWN = "cooldown_after_stop"
# Two-sided 95% Student t critical values, from the tables.
T_95 = {1: 12.706205, 2: 4.302653, 4: 2.776445}


@pytest.fixture
def book():
    """Two guards, five blocked signals, one approved control.

    max_open_positions blocks s1 (+10), s2 (-4), s5 (still open) alone and s3 (+6) with
    cooldown_after_stop, which also blocks s4 (-2) alone. The approved control (+100)
    must not count.
    """
    book = BookFactory(name="reference")
    decided_signal(book, blocked_by=[MAX_OPEN], passed_by=[COOLDOWN], pnl="10")
    decided_signal(book, blocked_by=[MAX_OPEN], passed_by=[COOLDOWN], pnl="-4")
    decided_signal(book, blocked_by=[MAX_OPEN, COOLDOWN], pnl="6")
    decided_signal(book, blocked_by=[COOLDOWN], passed_by=[MAX_OPEN], pnl="-2")
    decided_signal(
        book, blocked_by=[MAX_OPEN], passed_by=[COOLDOWN], status=ShadowTrade.Status.OPEN
    )
    decided_signal(book, passed_by=[MAX_OPEN, COOLDOWN], pnl="100", group=ShadowTrade.Group.CONTROL)
    return book


@pytest.fixture
def other_book():
    """Same guards in another book, with large numbers that would show if they leaked."""
    other = BookFactory(name="other")
    for pnl in ("1000", "-3000", "500"):
        decided_signal(other, blocked_by=[MAX_OPEN, COOLDOWN], pnl=pnl)
    return other


def effects_by_guard(book):
    return {effect.guard: effect for effect in guard_effectiveness(book=book)}


def assert_interval(outcome, mean, half_width):
    assert float(outcome.mean_net_impact) == pytest.approx(mean, abs=1e-6)
    assert float(outcome.ci_low) == pytest.approx(mean - half_width, abs=1e-4)
    assert float(outcome.ci_high) == pytest.approx(mean + half_width, abs=1e-4)


def test_guard_effectiveness_counts_blocked_and_sole_blocked(book, other_book):
    effects = effects_by_guard(book)

    assert list(effects) == [COOLDOWN, MAX_OPEN]
    assert effects[MAX_OPEN].blocked == 4
    assert effects[MAX_OPEN].sole_blocked == 3
    assert effects[COOLDOWN].blocked == 2
    assert effects[COOLDOWN].sole_blocked == 1


def test_guard_effectiveness_measures_closed_shadow_trades_of_what_it_blocked(book, other_book):
    outcome = effects_by_guard(book)[MAX_OPEN].outcome

    # s1 +10, s2 -4, s3 +6; s5 is still open.
    assert outcome.evaluated == 3
    assert outcome.wins == 2
    assert outcome.win_rate == pytest.approx(2 / 3)
    assert outcome.shadow_pnl == Decimal(12)
    assert outcome.net_impact == Decimal(-12)
    assert outcome.mean_pnl == Decimal(4)
    # Net impacts -10, 4, -6: mean -4, sample variance 52, standard error sqrt(52/3).
    assert_interval(outcome, -4, T_95[2] * (52 / 3) ** 0.5)
    assert outcome.verdict == INCONCLUSIVE
    assert outcome.too_few_samples


def test_guard_effectiveness_of_a_second_guard(book, other_book):
    outcome = effects_by_guard(book)[COOLDOWN].outcome

    # s3 +6, s4 -2: net impacts -6, 2, mean -2, sample variance 32.
    assert outcome.evaluated == 2
    assert outcome.wins == 1
    assert outcome.win_rate == pytest.approx(0.5)
    assert outcome.shadow_pnl == Decimal(4)
    assert outcome.net_impact == Decimal(-4)
    assert_interval(outcome, -2, T_95[1] * (32 / 2) ** 0.5)


def test_sole_outcome_counts_only_signals_no_other_guard_blocked(book, other_book):
    effects = effects_by_guard(book)

    sole_max_open = effects[MAX_OPEN].sole_outcome
    # s1 +10, s2 -4: net impacts -10, 4, mean -3, sample variance 98.
    assert sole_max_open.evaluated == 2
    assert sole_max_open.wins == 1
    assert sole_max_open.shadow_pnl == Decimal(6)
    assert sole_max_open.net_impact == Decimal(-6)
    assert_interval(sole_max_open, -3, T_95[1] * (98 / 2) ** 0.5)

    sole_cooldown = effects[COOLDOWN].sole_outcome
    assert sole_cooldown.evaluated == 1
    assert sole_cooldown.shadow_pnl == Decimal(-2)
    assert sole_cooldown.net_impact == Decimal(2)
    assert sole_cooldown.ci_low is None
    assert sole_cooldown.verdict == INCONCLUSIVE


def test_guard_effectiveness_reads_only_the_given_book(book, other_book):
    other = effects_by_guard(other_book)[MAX_OPEN]

    assert other.blocked == 3
    assert other.sole_blocked == 0
    assert other.outcome.shadow_pnl == Decimal(-1500)
    assert effects_by_guard(book)[MAX_OPEN].outcome.shadow_pnl == Decimal(12)


def test_a_guard_that_never_blocked_has_nothing_to_evaluate():
    book = BookFactory()
    decided_signal(book, passed_by=[MAX_OPEN], pnl="5", group=ShadowTrade.Group.CONTROL)

    (effect,) = guard_effectiveness(book=book)

    assert effect.blocked == 0
    assert effect.outcome.evaluated == 0
    assert effect.outcome.win_rate is None
    assert effect.outcome.shadow_pnl == Decimal(0)
    assert effect.outcome.mean_pnl is None
    assert effect.outcome.verdict == INCONCLUSIVE


@pytest.mark.parametrize(
    ("pnls", "verdict"),
    [
        # Net impacts 10, 12, 8, 11, 9: interval 10 +- 1.963, entirely above zero.
        (["-10", "-12", "-8", "-11", "-9"], SAVES_MONEY),
        (["10", "12", "8", "11", "9"], COSTS_MONEY),
        (["10", "-10", "5", "-5", "1"], INCONCLUSIVE),
    ],
    ids=["saves", "costs", "straddles-zero"],
)
def test_verdict_follows_the_interval(pnls, verdict):
    book = BookFactory()
    for pnl in pnls:
        decided_signal(book, blocked_by=[MAX_OPEN], pnl=pnl)

    (effect,) = guard_effectiveness(book=book)

    assert effect.outcome.verdict == verdict
    assert not effect.outcome.too_few_samples


def test_saves_money_interval_matches_the_reference():
    book = BookFactory()
    for pnl in ("-10", "-12", "-8", "-11", "-9"):
        decided_signal(book, blocked_by=[MAX_OPEN], pnl=pnl)

    (effect,) = guard_effectiveness(book=book)

    assert effect.outcome.net_impact == Decimal(50)
    assert effect.outcome.win_rate == 0
    assert_interval(effect.outcome, 10, T_95[4] * (2.5 / 5) ** 0.5)


def test_fewer_than_five_samples_is_inconclusive_however_clear():
    book = BookFactory()
    for pnl in ("-10", "-11", "-10", "-11"):
        decided_signal(book, blocked_by=[MAX_OPEN], pnl=pnl)

    (effect,) = guard_effectiveness(book=book)

    assert effect.outcome.ci_low > 0
    assert effect.outcome.verdict == INCONCLUSIVE
    assert effect.outcome.too_few_samples


def test_opportunity_cost_sums_closed_shadow_trades_of_blocked_signals(book, other_book):
    cost = opportunity_cost(book=book)

    # +10 - 4 + 6 - 2; the open one is counted apart, the approved control not at all.
    assert cost.total_pnl == Decimal(10)
    assert cost.closed == 4
    assert cost.open == 1


def test_opportunity_cost_of_an_empty_book_is_zero():
    cost = opportunity_cost(book=BookFactory())

    assert cost.total_pnl == Decimal(0)
    assert (cost.closed, cost.open) == (0, 0)


def test_signal_state_counts_lists_every_state():
    """Read from the book's rollups: equal to a count of the rows, every state listed,
    and a signal written since the last read counted too."""
    book, other = BookFactory(name="counted"), BookFactory(name="not counted")
    for state, n in (
        (SignalState.BLOCKED, 5),
        (SignalState.APPROVED, 1),
        (SignalState.GENERATED, 2),
    ):
        for _ in range(n):
            SignalFactory(book=book, state=state)
    SignalFactory(book=other, state=SignalState.CLOSED)

    counts = signal_state_counts(book=book)

    assert list(counts) == [state.value for state in SignalState]
    assert counts == {
        state.value: book.signals.filter(state=state).count() for state in SignalState
    }
    assert counts[SignalState.BLOCKED] == 5
    assert counts[SignalState.APPROVED] == 1
    assert counts[SignalState.CLOSED] == 0
    SignalFactory(book=book, state=SignalState.REJECTED)
    assert signal_state_counts(book=book)[SignalState.REJECTED] == 1


def test_book_summary(book, other_book):
    SignalFactory(book=book, state=SignalState.REJECTED)
    SignalFactory(book=book, state=SignalState.GENERATED)
    PaperTradeFactory(signal=SignalFactory(book=book, state=SignalState.CLOSED), pnl=Decimal("7.5"))
    PaperTradeFactory(signal=SignalFactory(book=book, state=SignalState.CLOSED), pnl=Decimal("-2"))
    PaperTradeFactory(
        signal=SignalFactory(book=book, state=SignalState.EXECUTED),
        status=PaperTrade.Status.OPEN,
        pnl=None,
        exit_reason="",
    )

    summary = book_summary(book=book)

    assert summary.signals == 11
    assert summary.approved == 4
    assert summary.blocked == 5
    assert summary.rejected == 1
    assert summary.generated == 1
    assert (summary.paper_open, summary.paper_closed) == (1, 2)
    assert summary.paper_pnl == Decimal("5.5")
    assert (summary.shadow_open, summary.shadow_closed) == (1, 5)


def test_the_default_book_is_the_newest_with_signals():
    older = BookFactory(name="older")
    SignalFactory(book=older)
    newer = BookFactory(name="newer")
    SignalFactory(book=newer)
    BookFactory(name="newest but empty")

    assert default_book() == newer
    assert [b.name for b in books()] == ["newest but empty", "newer", "older"]
    assert [b.signal_count for b in books()] == [0, 1, 1]


def test_without_signals_the_default_book_is_the_newest_book():
    BookFactory(name="first")
    newest = BookFactory(name="second")

    assert default_book() == newest


def test_data_sources_come_from_the_markets_of_the_book():
    book = BookFactory()
    strategy = StrategyConfigFactory(exchange="kraken", symbol="BTC/USD", timeframe="1h")
    SignalFactory(book=book, strategy_config=strategy)
    CandleFactory(exchange="kraken", symbol="BTC/USD", timeframe="1h")
    CandleFactory(exchange="kraken", symbol="BTC/USD", timeframe="1h", source=Candle.Source.FILE)
    # A market the book never traded.
    CandleFactory(exchange="kraken", symbol="ETH/USD", source=Candle.Source.SYNTHETIC)

    assert data_sources(book=book) == ["exchange", "file"]


def test_data_sources_include_strategies_run_in_the_book_before_any_signal():
    book = BookFactory()
    strategy = StrategyConfigFactory(exchange="synth", symbol="SYN/USD", timeframe="5m")
    book_configure(book=book, strategies=[strategy], guards=[])
    CandleFactory(
        exchange="synth", symbol="SYN/USD", timeframe="5m", source=Candle.Source.SYNTHETIC
    )
    CandleFactory(exchange="synth", symbol="NEW/USD", timeframe="5m", source=Candle.Source.FILE)

    assert data_sources(book=book) == ["synthetic"]
    # The book ran the market it froze, whatever the configuration says now.
    strategy.symbol = "NEW/USD"
    strategy_config_save(config=strategy)
    assert data_sources(book=book) == ["synthetic"]


def test_data_sources_of_many_markets_are_read_in_one_candle_query(django_assert_num_queries):
    book = BookFactory()
    for number, source in enumerate([Candle.Source.EXCHANGE, Candle.Source.FILE] * 3):
        symbol = f"C{number}/USD"
        strategy = StrategyConfigFactory(exchange="kraken", symbol=symbol, timeframe="1h")
        SignalFactory(book=book, strategy_config=strategy)
        CandleFactory(exchange="kraken", symbol=symbol, timeframe="1h", source=source)
    # Same symbol, another timeframe: not the book's market.
    CandleFactory(exchange="kraken", symbol="C0/USD", timeframe="5m", source="synthetic")
    # The signals' markets, the book's strategies' markets, then one read of the candles.
    with django_assert_num_queries(3):
        assert data_sources(book=book) == ["exchange", "file"]
