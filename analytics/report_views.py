"""Being built."""

from django.http import Http404, HttpRequest, HttpResponse


def report_download(request: HttpRequest, report_id: int, fmt: str) -> HttpResponse:
    raise Http404("Not built yet.")
