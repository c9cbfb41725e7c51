"""Sends ``CONTENT_SECURITY_POLICY`` (settings) as the ``Content-Security-Policy`` header.

The pages load nothing from other origins and have no inline script or style, so
``default-src 'self'`` holds for them and for the admin.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")
        # A view that set its own policy keeps it.
        if policy and HEADER not in response:
            response[HEADER] = policy
        return response
