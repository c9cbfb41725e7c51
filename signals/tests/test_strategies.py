"""The EMA-crossover strategy and the strategy registry (no database)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from markets.bars import Bar
from signals.domain.strategies import EmaCrossover, atr, build_strategy, ema

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def series(closes: list[float]) -> list[Bar]:
    out = []
    previous = closes[0]
    for i, close in enumerate(closes):
        o = D(str(previous))
        c = D(str(close))
        out.append(Bar(T0 + timedelta(hours=i), o, max(o, c) + 1, min(o, c) - 1, c))
        previous = close
    return out


def test_ema_is_seeded_with_the_simple_average():
    values = [1.0, 2.0, 3.0, 4.0]
    out = ema(values, 3)
    assert out[2] == pytest.approx(2.0)
    assert out[3] == pytest.approx(0.5 * 4 + 0.5 * 2.0)


def test_atr_of_constant_ranges():
    assert atr(series([100.0] * 20), 14) == pytest.approx(2.0)


def test_a_fall_then_a_rise_proposes_a_long_with_atr_stop_and_target():
    strategy = EmaCrossover(fast=3, slow=6, atr_period=3, stop_atr=1, target_atr=2, max_hold=5)
    closes = [100.0 - i for i in range(20)]
    proposals = []
    for extra in range(1, 15):
        bars = series([*closes, *[81.0 + 3 * j for j in range(1, extra + 1)]])
        proposals.append(strategy.propose(bars))
    fired = [p for p in proposals if p is not None]
    assert len(fired) == 1, "a crossover fires once, on the candle it happens"
    long = fired[0]
    assert long.side == "long"
    assert long.stop_loss < long.entry_price < long.take_profit
    assert long.take_profit - long.entry_price == pytest.approx(
        2 * (long.entry_price - long.stop_loss)
    )
    assert long.max_hold == 5


def test_a_rise_then_a_fall_proposes_a_short_unless_shorts_are_off():
    closes = [100.0 + i for i in range(20)] + [118.0 - 3 * j for j in range(1, 15)]
    bars = series(closes)
    strategy = EmaCrossover(fast=3, slow=6, atr_period=3)
    sides = {p.side for n in range(21, len(bars) + 1) if (p := strategy.propose(bars[:n]))}
    assert sides == {"short"}
    longs_only = EmaCrossover(fast=3, slow=6, atr_period=3, allow_short=False)
    assert not any(longs_only.propose(bars[:n]) for n in range(21, len(bars) + 1))


def test_too_little_history_proposes_nothing():
    assert EmaCrossover().propose(series([100.0] * 10)) is None


def test_the_proposal_depends_only_on_the_bars_given():
    bars = series([100.0 - i for i in range(20)] + [85.0, 90.0, 95.0, 100.0])
    strategy = EmaCrossover(fast=3, slow=6, atr_period=3)
    assert strategy.propose(bars) == strategy.propose(list(bars))


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("nope", {}, "unknown strategy kind 'nope'"),
        ("ema_crossover", {"fast": 30, "slow": 10}, "fast < slow"),
        ("ema_crossover", {"speed": 1}, "unknown parameter"),
        ("ema_crossover", {"fast": "12"}, "must be int"),
        ("ema_crossover", {"stop_atr": -1}, "positive"),
        ("ema_crossover", [], "JSON object"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(kind, params, message):
    with pytest.raises(ValueError, match=message):
        build_strategy(kind, params)
