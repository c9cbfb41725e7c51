"""Being built."""

from django.http import Http404, HttpRequest, HttpResponse


def start_ablation(request: HttpRequest) -> HttpResponse:
    raise Http404("Not built yet.")
