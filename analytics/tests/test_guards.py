"""Guard effectiveness figures against a plain reference: iterate the decisions and the
shadow trades in Python, sum, and compare to the cent; and the verdict rule."""

import math
import statistics
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest

from analytics.confidence import MeanInterval, t_critical
from analytics.selectors import (
    COSTS_MONEY,
    INCONCLUSIVE,
    SAVES_MONEY,
    _verdict,
    guard_effectiveness,
)
from analytics.tests.factories import BookFactory, decided_signal
from shadow.models import ShadowTrade
from signals.models import GuardDecision, Signal

pytestmark = pytest.mark.django_db

MAX_OPEN = "max_open_positions"
COOLDOWN = "cooldown_after_stop"


def reference(book, *, since=None, until=None, strategy="", symbol=""):
    """Per (guard, configuration): blocks counted by candle time, P&L of the closed shadow
    trades counted by exit time, for every block and for the blocks made alone."""
    blockers = defaultdict(list)
    for decision in GuardDecision.objects.filter(signal__book=book, verdict="block"):
        blockers[decision.signal_id].append((decision.guard, decision.book_guard_id))
    signals = {s.pk: s for s in Signal.objects.filter(book=book).select_related("book_strategy")}
    shadows = {t.signal_id: t for t in ShadowTrade.objects.filter(book=book)}
    result = defaultdict(lambda: {"blocked": 0, "sole": 0, "pnls": [], "sole_pnls": []})
    for signal_id, keys in blockers.items():
        signal = signals[signal_id]
        if strategy and getattr(signal.book_strategy, "name", None) != strategy:
            continue
        if symbol and signal.symbol != symbol:
            continue
        counted = (since is None or signal.candle_time >= since) and (
            until is None or signal.candle_time < until
        )
        trade = shadows.get(signal_id)
        closed = (
            trade is not None
            and trade.status == ShadowTrade.Status.CLOSED
            and trade.pnl is not None
            and (since is None or trade.exit_time >= since)
            and (until is None or trade.exit_time < until)
        )
        for key in keys:
            row = result[key]
            row["blocked"] += counted
            row["sole"] += counted and len(keys) == 1
            if closed:
                row["pnls"].append(trade.pnl)
                if len(keys) == 1:
                    row["sole_pnls"].append(trade.pnl)
    return result


def assert_outcome_matches(outcome, pnls):
    assert outcome.evaluated == len(pnls)
    assert outcome.wins == sum(pnl > 0 for pnl in pnls)
    assert round(outcome.net_impact, 2) == round(-sum(pnls, Decimal(0)), 2)
    assert round(outcome.shadow_pnl, 2) == round(sum(pnls, Decimal(0)), 2)
    if len(pnls) >= 2:
        impacts = [-float(pnl) for pnl in pnls]
        mean = statistics.fmean(impacts)
        half = t_critical(len(impacts) - 1) * statistics.stdev(impacts) / math.sqrt(len(impacts))
        assert float(outcome.ci_low) == pytest.approx(mean - half, abs=1e-6)
        assert float(outcome.ci_high) == pytest.approx(mean + half, abs=1e-6)


def check_against_reference(book, **filters):
    expected = reference(book, **filters)
    effects = guard_effectiveness(book=book, **filters)
    blocked_any = {(e.guard, e.book_guard_id) for e in effects if e.blocked or e.outcome.evaluated}
    assert blocked_any == {key for key, row in expected.items() if row["blocked"] or row["pnls"]}
    for effect in effects:
        row = expected[(effect.guard, effect.book_guard_id)]
        assert effect.blocked == row["blocked"], effect.guard
        assert effect.sole_blocked == row["sole"], effect.guard
        assert_outcome_matches(effect.outcome, row["pnls"])
        assert_outcome_matches(effect.sole_outcome, row["sole_pnls"])
    return effects


def test_it_matches_the_reference_on_a_real_replay(replayed_book):
    effects = check_against_reference(replayed_book)

    assert sum(effect.blocked for effect in effects) > 0, "the replay blocked something"
    # Every configuration of the book is listed, with its kind and version.
    assert all(effect.kind and effect.version for effect in effects)


