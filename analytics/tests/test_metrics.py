"""The trade statistics against hand-worked examples."""

import math

import pytest

from analytics.metrics import DAY_MS, daily_pnl, max_drawdown, sharpe, trade_stats


def test_max_drawdown_is_the_deepest_fall_below_a_running_peak():
    assert max_drawdown([]) == 0
    assert max_drawdown([5, 5]) == 0
    # equity 0, 10, 4, 7, -3, 2: peak 10, trough -3 -> 13
    assert max_drawdown([10, -6, 3, -10, 5]) == pytest.approx(13)
    # a first loss counts from the starting 0
    assert max_drawdown([-4, 1]) == pytest.approx(4)


def test_daily_pnl_zero_fills_days_without_a_close():
    days, totals = daily_pnl([1, 2, -5], [DAY_MS * 10 + 5, DAY_MS * 10 + 9, DAY_MS * 12])
    assert list(days) == [DAY_MS * 10, DAY_MS * 11, DAY_MS * 12]
    assert list(totals) == [3, 0, -5]


def test_sharpe_of_daily_pnl_annualised():
    values = [3.0, 0.0, -5.0]
    mean = sum(values) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    got = sharpe([1, 2, -5], [DAY_MS * 10, DAY_MS * 10 + 1, DAY_MS * 12])
    assert got == pytest.approx(mean / sd * math.sqrt(365))
    assert sharpe([1], [0]) is None
    assert sharpe([1, 1], [0, DAY_MS]) is None  # no variation


def test_trade_stats_sorts_by_exit_time_before_the_drawdown():
    stats = trade_stats([-6, 10, 3], [2 * DAY_MS, DAY_MS, 3 * DAY_MS])
    assert stats.trades == 3 and stats.wins == 2 and stats.losses == 1
    assert stats.win_rate == pytest.approx(2 / 3)
    assert stats.profit_factor == pytest.approx(13 / 6)
    assert stats.expectancy == pytest.approx(7 / 3)
    assert stats.max_drawdown == pytest.approx(6)  # 10 then -6
    empty = trade_stats([], [])
    assert empty.win_rate is None and empty.profit_factor is None and empty.expectancy is None
