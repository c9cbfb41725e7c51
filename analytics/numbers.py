"""Rounding for readers, one precision per kind of figure, always half up (``Decimal``'s
``ROUND_HALF_UP``, never float ``round``), so a figure rounds the same on every page,
in its JSON twin and in a report:

- money, per trade or in total (P&L, expectancy, net impact, its interval): to the cent
  (``cents``);
- a price, a price difference or another per-unit figure: ``fine`` (four places);
- a rate shown as a percentage (win rate, approval rate, share blocked): ``rate``, a
  fraction to three places, i.e. a percentage to one decimal (``0.315`` reads ``31.5 %``);
- a ratio (Sharpe, profit factor): ``ratio``, two places;
- a p or q value: ``probability``, three places.

The pages build their figures with these, so the page and its JSON twin carry the same
numbers (never 28 digits); the text side (a real minus sign, ``31.5 %``) is
``markets.admin_format``, which the templates reach through ``analytics.templatetags.trader``.
"""

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
PER_TRADE = Decimal("0.0001")
RATE_PLACES = 3
RATIO_PLACES = 2
PROBABILITY_PLACES = 3


def cents(value: Decimal | float | int | None) -> Decimal | None:
    """Money to the cent, half up; ``None`` (or a non-finite float) stays ``None``."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def fine(value: Decimal | float | int | None, places: int = 4) -> Decimal | None:
    """A price, a price difference or another per-unit figure to ``places`` decimals."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _half_up(value: float | Decimal | None, places: int) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    exact = Decimal(str(value)) if isinstance(value, Decimal) else Decimal(repr(number))
    return float(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def rate(value: float | Decimal | None, places: int = RATE_PLACES) -> float | None:
    """A rate (win rate, share blocked) as a fraction to three places, a percentage to one
    decimal; ``None`` when undefined."""
    return _half_up(value, places)


def ratio(value: float | Decimal | None) -> float | None:
    """A ratio (Sharpe, profit factor) to two places; ``None`` when undefined."""
    return _half_up(value, RATIO_PLACES)


def probability(value: float | Decimal | None) -> float | None:
    """A p or q value to three places; ``None`` when undefined."""
    return _half_up(value, PROBABILITY_PLACES)


def json_clean(data: Any) -> Any:
    """``data`` with non-finite floats replaced by ``None`` (JSON has no NaN)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: json_clean(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [json_clean(value) for value in data]
    return data
