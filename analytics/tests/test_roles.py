"""Who may read and who may act in the trader's view (``analytics.roles``), view by view:
an anonymous visitor, an account with no role, a staff account with no permission, a
trader, and the holder of each permission to act."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from analytics.learning import thresholds_recommend
from analytics.models import RecoveryRun, Report, ThresholdRecommendation
from analytics.pages import load_pages
from analytics.roles import (
    APPLY_RECOMMENDATION,
    READ_PAGES,
    READ_REPORTS,
    START_ABLATION,
    START_RECOVERY,
    TRADER_GROUP,
)
from analytics.tests.factories import BookFactory, SignalFactory
from analytics.tests.personas import person
from analytics.tests.test_learning import configs, steady_book  # noqa: F401 (fixtures)
from signals.models import Book, GuardConfig
from signals.services import book_configure

pytestmark = pytest.mark.django_db

PAGES = sorted(load_pages())
FORBIDDEN = 403


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def people():
    """One account per role. The holders of a permission to act are not staff: the
    permission alone is what lets them act (they have the trader role to read)."""
    return {
        "nobody": person("nobody"),
        "staff": person("staff", staff=True),
        "trader": person("trader", trader=True),
        "ablator": person("ablator", trader=True, perms=(START_ABLATION,)),
        "recoverer": person("recoverer", trader=True, perms=(START_RECOVERY,)),
        "applier": person("applier", trader=True, perms=(APPLY_RECOMMENDATION,)),
    }


@pytest.fixture
def ablatable(configs):  # noqa: F811 (the fixture imported above)
    """A replay book that ran two guards: the guard page offers to ablate it."""
    book = BookFactory(name="base")
    book_configure(book=book, strategies=[], guards=list(configs))
    return book


def to_login(response, path: str) -> bool:
    """Redirected to the trader's login page, which will come back to ``path``."""
    return response.status_code == 302 and response["Location"].startswith(f"/login/?next={path}")


# --- Reading ---------------------------------------------------------------------------


def test_every_page_is_for_traders_only(people):
    book = BookFactory()
    for name in PAGES:
        url = reverse(f"analytics:{name}")
        assert to_login(Client().get(url, {"book": book.pk}), url), name
        for who in ("nobody", "staff"):
            response = logged_in(people[who]).get(url, {"book": book.pk})
            assert response.status_code == FORBIDDEN, (name, who)
            assert "trader role" in response.content.decode()
        for who in ("trader", "ablator", "recoverer", "applier"):
            assert logged_in(people[who]).get(url, {"book": book.pk}).status_code == 200, name


def test_every_api_twin_is_for_traders_only_and_answers_json(people):
    book = BookFactory()
    urls = [reverse("analytics:api-index"), "/api/v1/no-such-page/", "/api/v2/"]
    urls += [reverse("analytics:api-page", args=[name]) for name in PAGES]
    for url in urls:
        anonymous = Client().get(url, {"book": book.pk})
        assert anonymous.status_code == 401, url
        assert "log in" in anonymous.json()["error"]
        for who in ("nobody", "staff"):
            response = logged_in(people[who]).get(url, {"book": book.pk})
            assert response.status_code == FORBIDDEN, (url, who)
            assert response["Content-Type"] == "application/json"
            assert READ_PAGES in response.json()["error"]
        expected = 404 if "no-such-page" in url or "v2" in url else 200
        assert logged_in(people["trader"]).get(url, {"book": book.pk}).status_code == expected


def test_the_signal_page_is_for_traders_only(people):
    signal = SignalFactory()
    url = reverse("analytics:signal", args=[signal.pk])
    assert to_login(Client().get(url), url)
    for who in ("nobody", "staff"):
        assert logged_in(people[who]).get(url).status_code == FORBIDDEN, who
    page = logged_in(people["trader"]).get(url)
    assert page.status_code == 200
    # The admin's links are for staff: a trader gets the version without them.
    assert "in the admin" not in page.content.decode()


def test_reports_download_for_traders_only(people):
    book = BookFactory(name="main")
    report = Report.objects.create(
        book=book,
        period="day",
        created_by="test",
        summary={"trades": 3},
        html="<p>r</p>",
        csv="a\n",
    )
    for fmt in ("html", "json", "csv"):
        url = reverse("analytics:report-download", args=[report.pk, fmt])
        assert to_login(Client().get(url), url)
        for who in ("nobody", "staff"):
            assert logged_in(people[who]).get(url).status_code == FORBIDDEN, (fmt, who)
        response = logged_in(people["trader"]).get(url)
        assert response.status_code == 200, fmt
        assert response["Content-Disposition"].startswith('attachment; filename="report-main-day-')


def test_the_trader_role_holds_only_the_read_permissions(people):
    trader = people["trader"]
    assert trader.groups.get().name == TRADER_GROUP
    assert trader.get_all_permissions() == {READ_PAGES, READ_REPORTS}
    assert not trader.is_staff


def test_a_superuser_reads_and_acts_without_a_group(ablatable):
    admin = person("root")
    admin.is_superuser = True
    admin.save()
    client = logged_in(admin)
    assert client.get(reverse("analytics:guards"), {"book": ablatable.pk}).status_code == 200
    assert client.post(reverse("analytics:run-recovery")).status_code == 302


# --- Acting ----------------------------------------------------------------------------


