"""Error pages that name nothing of the request or the error, and the CSP header."""

import base64
import hashlib
import re

import pytest
from django.core.exceptions import PermissionDenied
from django.template.loader import render_to_string
from django.urls import path

from config import urls as project_urls
from config.csp import HEADER

pytestmark = pytest.mark.django_db

SECRET = "leaky-detail-9f8e7d"


def boom(request):
    raise RuntimeError(f"database password is {SECRET}")


def denied(request):
    raise PermissionDenied(f"internal reason {SECRET}")


urlpatterns = [
    path(f"boom-{SECRET}/", boom),
    path(f"denied-{SECRET}/", denied),
    *project_urls.urlpatterns,
]


@pytest.fixture
def error_urls(settings):
    settings.ROOT_URLCONF = __name__
    settings.DEBUG = False


def test_404_names_neither_the_path_nor_the_error(client, error_urls):
    response = client.get(f"/no-such-page-{SECRET}/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Page not found" in page
    assert SECRET not in page
    assert "Signal pipeline" in page  # the site's layout


def test_403_names_nothing_of_the_reason(client, error_urls):
    response = client.get(f"/denied-{SECRET}/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "Access denied" in page
    assert SECRET not in page


def test_500_names_nothing_of_the_error(client, error_urls):
    client.raise_request_exception = False
    response = client.get(f"/boom-{SECRET}/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Server error" in page
    assert SECRET not in page
    assert "RuntimeError" not in page
    assert "Traceback" not in page


def test_the_error_templates_render_without_a_request():
    # Django renders 500.html with no context at all; base.html must cope for the others.
    assert "Server error" in render_to_string("500.html")
    assert "{%" not in render_to_string("500.html")
    assert "Page not found" in render_to_string("404.html")
    assert "Access denied" in render_to_string("403.html")


def test_every_response_has_the_policy(client, settings):
    for url in ["/", "/healthz", "/admin/login/", "/no-such-page/"]:
        response = client.get(url)
        assert response[HEADER].startswith("default-src 'self'"), url
        assert "unsafe-inline" not in response[HEADER]


def test_a_view_s_own_policy_is_kept(rf, settings):
    from django.http import HttpResponse

    from config.csp import ContentSecurityPolicyMiddleware

    def view(request):
        response = HttpResponse()
        response[HEADER] = "default-src 'none'"
        return response

    assert ContentSecurityPolicyMiddleware(view)(rf.get("/"))[HEADER] == "default-src 'none'"


INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>(.*?)</script>", re.I | re.S
)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
INLINE_STYLE = re.compile(r"<style|\sstyle\s*=", re.I)
OTHER_ORIGIN = re.compile(r"""(?:src|href)=["'](?:https?:)?//""", re.I)


def script_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def test_the_admin_and_the_pages_need_nothing_the_policy_blocks(admin_client, settings):
    """What the policy would block: inline scripts it does not list by hash, inline
    handlers and styles, and anything loaded from another origin."""
    pages = [
        "/",
        "/guards/",
        "/admin/",
        "/admin/auth/user/",
        "/admin/auth/user/add/",
        "/admin/django_celery_beat/periodictask/",
        "/admin/django_celery_beat/periodictask/add/",
        "/admin/axes/accessattempt/",
    ]
    policy = settings.CONTENT_SECURITY_POLICY
    hashed = 0
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert response[HEADER] == policy
        page = response.content.decode()
        for script in INLINE_SCRIPT.finditer(page):
            assert script_hash(script.group(1)) in policy, (url, script.group(0)[:200])
            hashed += 1
        for pattern in (INLINE_HANDLER, INLINE_STYLE, OTHER_ORIGIN):
            assert not pattern.search(page), (url, pattern.search(page))
    assert hashed == 1, "the crontab help of the periodic task form"
