"""The frame every page shares, in a real Chromium: navigation, Chart.js loading from our
own static files without a console error, and a phone-width layout."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_navigation_reaches_every_page_without_console_errors(replayed_book, browser_session):
    from analytics.pages import nav_pages

    page = browser_session.open(f"/health/?book={replayed_book.pk}")
    assert page.evaluate("typeof Chart") == "function", "Chart.js is served locally"
    links = page.locator("header nav a")
    titles = [page.title for page in nav_pages()]
    assert [text.strip() for text in links.all_inner_texts()][: len(titles)] == titles
    browser_session.check_layout("frame-health")
