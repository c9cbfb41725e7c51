"""Being built."""

from django.http import Http404, HttpRequest, HttpResponse


def apply_recommendation(request: HttpRequest, pk: int) -> HttpResponse:
    raise Http404("Not built yet.")
