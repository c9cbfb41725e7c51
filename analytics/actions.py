"""Views that act (POST) from the pages: being built."""

from django.http import Http404, HttpRequest, HttpResponse


def start_ablation(request: HttpRequest) -> HttpResponse:
    raise Http404("Not built yet.")


def apply_recommendation(request: HttpRequest, pk: int) -> HttpResponse:
    raise Http404("Not built yet.")


def report_download(request: HttpRequest, report_id: int, fmt: str) -> HttpResponse:
    raise Http404("Not built yet.")


def run_recovery(request: HttpRequest) -> HttpResponse:
    raise Http404("Not built yet.")
