"""The two views every page has: HTML behind the login, and its JSON twin under the
versioned read-only API (``/api/v1/<page>/``).

Both need the ``analytics.roles.READ_PAGES`` permission (the trader role holds it).
The twin answers every error as JSON with a proper status: 401 for an anonymous client
(no redirect to a login page), 403 for a user without that permission, 404 for an
unknown page or book, 400 for a filter it cannot read, 405 for anything but GET and
HEAD, and 500 (logged with its traceback) for a fault of ours, still as JSON.
"""

import hashlib
import json
import logging
from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from analytics.filters import (
    NAMES,
    OUTCOMES,
    PERIOD_LABELS,
    PERIODS,
    BadFilterError,
    Filters,
    NoSuchBookError,
    empty_period_reason,
    parse_filters,
)
from analytics.numbers import json_clean
from analytics.page_cache import cached_payload
from analytics.pages import PAGES, Page, all_pages, load_pages, nav_pages
from analytics.roles import READ_PAGES
from analytics.selectors import book_quote_currency, books, data_sources
from markets.models import Candle

API_VERSION = 1
logger = logging.getLogger(__name__)


def book_meta(filters: Filters) -> dict[str, Any] | None:
    """The book a page reads, as both the page and its twin show it."""
    book = filters.book
    if book is None:
        return None
    sources = data_sources(book=book)
    return {
        "id": book.pk,
        "name": book.name,
        "kind": book.kind,
        "currency": book_quote_currency(book=book),
        "data_sources": sources,
        "synthetic": Candle.Source.SYNTHETIC in sources,
        "clock": filters.clock,
    }


def page_payload(page: Page, filters: Filters) -> dict[str, Any]:
    """Everything a page shows, as plain data: the JSON twin's body (the HTML view renders
    the same). Kept in the cache under the book's data stamp (``analytics.page_cache``):
    built again only after the book is written."""
    return cached_payload(
        page.name,
        filters,
        lambda: build_payload(page, filters),
        policy=page.cache,
        version=API_VERSION,
    )


def build_payload(page: Page, filters: Filters) -> dict[str, Any]:
    """``page_payload`` computed now, without the cache."""
    meta = book_meta(filters)
    data = page.build(filters) if (filters.book is not None or not page.needs_book) else None
    return json_clean(
        {
            "api_version": API_VERSION,
            "page": page.name,
            "title": page.title,
            "book": meta,
            "filters": filters.as_json(),
            "period_label": filters.period_label,
            "data": data,
        }
    )


def _page(name: str) -> Page:
    load_pages()
    page = PAGES.get(name)
    if page is None:
        raise Http404("No such page.")
    return page


@login_required
@permission_required(READ_PAGES, raise_exception=True)
@require_safe
def html(request: HttpRequest, name: str) -> HttpResponse:
    page = _page(name)
    context: dict[str, Any] = {
        "page": page,
        "books": books(),
        "api_url": _api_url(request, page),
        "period_choices": [(key, PERIOD_LABELS[key]) for key in PERIODS],
        "outcome_choices": OUTCOMES,
    }
    try:
        filters = parse_filters(
            request.GET,
            default_period=page.default_period,
            sorts=page.sorts,
        )
    except NoSuchBookError:
        raise Http404("No such book.") from None
    except BadFilterError as error:
        context |= {"filter_error": error, "payload": None, "data": None, "filters": None}
        return render(request, page.template, context, status=400)
    payload = page_payload(page, filters)
    book = filters.book
    context |= {
        "fragment_key": fragment_key(page, payload, request.GET.urlencode()),
        "filters": filters,
        "payload": payload,
        "data": payload["data"],
        "meta": payload["book"],
        "book": book,
        "currency": payload["book"]["currency"] if payload["book"] else "",
        "synthetic": bool(payload["book"] and payload["book"]["synthetic"]),
        "data_sources": payload["book"]["data_sources"] if payload["book"] else [],
        "empty_period": empty_period_reason(filters),
    }
    return render(request, page.template, context)


def fragment_key(page: Page, payload: dict[str, Any], query: str) -> str:
    """A key for the rendered parts of a page that depend only on its payload and query
    string (``{% cache ... fragment_key %}`` in the templates): the digest of both, so a
    fragment can never outlive the figures it shows. The parts that depend on the user
    (forms with their CSRF token, staff-only buttons) stay outside the fragments."""
    body = json.dumps(payload, cls=DjangoJSONEncoder, sort_keys=True)
    digest = hashlib.blake2b(f"{page.name}|{query}|{body}".encode(), digest_size=20)
    return digest.hexdigest()


def _api_url(request: HttpRequest, page: Page) -> str:
    url = reverse("analytics:api-page", args=[page.name])
    query = request.GET.urlencode()
    return f"{url}?{query}" if query else url


def _json_error(status: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _refused(request: HttpRequest) -> JsonResponse | None:
    """401 for an anonymous client, 403 for a user who may not read the pages, else None."""
    if not request.user.is_authenticated:
        return _json_error(401, "authentication required: log in first")
    if not request.user.has_perm(READ_PAGES):
        return _json_error(403, f"permission required: {READ_PAGES} (the trader role)")
    return None


# The API changes nothing: exempt from CSRF, so a POST or DELETE from a logged-in client
# is answered by the view's JSON 405, not by the CSRF check's HTML 403.
@csrf_exempt
def api(request: HttpRequest, name: str) -> JsonResponse:
    """The JSON twin of page ``name``."""
    try:
        return _api(request, name)
    except Exception:
        # A client reading JSON must get JSON, even from a bug; the log keeps the traceback.
        logger.exception("API page %r failed for %s", name, request.get_full_path())
        return _json_error(500, "internal error: the page could not be built (logged)")


def _api(request: HttpRequest, name: str) -> JsonResponse:
    refused = _refused(request)
    if refused is not None:
        return refused
    if request.method not in ("GET", "HEAD"):
        return _json_error(405, "read-only API: use GET")
    load_pages()
    page = PAGES.get(name)
    if page is None:
        return _json_error(404, f"no page {name!r}", pages=sorted(PAGES))
    try:
        filters = parse_filters(
            request.GET,
            default_period=page.default_period,
            sorts=page.sorts,
        )
    except NoSuchBookError as error:
        return _json_error(404, str(error))
    except BadFilterError as error:
        return _json_error(400, str(error), parameter=error.name)
    return JsonResponse(page_payload(page, filters), encoder=DjangoJSONEncoder)


@csrf_exempt
def api_index(request: HttpRequest) -> JsonResponse:
    """What the API offers: one URL per page, and the filters they take."""
    refused = _refused(request)
    if refused is not None:
        return refused
    if request.method not in ("GET", "HEAD"):
        return _json_error(405, "read-only API: use GET")
    return JsonResponse(
        {
            "api_version": API_VERSION,
            "pages": {
                page.name: reverse("analytics:api-page", args=[page.name]) for page in all_pages()
            },
            "filters": list(NAMES),
        }
    )


@csrf_exempt
def api_not_found(request: HttpRequest, rest: str) -> JsonResponse:
    refused = _refused(request)
    if refused is not None:
        return refused
    return _json_error(404, f"no API endpoint {request.path!r}")


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Context processor: the pages for the top bar, carrying the chosen book along."""
    book = request.GET.get("book", "")
    suffix = f"?book={book}" if book.isascii() and book.isdigit() else ""
    return {
        "nav_pages": [
            {
                "name": page.name,
                "title": page.title,
                "url": reverse(f"analytics:{page.name}") + suffix,
            }
            for page in nav_pages()
        ]
    }
