"""Dashboard pages: read one book (``?book=<id>``, else the newest book with signals)."""

from dataclasses import asdict
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render

from analytics.charts import horizontal_bar_chart
from analytics.selectors import (
    book_summary,
    books,
    data_sources,
    default_book,
    guard_effectiveness,
    opportunity_cost,
    signal_state_counts,
)
from markets.models import Candle
from signals.models import Book


def _selected_book(request: HttpRequest) -> Book | None:
    raw = request.GET.get("book", "").strip()
    if not raw:
        return default_book()
    if not raw.isdigit():
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
    }


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Overview of one book: signals by outcome, trades, blocked opportunity cost."""
    context = _book_context(request)
    book = context["book"]
    if book is not None:
        context |= {
            "summary": book_summary(book=book),
            "state_counts": signal_state_counts(book=book),
            "opportunity": opportunity_cost(book=book),
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


@login_required
def guards_json(request: HttpRequest) -> JsonResponse:
    """The guard effectiveness of one book as JSON; money as decimal strings."""
    book = _selected_book(request)
    if book is None:
        return JsonResponse({"book": None, "synthetic": False, "guards": []})
    sources = data_sources(book=book)
    return JsonResponse(
        {
            "book": {"id": book.pk, "name": book.name, "kind": book.kind},
            "data_sources": sources,
            "synthetic": Candle.Source.SYNTHETIC in sources,
            "guards": [asdict(effect) for effect in guard_effectiveness(book=book)],
        }
    )
