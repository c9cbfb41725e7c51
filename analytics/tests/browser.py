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
        """No sideways scrolling at 1,280 px or 390 px, no table wider than its box (cards
        excepted), the first figure in a phone's first screen; a screenshot of each width."""
        problems = self.layout_problems(name)
        assert not problems, "\n".join(problems)
        assert not self.console_errors, f"console errors: {self.console_errors}"

    def layout_problems(self, name: str) -> list[str]:
        """What does not fit on the open page at 1,280 px and at 390 px (``LAYOUT_JS``),
        in words; saves ``<name>-<width>.png`` (the whole page) for each width."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        problems = []
        for width, height in ((1280, 900), (390, 844)):
            self.page.set_viewport_size({"width": width, "height": height})
            self.page.wait_for_timeout(50)
            found = self.page.evaluate(LAYOUT_JS, height)
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
            problems += [f"{name} at {width} px: {problem}" for problem in found]
        self.page.set_viewport_size({"width": 1280, "height": 900})
        return problems

    def charts_drawn(self) -> int:
        """How many Chart.js charts the page drew."""
        return self.page.locator("canvas[data-drawn=true]").count()


# The layout checks, run in the page (argument: the viewport's height): the document no
# wider than the viewport; every shown table no wider than the box around it (a table
# that scrolls inside its box hides columns off-screen) unless it is laid out as cards
# (its display is no longer "table"); the first figure (``.big``) of ``main`` starting
# inside the first screen.
LAYOUT_JS = """(height) => {
  const problems = [];
  const viewport = document.documentElement.clientWidth;
  const scroll = document.documentElement.scrollWidth;
  if (scroll > window.innerWidth) problems.push(`the page is ${scroll} px wide`);
  for (const table of document.querySelectorAll("table")) {
    if (!table.getClientRects().length) continue;
    if (getComputedStyle(table).display !== "table") continue;
    const box = table.parentElement;
    const wide = Math.ceil(table.getBoundingClientRect().width);
    const room = Math.min(box.clientWidth, viewport);
    if (wide > room + 1) {
      const label = table.id || table.className || (table.closest("[id]") || {}).id || "table";
      problems.push(`table ${label} is ${wide} px wide in ${room} px`);
    }
  }
  const figure = document.querySelector("main .big");
  if (figure && window.innerWidth < 500) {
    const top = figure.getBoundingClientRect().top + window.scrollY;
    if (top > height - 20) problems.push(`the first figure starts at ${Math.round(top)} px`);
  }
  return problems;
}"""


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)


def log_in(page: Any, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/")
