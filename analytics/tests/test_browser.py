"""The pages in a real headless Chromium (Debian's), driven by Playwright."""

import os
import shutil
from io import StringIO

import pytest
from django.core.management import call_command

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
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield browser.new_page(viewport={"width": 1300, "height": 900})
        finally:
            browser.close()


@pytest.fixture
def replayed(django_user_model):
    store_walk(600, seed=11)
    call_command(
        "replay",
        "--exchange",
        "testex",
        "--symbol",
        "BTC/USD",
        "--timeframe",
        "1h",
        "--no-progress",
        stdout=StringIO(),
    )
    django_user_model.objects.create_superuser("trader", "t@example.org", PASSWORD)


def test_a_trader_logs_in_and_reads_the_guard_page(replayed, live_server, browser_page):
    page = browser_page
    page.goto(f"{live_server.url}/guards/")
    assert "/admin/login/" in page.url, "the page is behind the login"
    page.fill("#id_username", "trader")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/guards/")

    assert page.locator("h1").inner_text() == "Guard effectiveness"
    body = page.locator("body").inner_text()
    assert "replay testex BTC/USD 1h" in body
    assert "synthetic data" in body
    assert page.locator("table tbody tr", has_text="cooldown_after_stop").count() >= 1
    assert page.locator("svg rect").count() >= 1, "the net-impact chart is drawn"

    page.get_by_role("link", name="Dashboard", exact=True).click()
    page.wait_for_url(f"{live_server.url}/?book=*")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert "Blocked opportunity cost" in page.locator("body").inner_text()

    page.goto(f"{live_server.url}/admin/signals/signal/")
    assert page.locator("#result_list tbody tr").count() > 0
