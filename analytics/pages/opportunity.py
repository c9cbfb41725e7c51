"""Blocked opportunity cost: the shadow P&L of the closed shadow trades of blocked signals
(what blocking gave up; negative = the blocks avoided a loss), with the guards' net impact
(minus that), broken down by guard ("any" and "sole" attribution), by strategy
configuration, by symbol and by UTC day of the shadow trade's exit, and drawn over time.

Every figure comes from the book's rollups (``analytics.breakdowns.opportunity``, over
``shadow.rollups``): a fixed number of reads whatever the number of signals, each
costing the rollup rows of the window plus the rows of its partial first and last day."""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from analytics.breakdowns import opportunity
from analytics.charts import chart_spec
from analytics.filters import Filters
from analytics.numbers import cents, rate
from analytics.pages import Page, register

CONVENTION = (
    "Opportunity cost is the P&L the blocked signals' shadow trades made: positive means "
    "the blocks gave up a profit (bad for you), negative means they avoided a loss (good); "
    "the guards' net impact is its opposite, positive = the guards saved money."
)


def _money(row: dict[str, Any]) -> dict[str, Any]:
    """A breakdown row with its money to the cent and its share of trades that made money."""
    closed = row["closed"]
    return {
        **row,
        "opportunity_cost": cents(row["opportunity_cost"]),
        "net_impact": cents(row["net_impact"]),
        "made_money_rate": rate(row["made_money"] / closed if closed else None),
    }


def _chart(days: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Daily opportunity cost (bars, every day from the first exit to the last, zero on
    days without one) and its running total (a line)."""
    if not days:
        return None
    by_day = {row["day"]: row["opportunity_cost"] for row in days}
    first: date = days[0]["day"]
    last: date = days[-1]["day"]
    labels, daily, cumulative = [], [], []
    running = Decimal(0)
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        value = by_day.get(day, Decimal(0))
        running += value
        labels.append(day.isoformat())
        daily.append(cents(value))
        cumulative.append(cents(running))
    spec = chart_spec(
        "bar",
        labels,
        [
            # tone "cost": a bar is bad for the trader when positive (the blocks gave up
            # a profit) and good when negative; drawn by static/js/pages/opportunity.js.
            {"name": "Opportunity cost that day", "values": daily, "tone": "cost"},
            {"name": "Cumulative opportunity cost", "values": cumulative, "tone": "cost"},
        ],
        y_label="Opportunity cost",
    )
    spec["series"][1]["type"] = "line"  # type: ignore[index]
    return spec


def build(filters: Filters) -> dict[str, Any]:
    found = opportunity(filters)
    totals = found["totals"]
    days = [_money(row) for row in found["days"]]
    return {
        "convention": CONVENTION,
        "totals": {
            **_money(totals),
            "still_open": totals["still_open"],
            "never_entered": totals["never_entered"],
            "single_guard": _money(totals["single_guard"]),
            "several_guards": _money(totals["several_guards"]),
        },
        "guards": [
            {"guard": row["guard"], "any": _money(row["any"]), "sole": _money(row["sole"])}
            for row in found["guards"]
        ],
        "strategies": [_money(row) for row in found["strategies"]],
        "symbols": [_money(row) for row in found["symbols"]],
        "days": days,
        "chart": _chart(days),
    }


PAGE = register(
    Page(
        name="opportunity",
        title="Opportunity cost",
        template="analytics/pages/opportunity.html",
        build=build,
        path="opportunity/",
        order=20,
        default_period="all",
        filters=("period", "strategy", "symbol"),
    )
)
