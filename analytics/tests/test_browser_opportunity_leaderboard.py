"""The opportunity-cost page and the leaderboard in a real Chromium: no console error,
no sideways scrolling at 1,280 or 390 px, the chart drawn (bars and the running-total
line), and a leaderboard column sorted by clicking its header."""

import pytest

from analytics.tests.test_page_leaderboard import replay_three_strategies

pytestmark = pytest.mark.django_db(transaction=True)


def test_both_pages_in_a_browser(browser_session):
    book = replay_three_strategies()

    page = browser_session.open(f"/opportunity/?book={book.pk}")
    assert browser_session.charts_drawn() == 1
    kinds = page.evaluate(
        "document.querySelector('canvas[data-chart=\"opp-chart\"]').chart.data.datasets"
        ".map(d => d.type || 'bar')"
    )
    assert kinds == ["bar", "line"]
    assert "avoided a loss" in browser_session.body()
    browser_session.check_layout("opportunity")

    page = browser_session.open(f"/leaderboard/?book={book.pk}")
    browser_session.check_layout("leaderboard")

    def order():
        return page.eval_on_selector_all(
            "#lb-table tbody tr", "rows => rows.map(r => r.dataset.strategy)"
        )

    def signals():
        return [
            int(n)
            for n in page.eval_on_selector_all(
                "#lb-table tbody tr", "rows => rows.map(r => r.cells[2].textContent)"
            )
        ]

    before = order()
    assert len(before) == 3
    page.click("#lb-table thead th:nth-child(3)")  # Signals, descending first
    assert signals() == sorted(signals(), reverse=True)
    page.click("#lb-table thead th:nth-child(3)")
    assert signals() == sorted(signals())
    page.click("#lb-table thead th:nth-child(2)")  # Strategy name
    after = order()
    assert sorted(after) == sorted(before) and after != before

    # The toggle swaps the guarded figures for the unguarded ones.
    guarded = page.locator("#lb-table tbody tr >> nth=0 >> td.g >> nth=0")
    unguarded = page.locator("#lb-table tbody tr >> nth=0 >> td.u >> nth=0")
    assert guarded.is_visible() and not unguarded.is_visible()
    page.click("label[for=lb-unguarded]")
    assert unguarded.is_visible() and not guarded.is_visible()
    browser_session.check_layout("leaderboard-unguarded")
