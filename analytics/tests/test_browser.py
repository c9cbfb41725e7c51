"""The pages in a real headless Chromium (Debian's), driven by Playwright."""

import os
import shutil

import pytest

from analytics.tests.factories import replay_testex
from signals.tests.candles import store_walk

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason="Chromium is not installed (apt-get install chromium); .ci/run installs it",
    ),
]
PASSWORD = "browser-test-Pass-73"


@pytest.fixture
def browser_page(browser_page):
    """The shared Chromium's page (analytics/tests/conftest.py), 1,300 px wide."""
    browser_page.set_viewport_size({"width": 1300, "height": 900})
    return browser_page


@pytest.fixture
def replayed(django_user_model):
    store_walk(600, seed=11)
    replay_testex()
    django_user_model.objects.create_superuser("trader", "t@example.org", PASSWORD)


@pytest.fixture
def blocked_signal(replayed):
    """(id, decisions, transitions) of a blocked signal, read before the browser starts:
    Playwright's loop then runs in this thread and Django refuses queries from it."""
    from signals.models import Signal, SignalState

    signal = Signal.objects.filter(state=SignalState.BLOCKED).first() or Signal.objects.first()
    return signal.pk, signal.decisions.count(), signal.transitions.count()


def test_the_signal_page_fits_a_laptop_screen(blocked_signal, live_server, browser_page):
    signal_id, decisions_count, transitions_count = blocked_signal
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 800})
    url = f"{live_server.url}/signals/{signal_id}/"
    page.goto(url)
    assert page.url.startswith(f"{live_server.url}/login/"), "the page is behind the login"
    page.fill("#id_username", "trader")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(url)

    assert page.locator("h1").inner_text().startswith(f"Signal #{signal_id}")
    decisions = page.locator("table.decisions")
    assert decisions.is_visible()
    assert decisions.locator("tbody tr").count() == decisions_count
    assert page.locator("table.transitions tbody tr").count() == transitions_count
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    for table in ("decisions", "transitions", "trades"):
        wrap = page.locator(f"table.{table}").locator("xpath=..")
        assert wrap.evaluate("e => e.scrollWidth <= e.clientWidth"), f"{table} scrolls sideways"
