"""Performance (placeholder until its page is built)."""

from typing import Any

from analytics.filters import Filters
from analytics.pages import Page, register


def build(filters: Filters) -> dict[str, Any]:
    return {}


PAGE = register(
    Page(
        name="performance",
        title="Performance",
        template="analytics/pages/performance.html",
        build=build,
        path="performance/",
        order=50,
        default_period="all",
    )
)
