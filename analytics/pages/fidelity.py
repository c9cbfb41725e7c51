"""Shadow fidelity: the control-group shadow trade of every approved signal set against
the trade the book made (paper, or live when its entry order filled). Same fill model,
same candles: in paper mode they agree exactly; a difference is live slippage and fees,
or a bug."""

from typing import Any

from analytics.fidelity_rollup import summary
from analytics.filters import Filters
from analytics.pages import Page, register
from analytics.shadow_fidelity import LIST_LIMIT, disagreements, fidelity_pairs


def build(filters: Filters) -> dict[str, Any]:
    """The summary from the per-day rows (``analytics.fidelity_rollup``) and the first
    disagreements (one query over the pairs, run only when the summary counts some)."""
    found = summary(filters)
    return {
        "summary": found,
        "disagreements": disagreements(fidelity_pairs(filters)) if found["disagreements"] else [],
        "list_limit": LIST_LIMIT,
    }


PAGE = register(
    Page(
        name="fidelity",
        title="Shadow fidelity",
        template="analytics/pages/fidelity.html",
        build=build,
        path="fidelity/",
        order=70,
        default_period="all",
        filters=("period", "strategy", "symbol"),
    )
)
