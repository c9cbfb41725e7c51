"""The signal page (one signal with every decision it was given) and the helpers that
write its numbers; the other pages live in ``analytics.pages``."""

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.generic import RedirectView

from analytics.roles import READ_PAGES
from analytics.selectors import (
    signal_detail,
)
from analytics.signal_chart import signal_chart
from markets import admin_format

# The guard page's JSON used to live at /guards.json: old links keep their query string.
guards_json_moved = RedirectView.as_view(url="/api/v1/guards/", permanent=True, query_string=True)


# How a guard's comparison reads: it blocks when observed <op> threshold.
BLOCKS_WHEN = {">=": "blocks if ≥", ">": "blocks if >", "<": "blocks if <", "<=": "blocks if ≤"}


def measure(value: Decimal | None, unit: str, currency: str) -> str:
    """A guard's observed value or threshold as a trader reads it: quote money and % with
    two decimals, ratios as "x : 1", counts (positions, minutes, ...) whole when whole."""
    if value is None:
        return "\N{EN DASH}"
    if unit == "quote":
        return f"{_fixed(value, 2)} {currency}".rstrip()
    if unit == "%":
        return f"{_fixed(value, 2)}%"
    if unit == "ratio":
        return f"{_fixed(value, 2)} : 1"
    number = _fixed(value, 0 if value == value.to_integral_value() else 2)
    if not unit:
        return number
    if value == 1 and unit.endswith("s"):
        unit = unit[:-1]
    return f"{number} {unit}"


def _fixed(value: Decimal, places: int) -> str:
    # Half up and with a real minus sign, as every number of the pages (admin_format).
    return admin_format.number(value, places)


def price_places(price: Decimal) -> str:
    """A ``floatformat`` argument that shows ``price`` to six significant digits (at least
    two decimals), grouped: 30,163.73 and 0.000123457 alike."""
    return f"{admin_format.price_places(price)}g"


def payload_summary(payload: dict[str, Any]) -> str:
    """A transition's payload on one line: "exit price 30,148.65 · exit reason target"."""
    return " · ".join(
        f"{key.replace('_', ' ')} {_payload_value(value, key)}" for key, value in payload.items()
    )


DECIMAL_TEXT = re.compile(r"-?\d+\.\d+")
# Payload keys that hold money (to the cent); other numbers are prices or quantities.
PAYLOAD_MONEY = {"pnl", "fees"}


def _payload_value(value: Any, key: str = "") -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str) and DECIMAL_TEXT.fullmatch(value):
        value = Decimal(value)
    if isinstance(value, float | Decimal):
        number = Decimal(str(value))
        return admin_format.money(number) if key in PAYLOAD_MONEY else admin_format.price(number)
    if isinstance(value, list | tuple):
        return ", ".join(_payload_value(item, key) for item in value) if value else "none"
    if isinstance(value, str):
        try:
            return f"{datetime.fromisoformat(value):%Y-%m-%d %H:%M}"
        except ValueError:
            return value
    return str(value)


@login_required
@permission_required(READ_PAGES, raise_exception=True)
def signal_page(request: HttpRequest, signal_id: int) -> HttpResponse:
    """One signal, readable: its trade on a price chart (``analytics.signal_chart``), the
    strategy version that made it, every guard's verdict with observed value against
    threshold, its transitions in market and wall-clock time, and its paper and shadow
    trades."""
    detail = signal_detail(signal_id=signal_id)
    if detail is None:
        raise Http404("No such signal.")
    currency = detail.quote_currency
    shadow = detail.shadow_trade
    # What blocking this signal was worth: minus what its shadow trade made.
    block_impact = -shadow.pnl if shadow is not None and shadow.pnl is not None else None
    decisions = [
        {
            "line": line,
            "observed": measure(line.observed_value, line.unit, currency),
            "threshold": measure(line.threshold, line.unit, currency),
            "rule": BLOCKS_WHEN.get(line.blocks_when, line.blocks_when),
        }
        for line in detail.decisions
    ]
    transitions = [
        {"transition": transition, "payload": payload_summary(transition.payload)}
        for transition in detail.transitions
    ]
    trades = [
        (label, trade)
        for label, trade in (("Paper", detail.paper_trade), ("Shadow", detail.shadow_trade))
        if trade is not None
    ]
    return render(
        request,
        "analytics/signal.html",
        {
            "detail": detail,
            "signal": detail.signal,
            "book": detail.signal.book,
            "currency": currency,
            "price_places": price_places(detail.signal.entry_price),
            "decisions": decisions,
            "block_impact": block_impact,
            "transitions": transitions,
            "trades": trades,
            "chart": signal_chart(detail=detail),
        },
    )
