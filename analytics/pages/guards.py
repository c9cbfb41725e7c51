"""Guards (placeholder until its page is built)."""

from typing import Any

from analytics.filters import Filters
from analytics.pages import Page, register


def build(filters: Filters) -> dict[str, Any]:
    return {}


PAGE = register(
    Page(
        name="guards",
        title="Guards",
        template="analytics/pages/guards.html",
        build=build,
        path="guards/",
        order=30,
        default_period="all",
    )
)
