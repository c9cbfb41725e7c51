"""Summary (placeholder until its page is built)."""

from typing import Any

from analytics.filters import Filters
from analytics.pages import Page, register


def build(filters: Filters) -> dict[str, Any]:
    return {}


PAGE = register(
    Page(
        name="summary",
        title="Summary",
        template="analytics/pages/summary.html",
        build=build,
        path="",
        order=0,
        default_period="7d",
    )
)
