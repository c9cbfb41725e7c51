"""Being built."""

from django.http import Http404, HttpRequest, HttpResponse


def run_recovery(request: HttpRequest) -> HttpResponse:
    raise Http404("Not built yet.")
