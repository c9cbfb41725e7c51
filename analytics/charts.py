"""Geometry of the server-side SVG charts (pure code; the template draws the shapes)."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class ChartBar:
    """One horizontal bar, in SVG user units, with where its label and value go."""

    label: str
    value: Decimal
    x: float
    y: float
    width: float
    height: float
    text_y: float
    value_x: float
    value_anchor: str
    positive: bool


@dataclass(frozen=True, slots=True)
class BarChart:
    """A horizontal bar chart around a zero line."""

    width: int
    height: int
    zero_x: float
    label_x: float
    bars: list[ChartBar]


def horizontal_bar_chart(
    values: Sequence[tuple[str, Decimal]],
    *,
    width: int = 640,
    label_width: int = 170,
    value_room: int = 90,
    row_height: int = 30,
) -> BarChart:
    """Bars for ``(label, value)`` pairs in order, scaled so the longest fills the plot.

    Positive bars grow right of the zero line, negative ones left; ``value_room`` on each
    side keeps the value labels inside the picture.
    """
    low = min([Decimal(0), *(value for _, value in values)])
    high = max([Decimal(0), *(value for _, value in values)])
    span = float(high - low) or 1.0
    plot_left = label_width + value_room
    plot_width = max(width - plot_left - value_room, 1)

    def x_of(value: Decimal) -> float:
        return plot_left + float(value - low) / span * plot_width

    zero_x = x_of(Decimal(0))
    bar_height = row_height * 0.6
    bars = []
    for row, (label, value) in enumerate(values):
        end_x = x_of(value)
        top = row * row_height + (row_height - bar_height) / 2
        positive = value >= 0
        bars.append(
            ChartBar(
                label=label,
                value=value,
                x=min(zero_x, end_x),
                y=top,
                width=abs(end_x - zero_x),
                height=bar_height,
                text_y=top + bar_height / 2,
                value_x=end_x + 4 if positive else end_x - 4,
                value_anchor="start" if positive else "end",
                positive=positive,
            )
        )
    return BarChart(
        width=width,
        height=max(len(values), 1) * row_height,
        zero_x=zero_x,
        label_x=label_width - 8,
        bars=bars,
    )