def test_it_matches_the_reference_with_every_filter(replayed_book):
    clock = Signal.objects.filter(book=replayed_book).latest("candle_time").candle_time
    since, until = clock - timedelta(days=7), clock + timedelta(microseconds=1)
    check_against_reference(replayed_book, since=since, until=until)
    check_against_reference(replayed_book, symbol="BTC/USD")
    check_against_reference(replayed_book, symbol="ETH/USD")
    name = Signal.objects.filter(book=replayed_book).values_list("book_strategy__name", flat=True)[
        0
    ]
    check_against_reference(replayed_book, strategy=name)


def test_sole_blocks_sum_to_the_signals_blocked_by_exactly_one_guard(replayed_book):
    effects = guard_effectiveness(book=replayed_book)
    counts = defaultdict(int)
    for signal_id in GuardDecision.objects.filter(
        signal__book=replayed_book, verdict="block"
    ).values_list("signal_id", flat=True):
        counts[signal_id] += 1

    assert sum(e.sole_blocked for e in effects) == sum(1 for n in counts.values() if n == 1)
    assert sum(e.blocked for e in effects) == sum(counts.values())


def test_a_signal_blocked_by_two_guards_is_sole_for_neither():
    book = BookFactory()
    decided_signal(book, blocked_by=[MAX_OPEN, COOLDOWN], pnl="6")
    decided_signal(book, blocked_by=[MAX_OPEN], passed_by=[COOLDOWN], pnl="-4")

    effects = {effect.guard: effect for effect in guard_effectiveness(book=book)}

    assert (effects[MAX_OPEN].blocked, effects[MAX_OPEN].sole_blocked) == (2, 1)
    assert (effects[COOLDOWN].blocked, effects[COOLDOWN].sole_blocked) == (1, 0)
    assert effects[MAX_OPEN].sole_outcome.net_impact == Decimal(4)
    assert effects[COOLDOWN].sole_outcome.evaluated == 0


def test_open_shadow_trades_count_as_blocks_but_carry_no_money():
    book = BookFactory()
    decided_signal(book, blocked_by=[MAX_OPEN], status=ShadowTrade.Status.OPEN)
    decided_signal(book, blocked_by=[MAX_OPEN], pnl="-3")

    (effect,) = guard_effectiveness(book=book)

    assert effect.blocked == 2
    assert effect.outcome.evaluated == 1
    assert effect.outcome.net_impact == Decimal(3)


def interval(count, low, high):
    return MeanInterval(count=count, mean=(low + high) / 2, low=low, high=high)


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [
        (Decimal("0.0001"), Decimal(5), SAVES_MONEY),
        (Decimal(0), Decimal(5), INCONCLUSIVE),  # touching zero is not clear of it
        (Decimal(-5), Decimal("-0.0001"), COSTS_MONEY),
        (Decimal(-5), Decimal(0), INCONCLUSIVE),
        (Decimal(-1), Decimal(1), INCONCLUSIVE),
    ],
)
def test_the_verdict_needs_the_interval_clear_of_zero(low, high, verdict):
    assert _verdict(interval(5, low, high), 5) == verdict


def test_the_verdict_needs_the_minimum_number_of_samples():
    clear = (Decimal(1), Decimal(2))
    assert _verdict(interval(5, *clear), 5) == SAVES_MONEY
    assert _verdict(interval(4, *clear), 5) == INCONCLUSIVE
    assert _verdict(MeanInterval(count=9, mean=Decimal(1), low=None, high=None), 5) == INCONCLUSIVE


def test_the_minimum_comes_from_the_settings(settings):
    book = BookFactory()
    for pnl in ("-10", "-11", "-9"):
        decided_signal(book, blocked_by=[MAX_OPEN], pnl=pnl)

    (default,) = guard_effectiveness(book=book)
    assert default.outcome.ci_low > 0
    assert default.outcome.verdict == INCONCLUSIVE
    assert default.outcome.too_few_samples

    settings.GUARD_VERDICT_MIN_SAMPLES = 3
    (lowered,) = guard_effectiveness(book=book)
    assert lowered.outcome.verdict == SAVES_MONEY
    assert not lowered.outcome.too_few_samples

    settings.GUARD_VERDICT_MIN_SAMPLES = 4
    (raised,) = guard_effectiveness(book=book)
    assert raised.outcome.verdict == INCONCLUSIVE
