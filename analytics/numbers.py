"""Rounding for readers: money to the cent, per-trade figures to four places, rates as
floats. Every page builds its figures with these, so the page and its JSON twin carry the
same numbers (never 28 digits)."""

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
PER_TRADE = Decimal("0.0001")


def cents(value: Decimal | float | int | None) -> Decimal | None:
    """Money to the cent, half up; ``None`` stays ``None``."""
    if value is None:
        return None
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def fine(value: Decimal | float | int | None, places: int = 4) -> Decimal | None:
    """A per-trade figure (mean P&L, a price difference) to ``places`` decimals."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def rate(value: float | Decimal | None, places: int = 4) -> float | None:
    """A ratio (win rate, Sharpe, profit factor) as a float; ``None`` when undefined."""
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return round(number, places)


def json_clean(data: Any) -> Any:
    """``data`` with non-finite floats replaced by ``None`` (JSON has no NaN)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: json_clean(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [json_clean(value) for value in data]
    return data
