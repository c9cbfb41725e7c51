"""Trading (placeholder until its page is built)."""

from typing import Any

from analytics.filters import Filters
from analytics.pages import Page, register


def build(filters: Filters) -> dict[str, Any]:
    return {}


PAGE = register(
    Page(
        name="trading",
        title="Trading",
        template="analytics/pages/trading.html",
        build=build,
        path="trading/",
        order=60,
        default_period="all",
    )
)
