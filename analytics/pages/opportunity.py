"""Opportunity cost (placeholder until its page is built)."""

from typing import Any

from analytics.filters import Filters
from analytics.pages import Page, register


def build(filters: Filters) -> dict[str, Any]:
    return {}


PAGE = register(
    Page(
        name="opportunity",
        title="Opportunity cost",
        template="analytics/pages/opportunity.html",
        build=build,
        path="opportunity/",
        order=20,
        default_period="all",
    )
)
