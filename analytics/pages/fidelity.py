"""Shadow fidelity (placeholder until its page is built)."""

from typing import Any

from analytics.filters import Filters
from analytics.pages import Page, register


def build(filters: Filters) -> dict[str, Any]:
    return {}


PAGE = register(
    Page(
        name="fidelity",
        title="Shadow fidelity",
        template="analytics/pages/fidelity.html",
        build=build,
        path="fidelity/",
        order=70,
        default_period="all",
    )
)
