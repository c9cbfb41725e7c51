"""Leaderboard (placeholder until its page is built)."""

from typing import Any

from analytics.filters import Filters
from analytics.pages import Page, register


def build(filters: Filters) -> dict[str, Any]:
    return {}


PAGE = register(
    Page(
        name="leaderboard",
        title="Leaderboard",
        template="analytics/pages/leaderboard.html",
        build=build,
        path="leaderboard/",
        order=40,
        default_period="all",
    )
)
