"""Driving the pages in Debian's headless Chromium through Playwright.

``browser_session`` (a fixture in ``analytics/tests/conftest.py``) logs a superuser in
and yields a ``BrowserSession``: ``open(path)`` goes to a page and fails the test on any
console error; ``check_layout(name)`` asserts no sideways scrolling at 1,280 px and at a
390 px phone width, and saves both screenshots under ``var/screenshots/`` (the folder
the README names; CI keeps it as an artefact).
"""

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PASSWORD = "browser-test-Pass-73"
needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="Chromium is not installed (apt-get install chromium); .ci/run installs it",
)
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class BrowserSession:
    page: Any
    base_url: str
    console_errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> Any:
        """Go to ``path`` (logged in); fail on a non-2xx answer or a console error."""
        self.console_errors.clear()
        response = self.page.goto(f"{self.base_url}{path}")
        assert response is not None and response.ok, (
            f"{path} answered {response and response.status}"
        )
        self.page.wait_for_load_state("load")
        assert not self.console_errors, f"console errors on {path}: {self.console_errors}"
        return self.page

    def body(self) -> str:
        return self.page.locator("main").inner_text()

    def check_layout(self, name: str) -> None:
        """No sideways scrolling at 1,280 px or 390 px; a screenshot of each width."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for width, height in ((1280, 900), (390, 844)):
            self.page.set_viewport_size({"width": width, "height": height})
            self.page.wait_for_timeout(50)
            scroll = self.page.evaluate("document.documentElement.scrollWidth")
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
            assert scroll <= width, f"{name} is {scroll} px wide at {width} px"
        self.page.set_viewport_size({"width": 1280, "height": 900})
        assert not self.console_errors, f"console errors: {self.console_errors}"

    def charts_drawn(self) -> int:
        """How many Chart.js charts the page drew."""
        return self.page.locator("canvas[data-drawn=true]").count()


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)


def log_in(page: Any, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/")
