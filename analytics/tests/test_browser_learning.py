"""The learning page in a real Chromium: a curve per guard drawn by Chart.js, the
recommendation's Apply form behind its confirmation, no sideways scrolling at 1,280 or
390 px, and applying from the page."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def recommended():
    """A book whose cooldown is worth raising out of sample (``test_learning.STEADY``),
    with its recommendation made before the browser starts. (A short replay of generated
    candles has no threshold that holds out of sample: rightly, nothing to recommend.)"""
    from analytics.learning import guard_curves, thresholds_recommend
    from analytics.models import ThresholdRecommendation
    from analytics.tests.factories import BookFactory
    from analytics.tests.test_learning import STEADY, decide
    from signals.models import BookGuard, GuardConfig
    from signals.services import book_configure, guard_config_save

    configs = [
        guard_config_save(
            config=GuardConfig(name="cooldown", kind="cooldown_after_stop", params={"minutes": 240})
        ),
        guard_config_save(
            config=GuardConfig(name="max open", kind="max_open_positions", params={"max_open": 1})
        ),
    ]
    book = BookFactory(name="steady")
    book_configure(book=book, strategies=[], guards=configs)
    frozen = (
        BookGuard.objects.get(book=book, name="cooldown"),
        BookGuard.objects.get(book=book, name="max open"),
    )
    decide(book, frozen, STEADY * 8)
    thresholds_recommend(book=book)
    recs = list(
        ThresholdRecommendation.objects.filter(status="open").select_related("guard_config")
    )
    curves = [c for c in guard_curves(book=book) if c.observed]
    return book, recs, curves


def test_the_learning_page_draws_each_curve_and_applies_a_recommendation(
    recommended, browser_session
):
    from django.db import connection

    from signals.models import GuardConfig

    book, recs, curves = recommended
    assert recs, "the replayed book should yield at least one recommendation"

    page = browser_session.open(f"/learning/?book={book.pk}")

    assert browser_session.charts_drawn() == len(curves)
    body = browser_session.body()
    for curve in curves:
        assert curve.label in body
    # The tables of thresholds tried must fit too, opened.
    page.evaluate("document.querySelectorAll('details.points').forEach(d => d.open = true)")
    browser_session.check_layout("learning")

    rec = recs[0]
    config = rec.guard_config
    form = page.locator(f"form[action='/learning/{rec.pk}/apply/']")
    form.locator("xpath=..").locator("summary").click()
    assert f"version {config.version + 1} of {config.name}" in form.inner_text()
    form.locator("button[type=submit]").click()
    page.wait_for_load_state("load")
    assert f"(version {config.version + 1})" in browser_session.body()
    try:
        assert GuardConfig.objects.get(pk=config.pk).version == config.version + 1
    finally:
        # Queried while Playwright's loop runs: this connection is not the test's own.
        connection.close()
