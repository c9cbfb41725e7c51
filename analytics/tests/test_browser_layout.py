"""Every page at a laptop's 1,280 px and a phone's 390 px, in Debian's headless Chromium:
no sideways scrolling, no table wider than its box (unless it is laid out as cards), and
on a phone the page's first figure inside the first screen. Every page of the registry
(``analytics.pages``), a few signal pages (blocked, approved with a trade) and the main
admin lists. Screenshots of each in ``var/screenshots/`` (``layout-<name>-<width>.png``)."""

import pytest

from analytics.tests.browser import needs_chromium

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]

ADMIN_LISTS = {
    "signals": "/admin/signals/signal/",
    "decisions": "/admin/signals/guarddecision/",
    "trades": "/admin/signals/papertrade/",
    "books": "/admin/signals/book/",
    "guard-configs": "/admin/signals/guardconfig/",
    "recommendations": "/admin/analytics/thresholdrecommendation/",
    "alerts": "/admin/alerts/alert/",
    "shadow-trades": "/admin/shadow/shadowtrade/",
}


@pytest.fixture
def book(replayed_book):
    """The replayed book, a threshold recommendation and an alert, so every list has
    rows (long words included, as the real ones have)."""
    from decimal import Decimal

    from django.utils import timezone

    from alerts.models import Alert
    from analytics.models import ThresholdRecommendation
    from signals.models import GuardConfig

    config = GuardConfig.objects.order_by("id").first()
    ThresholdRecommendation.objects.create(
        book=replayed_book,
        guard_config=config,
        param="max_open",
        current_value=Decimal(3),
        recommended_value=Decimal(5),
        current_net_impact=Decimal("-1234.5678"),
        recommended_net_impact=Decimal("456.78"),
        samples=321,
        out_of_sample_gain=Decimal("123.45"),
        q_value=0.031,
        share_blocked=0.18,
        reason="Raising max_open to 5 kept 412.30 USD out of sample in 4 of 5 folds.",
    )
    Alert.objects.create(
        kind="guard_cost",
        key=f"book:{replayed_book.pk}:max_open_positions",
        severity=Alert.Severity.WARNING,
        title="Guard max_open_positions cost 1,234.57 USD over the last 30 days",
        message="It blocked 41 signals whose shadow trades made 1,234.57 USD after fees.",
        last_seen_at=timezone.now(),
    )
    return replayed_book


def signal_pages(book) -> dict[str, str]:
    """A blocked signal, an approved one that traded, and the one with most decisions."""
    from django.db.models import Count

    from signals.models import Signal, SignalState

    signals = Signal.objects.filter(book=book)
    chosen = {
        "signal-blocked": signals.filter(state=SignalState.BLOCKED).first(),
        "signal-traded": signals.filter(paper_trade__isnull=False).first(),
        "signal-most-decisions": signals.annotate(n=Count("decisions")).order_by("-n").first(),
    }
    return {name: f"/signals/{signal.pk}/" for name, signal in chosen.items() if signal}


def test_every_page_fits_a_laptop_and_a_phone(browser_session, book):
    from analytics.pages import all_pages

    paths = {page.name: f"/{page.path}?book={book.pk}" for page in all_pages()}
    paths |= signal_pages(book)
    paths |= {f"admin-{name}": url for name, url in ADMIN_LISTS.items()}
    failures = []
    for name, path in paths.items():
        browser_session.open(path)
        failures += browser_session.layout_problems(f"layout-{name}")
    assert not failures, "\n".join(failures)


def test_the_pages_fit_with_a_busy_books_figures(browser_session, book, settings):
    """Money in the tens and hundreds of thousands, as a busy book of several markets over months makes
    (``make run``'s four markets made the opportunity page's "By guard" table 1,204 px
    wide in 1,152 and hid its last column at 1,280 px)."""
    from django.db.models import F

    from analytics.pages import all_pages
    from shadow.models import ShadowTrade
    from signals.models import PaperTrade

    settings.PAGE_CACHE = False  # the figures change under the book's cache stamp
    for model in (ShadowTrade, PaperTrade):
        model.objects.filter(book=book, pnl__isnull=False).update(pnl=F("pnl") * 1000)
    failures = []
    for page in all_pages():
        if page.name in ("health", "learning"):
            continue  # no money from trades
        browser_session.open(f"/{page.path}?book={book.pk}")
        failures += browser_session.layout_problems(f"layout-busy-{page.name}")
    assert not failures, "\n".join(failures)
