"""Read-side queries: every number is aggregated in the database, per book, one module per
page family (``guards``, ``health``, ``books``, ``signal``, ``equity``); this package
gives every name at ``analytics.selectors``.

Works the same on PostgreSQL and SQLite (SQLite sums decimals as floats, so its money
totals are exact only to about 15 significant digits).
"""

from analytics.selectors.books import (
    book_quote_currency,
    books,
    data_sources,
    live_books,
)
from analytics.selectors.equity import (
    book_equity_curve,
)
from analytics.selectors.guards import (
    COSTS_MONEY,
    INCONCLUSIVE,
    MIN_SAMPLES_FOR_VERDICT,
    SAVES_MONEY,
    ZERO,
    AblationRow,
    GuardEffectiveness,
    ShadowOutcome,
    _money,
    _shadow_outcome,
    _verdict,
    ablation_report,
    guard_effectiveness,
    verdict_min_samples,
)
from analytics.selectors.health import (
    PipelineHealth,
    StuckSignal,
    pipeline_health,
    signal_state_counts,
    stuck_signals,
)
from analytics.selectors.signal import (
    DecisionLine,
    SignalDetail,
    _decision_line,
    signal_detail,
)
from shadow.selectors import BookSummary, OpportunityCost, book_summary, opportunity_cost

__all__ = [
    "COSTS_MONEY",
    "INCONCLUSIVE",
    "MIN_SAMPLES_FOR_VERDICT",
    "SAVES_MONEY",
    "ZERO",
    "AblationRow",
    "BookSummary",
    "DecisionLine",
    "GuardEffectiveness",
    "OpportunityCost",
    "PipelineHealth",
    "ShadowOutcome",
    "SignalDetail",
    "StuckSignal",
    "_decision_line",
    "_money",
    "_shadow_outcome",
    "_verdict",
    "ablation_report",
    "book_equity_curve",
    "book_quote_currency",
    "book_summary",
    "books",
    "data_sources",
    "guard_effectiveness",
    "live_books",
    "opportunity_cost",
    "pipeline_health",
    "signal_detail",
    "signal_state_counts",
    "stuck_signals",
    "verdict_min_samples",
]
