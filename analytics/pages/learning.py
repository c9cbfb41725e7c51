"""Learning (placeholder until its page is built)."""

from typing import Any

from analytics.filters import Filters
from analytics.pages import Page, register


def build(filters: Filters) -> dict[str, Any]:
    return {}


PAGE = register(
    Page(
        name="learning",
        title="Learning",
        template="analytics/pages/learning.html",
        build=build,
        path="learning/",
        order=80,
        default_period="all",
    )
)
