"""Pipeline health (placeholder until its page is built)."""

from typing import Any

from analytics.filters import Filters
from analytics.pages import Page, register


def build(filters: Filters) -> dict[str, Any]:
    return {}


PAGE = register(
    Page(
        name="health",
        title="Pipeline health",
        template="analytics/pages/health.html",
        build=build,
        path="health/",
        order=10,
        default_period="all",
    )
)
