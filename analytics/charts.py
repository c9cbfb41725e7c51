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


@dataclass(frozen=True, slots=True)
class LineChart:
    """A line over time: ``points`` is the SVG polyline, ``zero_y`` the zero line (or
    ``None`` when zero is outside the range), with the first and last labels."""

    width: int
    height: int
    points: str
    zero_y: float | None
    low: float
    high: float
    first_label: str
    last_label: str
    last_value: float


def line_chart(
    values: Sequence[tuple[str, float]], *, width: int = 640, height: int = 160, pad: int = 8
) -> LineChart | None:
    """A polyline through ``(label, value)`` pairs spread evenly over the width, scaled
    to the values' range (zero always included, so a loss reads as one); ``None`` for
    fewer than two points."""
    if len(values) < 2:
        return None
    numbers = [value for _, value in values]
    low, high = min([0.0, *numbers]), max([0.0, *numbers])
    span = (high - low) or 1.0

    def y_of(value: float) -> float:
        return pad + (high - value) / span * (height - 2 * pad)

    step = (width - 2 * pad) / (len(values) - 1)
    points = " ".join(f"{pad + i * step:.1f},{y_of(v):.1f}" for i, v in enumerate(numbers))
    return LineChart(
        width=width,
        height=height,
        points=points,
        zero_y=y_of(0.0) if low <= 0 <= high else None,
        low=low,
        high=high,
        first_label=values[0][0],
        last_label=values[-1][0],
        last_value=numbers[-1],
    )


def chart_spec(
    kind: str,
    labels: Sequence[str],
    series: Sequence[dict[str, object]],
    *,
    y_label: str = "",
) -> dict[str, object]:
    """What ``static/js/charts.js`` draws with Chart.js: ``kind`` "line", "bar" or "barh"
    (horizontal bars); each series a dict with ``name``, ``values`` (floats or ``None``),
    ``tone`` ("good", "bad", "neutral", "muted", or "signed": each bar coloured by its
    sign, positive being good for the trader) and optionally ``fill`` / ``stepped`` /
    ``marker`` (large points only, no line: one highlighted value such as a threshold).
    Plain data, so it goes into the page with ``json_script`` and into the JSON twin."""
    if kind not in {"line", "bar", "barh"}:
        raise ValueError(f"unknown chart kind {kind!r}")
    return {
        "kind": kind,
        "labels": list(labels),
        "y_label": y_label,
        "series": [
            {
                "name": str(item.get("name", "")),
                "values": [None if v is None else float(v) for v in item["values"]],  # type: ignore[attr-defined]
                "tone": item.get("tone", "neutral"),
                "fill": bool(item.get("fill", False)),
                "stepped": bool(item.get("stepped", False)),
                "marker": bool(item.get("marker", False)),
            }
            for item in series
        ],
    }
