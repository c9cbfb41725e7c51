"""Dashboard pages: read one book (``?book=<id>``, else the newest book with signals),
and one signal with every decision it was given."""

from dataclasses import asdict
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render

from analytics.charts import horizontal_bar_chart, line_chart
from analytics.selectors import (
    book_equity_curve,
    book_quote_currency,
    book_summary,
    books,
    data_sources,
    default_book,
    guard_effectiveness,
    opportunity_cost,
    signal_detail,
    signal_state_counts,
)
from markets.models import Candle
from markets.timestamps import utc_from_ms
from signals.models import Book


def _selected_book(request: HttpRequest) -> Book | None:
    raw = request.GET.get("book", "").strip()
    if not raw:
        return default_book()
    # isdigit() alone takes "²" for a digit, which int() then refuses.
    if not (raw.isascii() and raw.isdigit()):
        raise Http404("No such book.")
    return get_object_or_404(Book, pk=int(raw))


def _book_context(request: HttpRequest) -> dict[str, Any]:
    book = _selected_book(request)
    sources = data_sources(book=book) if book is not None else []
    return {
        "book": book,
        "books": books(),
        "data_sources": sources,
        "synthetic": Candle.Source.SYNTHETIC in sources,
        "currency": book_quote_currency(book=book) if book is not None else "",
    }


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Overview of one book: signals by outcome, trades, blocked opportunity cost."""
    context = _book_context(request)
    book = context["book"]
    if book is not None:
        curve = book_equity_curve(book=book).sampled(300)
        opportunity = opportunity_cost(book=book)
        context |= {
            "summary": book_summary(book=book),
            "state_counts": signal_state_counts(book=book),
            "opportunity": opportunity,
            # One sign for the whole product: positive = the guards saved money.
            "net_impact": -opportunity.total_pnl,
            "equity": line_chart(
                [
                    (f"{utc_from_ms(int(t)):%Y-%m-%d %H:%M}", float(v))
                    for t, v in zip(curve.time, curve.equity, strict=True)
                ]
            ),
        }
    return render(request, "analytics/dashboard.html", context)


@login_required
def guards(request: HttpRequest) -> HttpResponse:
    """Per guard: what it blocked, what that was worth, and a verdict, with a chart."""
    context = _book_context(request)
    book = context["book"]
    if book is not None:
        effects = guard_effectiveness(book=book)
        context |= {
            "effects": effects,
            "chart": horizontal_bar_chart(
                [(effect.guard, effect.outcome.net_impact) for effect in effects]
            ),
        }
    return render(request, "analytics/guards.html", context)


def _json_error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def guards_json(request: HttpRequest) -> JsonResponse:
    """The guard effectiveness of one book as JSON; money as decimal strings. Errors are
    JSON too: 401 for an anonymous client (no redirect to a login page), 404 for a book
    that does not exist."""
    if not request.user.is_authenticated:
        return _json_error(401, "authentication required: log in first")
    try:
        book = _selected_book(request)
    except Http404:
        return _json_error(404, f"no book with id {request.GET.get('book', '')!r}")
    if book is None:
        return JsonResponse({"book": None, "synthetic": False, "guards": []})
    sources = data_sources(book=book)
    return JsonResponse(
        {
            "book": {"id": book.pk, "name": book.name, "kind": book.kind},
            "data_sources": sources,
            "synthetic": Candle.Source.SYNTHETIC in sources,
            "currency": book_quote_currency(book=book),
            "guards": [_rounded(asdict(effect)) for effect in guard_effectiveness(book=book)],
        }
    )


# Totals in money to the cent; per-trade means and their interval to a hundredth of one.
_CENT, _PER_TRADE = Decimal("0.01"), Decimal("0.0001")
_TOTALS = {"shadow_pnl", "net_impact"}


def _rounded(data: Any) -> Any:
    """``data`` with every ``Decimal`` rounded for a reader (not 28 digits)."""
    if isinstance(data, dict):
        return {
            key: (
                value.quantize(_CENT if key in _TOTALS else _PER_TRADE, rounding=ROUND_HALF_UP)
                if isinstance(value, Decimal)
                else _rounded(value)
            )
            for key, value in data.items()
        }
    return data


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
    # Half up, as the template's floatformat rounds the other numbers of the page.
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{rounded:,.{places}f}"


def price_places(price: Decimal) -> str:
    """A ``floatformat`` argument that shows ``price`` to six significant digits (at least
    two decimals), grouped: 30,163.73 and 0.000123457 alike."""
    places = max(2, 5 - price.adjusted()) if price else 2
    return f"{places}g"


def payload_summary(payload: dict[str, Any]) -> str:
    """A transition's payload on one line: "exit price 30,148.65 · exit reason target"."""
    return " · ".join(
        f"{key.replace('_', ' ')} {_payload_value(value)}" for key, value in payload.items()
    )


def _payload_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        number = Decimal(str(value))
        return f"{number:,.{max(2, 5 - number.adjusted()) if number else 2}f}"
    if isinstance(value, list | tuple):
        return ", ".join(_payload_value(item) for item in value) if value else "none"
    if isinstance(value, str):
        try:
            return f"{datetime.fromisoformat(value):%Y-%m-%d %H:%M}"
        except ValueError:
            return value
    return str(value)


@login_required
def signal_page(request: HttpRequest, signal_id: int) -> HttpResponse:
    """One signal, readable: the strategy version that made it, every guard's verdict
    with observed value against threshold, its transitions in market and wall-clock
    time, and its paper and shadow trades."""
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
        },
    )
