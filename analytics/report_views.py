"""Downloads of stored reports: ``reports/<id>.<html|json|csv>``, as attachments, for
those who hold ``analytics.roles.READ_REPORTS`` (the trader role does)."""

import json

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.text import slugify
from django.views.decorators.http import require_safe

from analytics.models import Report
from analytics.reports import CONTENT_TYPES
from analytics.roles import READ_REPORTS


def report_filename(report: Report, fmt: str) -> str:
    """``report-<book>-<period>-<YYYY-MM-DD>.<fmt>``, the book's name made file-safe."""
    book = slugify(report.book.name) or f"book-{report.book_id}"
    return f"report-{book}-{report.period}-{report.created_at:%Y-%m-%d}.{fmt}"


@login_required
@permission_required(READ_REPORTS, raise_exception=True)
@require_safe
def report_download(request: HttpRequest, report_id: int, fmt: str) -> HttpResponse:
    """The stored report ``report_id`` as a file in ``fmt``; 404 for an unknown report or
    format. Always an attachment: the HTML document embeds its own CSS, which the site's
    Content-Security-Policy would refuse to apply in a page of the site."""
    if fmt not in CONTENT_TYPES:
        raise Http404("No such format: html, json or csv.")
    report = Report.objects.select_related("book").filter(pk=report_id).first()
    if report is None:
        raise Http404("No such report.")
    if fmt == "json":
        body = json.dumps(report.summary, indent=2, ensure_ascii=False) + "\n"
    else:
        body = report.html if fmt == "html" else report.csv
    response = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{report_filename(report, fmt)}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
