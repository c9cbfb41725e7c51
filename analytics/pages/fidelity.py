"""Shadow fidelity: the control-group shadow trade of every approved signal set against
the trade the book made (paper, or live when its entry order filled). Same fill model,
same candles: in paper mode they agree exactly; a difference is live slippage and fees,
or a bug."""

from typing import Any

from analytics.filters import Filters
from analytics.pages import Page, register
from analytics.shadow_fidelity import LIST_LIMIT, disagreements, fidelity_pairs, fidelity_summary


def build(filters: Filters) -> dict[str, Any]:
    """The aggregate (one query) and the first disagreements (one query)."""
    pairs = fidelity_pairs(filters)
    return {
        "summary": fidelity_summary(pairs),
        "disagreements": disagreements(pairs),
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