def test_only_holders_of_start_ablation_start_an_ablation(people, ablatable):
    url = reverse("analytics:start-ablation")
    assert to_login(Client().post(url, {"book": ablatable.pk}), url)
    for who in ("nobody", "staff", "trader", "recoverer", "applier"):
        assert logged_in(people[who]).post(url, {"book": ablatable.pk}).status_code == 403, who
    response = logged_in(people["ablator"]).post(url, {"book": ablatable.pk}, follow=True)
    assert response.redirect_chain == [(f"/guards/?book={ablatable.pk}", 302)]
    assert "Ablation of &#x27;base&#x27; started: 2 leg(s)" in response.content.decode()


def test_only_holders_of_start_recovery_start_a_recovery(people, broker):
    url = reverse("analytics:run-recovery")
    assert to_login(Client().post(url), url)
    for who in ("nobody", "staff", "trader", "ablator", "applier"):
        assert logged_in(people[who]).post(url).status_code == 403, who
    assert not RecoveryRun.objects.exists()
    live = BookFactory(name="live", kind=Book.Kind.LIVE)
    response = logged_in(people["recoverer"]).post(url, {"book": live.pk}, follow=True)
    assert response.redirect_chain == [(f"/health/?book={live.pk}", 302)]
    assert "Recovery found no stuck signal" in response.content.decode()
    assert RecoveryRun.objects.get().actor == "recoverer"


def test_only_holders_of_change_guardconfig_apply_a_recommendation(
    people,
    steady_book,  # noqa: F811 (the fixture imported above)
):
    thresholds_recommend(book=steady_book)
    rec = ThresholdRecommendation.objects.get()
    url = reverse("analytics:apply-recommendation", args=[rec.pk])
    assert to_login(Client().post(url), url)
    for who in ("nobody", "staff", "trader", "ablator", "recoverer"):
        assert logged_in(people[who]).post(url).status_code == 403, who
    assert GuardConfig.objects.get(name="cooldown").version == 1

    response = logged_in(people["applier"]).post(url, follow=True)

    assert response.redirect_chain == [(f"/learning/?book={steady_book.pk}", 302)]
    cooldown = GuardConfig.objects.get(name="cooldown")
    assert cooldown.version == 2
    assert Decimal(cooldown.params["minutes"]) == rec.recommended_value
    assert cooldown.history.first().history_user == people["applier"]


# --- The buttons follow the permissions ------------------------------------------------


def buttons(client: Client, book: Book) -> set[str]:
    shown = set()
    for page, label in (
        ("guards", "Ablate this book"),
        ("health", "Run recovery now"),
        ("learning", "Apply&hellip;"),
    ):
        html = client.get(reverse(f"analytics:{page}"), {"book": book.pk}).content.decode()
        if label in html:
            shown.add(page)
    return shown


def test_each_button_shows_only_to_holders_of_its_permission(people, steady_book):  # noqa: F811
    thresholds_recommend(book=steady_book)
    assert ThresholdRecommendation.objects.filter(status="open").exists()
    assert buttons(logged_in(people["trader"]), steady_book) == set()
    assert buttons(logged_in(people["ablator"]), steady_book) == {"guards"}
    assert buttons(logged_in(people["recoverer"]), steady_book) == {"health"}
    assert buttons(logged_in(people["applier"]), steady_book) == {"learning"}
    admin = person("root")
    admin.is_superuser = True
    admin.save()
    assert buttons(logged_in(admin), steady_book) == {"guards", "health", "learning"}


# --- In docs/reliability.md ------------------------------------------------------------


@pytest.mark.reliability(
    fault=(
        "every account without the act's permission (no role, staff, trader, holders of the "
        "other acts) POSTs each act: start an ablation, run the recovery, apply a "
        "recommendation"
    ),
    expected="403 every time; no ablation leg requested, no recovery run, no new version",
)
def test_no_account_acts_without_the_acts_permission(
    people,
    ablatable,
    broker,
    reliability,
    steady_book,  # noqa: F811 (the fixture imported above)
):
    from work.models import WorkRequest

    thresholds_recommend(book=steady_book)
    rec = ThresholdRecommendation.objects.get()
    acts = {
        "ablator": (reverse("analytics:start-ablation"), {"book": ablatable.pk}),
        "recoverer": (reverse("analytics:run-recovery"), {}),
        "applier": (reverse("analytics:apply-recommendation", args=[rec.pk]), {}),
    }
    versions = list(GuardConfig.objects.values_list("name", "version"))
    tries = refused = 0
    for holder, (url, data) in acts.items():
        for who, user in people.items():
            if who == holder:
                continue
            tries += 1
            refused += logged_in(user).post(url, data).status_code == 403
    started = (
        WorkRequest.objects.count()
        + RecoveryRun.objects.count()
        + Book.objects.filter(ablation_of=ablatable).count()
    )
    changed = list(GuardConfig.objects.values_list("name", "version")) != versions
    reliability.observed(
        f"{refused} of {tries} refused with 403; {started} pieces of work started, "
        f"configurations {'changed' if changed else 'unchanged'}",
        lost=0,
        duplicated=0,
        trials=tries,
    )
    assert (refused, tries, started, changed) == (15, 15, 0, False)
    assert ThresholdRecommendation.objects.get().status == "open"
