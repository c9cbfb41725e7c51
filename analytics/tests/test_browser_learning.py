"""The learning page in a real Chromium: a curve per guard drawn by Chart.js, the
recommendation's Apply form behind its confirmation, no sideways scrolling at 1,280 or
390 px, and applying from the page."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def recommended(replayed_book):
    """The replayed book with its recommendations, made before the browser starts."""
    from analytics.learning import guard_curves, thresholds_recommend
    from analytics.models import ThresholdRecommendation

    thresholds_recommend(book=replayed_book)
    recs = list(
        ThresholdRecommendation.objects.filter(status="open").select_related("guard_config")
    )
    curves = [c for c in guard_curves(book=replayed_book) if c.observed]
    return replayed_book, recs, curves


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
