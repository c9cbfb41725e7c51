"""``{% recent_reports book %}``: the stored reports of a book with download links, and
the filters the standalone report document uses."""

import shlex
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import template

from analytics.filters import PERIOD_LABELS
from analytics.models import Report
from analytics.reports import FORMATS

register = template.Library()

RECENT = 5
# Money where a positive amount is bad for the trader (blocking gave up a gain).
BAD_WHEN_POSITIVE = {"blocked_opportunity_cost"}
UNTONED = {"max_drawdown"}


@register.inclusion_tag("analytics/reports/_card.html")
def recent_reports(book: Any, limit: int = RECENT) -> dict[str, Any]:
    """A "Reports" card: the last ``limit`` stored reports of ``book`` with their
    html/json/csv downloads, and the command that makes one."""
    reports = []
    if book is not None:
        # The rendered documents stay in the database: the card needs only the row.
        reports = list(
            Report.objects.filter(book=book)
            .only("id", "period", "created_at", "created_by")
            .order_by("-created_at", "-id")[:limit]
        )
    command = ""
    if book is not None:
        command = (
            f"python manage.py report --book {shlex.quote(book.name)} --period 7d "
            "--format html --output report.html"
        )
    return {"book": book, "reports": reports, "formats": FORMATS, "command": command}


@register.filter
def tone(value: Any, key: str) -> str:
    """`` pos`` (good for the trader), `` neg`` (bad) or nothing, for a money figure ``key``."""
    if value is None or key in UNTONED:
        return ""
    amount = Decimal(str(value))
    if amount == 0:
        return ""
    good = amount < 0 if key in BAD_WHEN_POSITIVE else amount > 0
    return " pos" if good else " neg"


@register.filter
def period_label(period: str) -> str:
    """``7d`` as ``last 7 days``."""
    return PERIOD_LABELS.get(period, period)


@register.filter
def iso_utc(value: str | datetime | None) -> str:
    """An ISO time as ``2024-01-01 05:00 UTC``."""
    if not value:
        return "\N{EN DASH}"
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
