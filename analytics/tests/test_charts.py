"""Geometry of the net impact bar chart (no database)."""

from decimal import Decimal

import pytest

from analytics.charts import horizontal_bar_chart


def test_bars_grow_from_the_zero_line_in_both_directions():
    chart = horizontal_bar_chart(
        [("saver", Decimal(30)), ("loser", Decimal(-10))],
        width=500,
        label_width=100,
        value_room=50,
        row_height=20,
    )
    saver, loser = chart.bars

    # Plot from x=150 to x=450 spans -10..30: 7.5 units per unit of money.
    assert chart.zero_x == pytest.approx(225)
    assert saver.x == pytest.approx(225)
    assert saver.width == pytest.approx(225)
    assert saver.positive
    assert saver.value_anchor == "start"
    assert loser.x == pytest.approx(150)
    assert loser.width == pytest.approx(75)
    assert not loser.positive
    assert loser.value_anchor == "end"
    assert chart.height == 40
    assert loser.y > saver.y


def test_all_zero_values_draw_empty_bars():
    chart = horizontal_bar_chart([("quiet", Decimal(0))])
    assert chart.bars[0].width == 0
