"""The learning engine: threshold curves replayed from recorded observed values, the
recommendation it stores, applying one (a new configuration version with the user in its
history), the task and command that never change a configuration, and the learning page
with its JSON twin."""

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.core.serializers.json import DjangoJSONEncoder
from django.test import Client
from django.urls import reverse

from analytics.learning import (
    CurvePoint,
    Observations,
    best_point,
    candidate_thresholds,
    guard_curves,
    threshold_curve,
    thresholds_recommend,
    walk_forward,
)
from analytics.models import ThresholdRecommendation
from analytics.selectors import guard_effectiveness
from analytics.tasks import recommend_thresholds
from analytics.tests.factories import BookFactory, GuardDecisionFactory, SignalFactory
from shadow.models import ShadowTrade
from signals.models import Book, BookGuard, GuardConfig, GuardDecision, SignalState
from signals.services import book_configure, guard_config_save

pytestmark = pytest.mark.django_db

CENT = Decimal("0.01")
# (cooldown minutes since the last stop-out or None, open positions, shadow P&L or None
# while the shadow trade is open). Cooldown 240 blocks below 240; max_open 1 blocks at 1.
ROWS = [
    (30, 0, "-50"),
    (60, 1, "-40"),  # max_open blocks it too
    (120, 0, "-30"),
    (180, 0, "10"),
    (200, 0, "-20"),
    (300, 0, "-25"),
    (360, 0, "-15"),
    (400, 1, "60"),  # blocked by max_open only
    (500, 0, "-10"),
    (None, 0, "5"),
    (600, 0, None),
    (700, 0, "-5"),
]


# A steady regime, repeated 8 times in time order (112 signals): blocking below 400
# minutes also catches the -30 and -25 losers at 250 and 300 and blocks 6 of 14 signals
# (43 %), so it wins on later history too, beats random blocking, and keeps to the 50 %
# share. Per repeat: net impact 100 at 240 (50 + 40 - 10 + 20), 155 at 400.
STEADY = [
    (30, 0, "-50"),
    (60, 1, "-40"),
    (250, 0, "-30"),
    (180, 0, "10"),
    (200, 0, "-20"),
    (300, 0, "-25"),
    (400, 1, "60"),
    (500, 0, "10"),
    (None, 0, "5"),
    (600, 0, "20"),
    (700, 0, "-5"),
    (800, 0, "15"),
    (900, 0, "8"),
    (1000, 0, "-3"),
]


# --- A small hand-made book ---------------------------------------------------------


@pytest.fixture
def configs():
    cooldown = guard_config_save(
        config=GuardConfig(name="cooldown", kind="cooldown_after_stop", params={"minutes": 240})
    )
    max_open = guard_config_save(
        config=GuardConfig(name="max open", kind="max_open_positions", params={"max_open": 1})
    )
    return cooldown, max_open


def decide(book, frozen, rows):
    """Signals with both guards' decisions and their shadow trades, as the engine writes them."""
    cooldown, max_open = frozen
    for minutes, positions, pnl in rows:
        cooldown_blocks = minutes is not None and minutes < 240
        max_open_blocks = positions >= 1
        blocked = cooldown_blocks or max_open_blocks
        signal = SignalFactory(
            book=book, state=SignalState.BLOCKED if blocked else SignalState.APPROVED
        )
        GuardDecisionFactory(
            signal=signal,
            guard=cooldown.name,
            book_guard=cooldown,
            verdict="block" if cooldown_blocks else "pass",
            observed_value=Decimal(minutes) if minutes is not None else None,
            threshold=Decimal(240),
        )
        GuardDecisionFactory(
            signal=signal,
            guard=max_open.name,
            book_guard=max_open,
            verdict="block" if max_open_blocks else "pass",
            observed_value=Decimal(positions),
            threshold=Decimal(1),
        )
        ShadowTrade.objects.create(
            signal=signal,
            book=book,
            side=signal.side,
            group=ShadowTrade.Group.BLOCKED if blocked else ShadowTrade.Group.CONTROL,
            status=ShadowTrade.Status.CLOSED if pnl is not None else ShadowTrade.Status.OPEN,
            pnl=Decimal(pnl) if pnl is not None else None,
            # A closed trade has its exit (the book's rollups sum it on its exit day).
            exit_time=signal.candle_time + timedelta(hours=2) if pnl is not None else None,
        )


@pytest.fixture
def small_book(configs):
    book = BookFactory(name="small")
    book_configure(book=book, strategies=[], guards=list(configs))
    frozen = (
        BookGuard.objects.get(book=book, name="cooldown"),
        BookGuard.objects.get(book=book, name="max open"),
    )
    decide(book, frozen, ROWS)
    return book


@pytest.fixture
def steady_book(configs):
    """A book whose cooldown is worth raising from 240 to 400 minutes, out of sample."""
    book = BookFactory(name="steady")
    book_configure(book=book, strategies=[], guards=list(configs))
    frozen = (
        BookGuard.objects.get(book=book, name="cooldown"),
        BookGuard.objects.get(book=book, name="max open"),
    )
    decide(book, frozen, STEADY * 8)
    return book


@pytest.fixture
def staff(django_user_model):
    """A lead who may change guard configurations. Now with the trader role too: reading
    the learning page takes the role's permission, which staff status no longer gives."""
    from analytics.roles import trader_add

    user = django_user_model.objects.create_user(username="lead", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="change_guardconfig"))
    trader_add(user=user)
    return user


@pytest.fixture
def staff_client(staff):
    # Its own client: ``trader_client`` logs the shared ``client`` in as someone else.
    client = Client()
    client.force_login(staff)
    return client


def curve_of(book, name):
    return next(curve for curve in guard_curves(book=book) if curve.book_guard.name == name)


def config_state():
    return [
        (config.name, config.version, config.params, config.history.count())
        for config in GuardConfig.objects.order_by("name")
    ]


# --- A plain reference ---------------------------------------------------------------


def reference_point(book, book_guard, threshold):
    """The guard at ``threshold``, by iterating the ORM rows one by one."""
    blocks_when = {"cooldown_after_stop": "<", "max_open_positions": ">="}[book_guard.kind]
    blocked = samples = alone_samples = 0
    pnl = alone_pnl = Decimal(0)
    decisions = GuardDecision.objects.filter(signal__book=book, book_guard=book_guard)
    for decision in decisions.select_related("signal__shadow_trade"):
        if decision.observed_value is None:
            continue
        value = float(decision.observed_value)
        hit = value < threshold if blocks_when == "<" else value >= threshold
        if not hit:
            continue
        blocked += 1
        shadow = decision.signal.shadow_trade
        if shadow.status != ShadowTrade.Status.CLOSED or shadow.pnl is None:
            continue
        others = (
            GuardDecision.objects.filter(signal=decision.signal, verdict="block")
            .exclude(guard=decision.guard)
            .exists()
        )
        samples += 1
        pnl += shadow.pnl
        if not others:
            alone_samples += 1
            alone_pnl += shadow.pnl
    return blocked, samples, -pnl, alone_samples, -alone_pnl


def assert_curve_matches_reference(book, curve):
    assert curve.points, curve.label
    for point in curve.points:
        blocked, samples, net, alone_samples, alone_net = reference_point(
            book, curve.book_guard, point.threshold
        )
        assert (point.blocked, point.samples, point.alone_samples) == (
            blocked,
            samples,
            alone_samples,
        ), (curve.label, point.threshold)
        assert point.net_impact.quantize(CENT) == net.quantize(CENT), (curve.label, point)
        assert point.alone_net_impact.quantize(CENT) == alone_net.quantize(CENT)


# --- Pure pieces ---------------------------------------------------------------------


def test_threshold_curve_follows_each_comparison():
    data = Observations.of(
        [3.0, 1.0, 2.0, 2.0],
        [Decimal("-1"), Decimal("10"), Decimal("-4"), None],
        [True, True, True, False],
        [False, True, False, False],
    )
    at_least = threshold_curve(data, [2.0], blocks_when=">=", current=2.0)[0]
    assert (at_least.blocked, at_least.samples, at_least.net_impact) == (3, 2, Decimal("5"))
    assert at_least.current
    above = threshold_curve(data, [2.0], blocks_when=">")[0]
    assert (above.blocked, above.samples, above.net_impact) == (1, 1, Decimal("1"))
    below = threshold_curve(data, [2.0, 3.0], blocks_when="<")
    assert [(p.blocked, p.net_impact, p.alone_net_impact) for p in below] == [
        (1, Decimal("-10"), Decimal("0")),
        (3, Decimal("-6"), Decimal("4")),
    ]


def test_integer_candidates_sit_where_the_blocked_set_changes():
    observed = Observations.of([30.5, 60.0, 61.2], [None] * 3, [False] * 3, [False] * 3).observed
    assert candidate_thresholds(observed, current=240.0, integral=True, blocks_when="<") == [
        31.0,
        60.0,
        62.0,
        240.0,
    ]
    many = Observations.of(
        [float(v) for v in range(500)], [None] * 500, [False] * 500, [False] * 500
    ).observed
    assert len(candidate_thresholds(many, current=7.5, integral=False, blocks_when=">")) <= 50


def point(threshold, net, samples, current=False, blocked=None):
    return CurvePoint(
        threshold=threshold,
        blocked=samples if blocked is None else blocked,
        samples=samples,
        net_impact=Decimal(net),
        alone_samples=samples,
        alone_net_impact=Decimal(net),
        current=current,
    )


def test_the_best_candidate_needs_samples_and_more_than_a_cent():
    current = point(5, "10", 6, current=True)
    assert best_point([current, point(6, "50", 4), point(7, "20", 5)], needed=5).threshold == 7
    assert best_point([current, point(7, "10.01", 9)], needed=5) is None
    assert best_point([current, point(7, "10.02", 9)], needed=5).threshold == 7
    # On a tie the nearer threshold wins; blocking every decided signal is never proposed.
    assert best_point([point(2, "30", 9), current, point(6, "30", 9)], needed=5).threshold == 6
    assert best_point([current, point(1, "99", 9, blocked=12)], needed=5, decided=12) is None


# --- Curves against the guard page and a reference -----------------------------------


def test_the_curve_at_the_current_threshold_is_the_guard_pages_net_impact(small_book):
    effects = {e.book_guard_id: e for e in guard_effectiveness(book=small_book)}
    for curve in guard_curves(book=small_book):
        current = curve.current_point
        effect = effects[curve.book_guard.pk]
        assert current.net_impact == effect.outcome.net_impact
        assert current.samples == effect.outcome.evaluated
        assert current.alone_net_impact == effect.sole_outcome.net_impact
        assert curve.mismatches == 0
    cooldown = curve_of(small_book, "cooldown")
    assert cooldown.current_point.net_impact == Decimal("130")  # 50 + 40 + 30 - 10 + 20
    assert cooldown.current_point.alone_net_impact == Decimal("90")  # max_open blocked the -40


def test_each_point_of_the_curve_matches_a_plain_recount(small_book):
    for curve in guard_curves(book=small_book):
        assert_curve_matches_reference(small_book, curve)


def test_a_replayed_books_curves_match_the_guard_page_and_the_recount(replayed_book):
    effects = {e.book_guard_id: e for e in guard_effectiveness(book=replayed_book)}
    curves = guard_curves(book=replayed_book)
    assert {c.book_guard.kind for c in curves} == {"max_open_positions", "cooldown_after_stop"}
    for curve in curves:
        effect = effects[curve.book_guard.pk]
        assert curve.current_point.net_impact == effect.outcome.net_impact
        assert curve.current_point.samples == effect.outcome.evaluated
        assert curve.current_point.alone_net_impact == effect.sole_outcome.net_impact
        assert curve.mismatches == 0
        assert len(curve.points) <= 50
        assert_curve_matches_reference(replayed_book, curve)


# --- Recommendations -----------------------------------------------------------------


def test_it_recommends_the_best_supported_threshold(steady_book, configs):
    outcomes = {o.guard: o for o in thresholds_recommend(book=steady_book)}

    assert outcomes["cooldown v1"].action == "created"
    rec = ThresholdRecommendation.objects.get(guard_config=configs[0])
    # Blocking below 400 adds the -30 and -25 losers: 8 x (100 + 55) over 48 trades.
    assert (rec.param, rec.current_value, rec.recommended_value) == ("minutes", 240, 400)
    assert (rec.current_net_impact, rec.recommended_net_impact) == (800, 1240)
    assert rec.samples == 48 and rec.status == ThresholdRecommendation.Status.OPEN
    curve = curve_of(steady_book, "cooldown")
    needed = 5
    expected = max(
        (p for p in curve.points if p.samples >= needed and p.blocked <= 0.5 * curve.decided),
        key=lambda p: p.net_impact,
    )
    assert curve.recommended == curve.best == expected
    # The stored row says why it holds (the admin and the page show it).
    assert rec.out_of_sample_gain == curve.out_of_sample_gain > 0
    assert rec.q_value == curve.q_value and rec.share_blocked == pytest.approx(48 / 112)
    assert "wins out of sample" in rec.reason
    assert len(curve.folds) == 3 and curve.out_of_sample_gain > 0
    assert curve.q_value is not None and curve.q_value < 0.05
    assert float(rec.recommended_value) == expected.threshold
    assert {p["threshold"] for p in rec.curve} == {p.threshold for p in curve.points}
    # max_open at 0 would block every signal; 2 blocks nothing: no recommendation.
    assert outcomes["max open v1"].action == "none"


def test_a_new_recommendation_supersedes_the_open_one_and_a_rerun_refreshes_it(
    steady_book, configs
):
    thresholds_recommend(book=steady_book)
    first = ThresholdRecommendation.objects.get()
    assert thresholds_recommend(book=steady_book)[0].action == "refreshed"
    assert ThresholdRecommendation.objects.get().pk == first.pk

    ThresholdRecommendation.objects.filter(pk=first.pk).update(recommended_value=300)
    thresholds_recommend(book=steady_book)
    assert ThresholdRecommendation.objects.get(pk=first.pk).status == "superseded"
    assert ThresholdRecommendation.objects.filter(status="open").count() == 1


def test_the_task_alone_changes_no_configuration(steady_book, configs):
    Book.objects.filter(pk=steady_book.pk).update(kind=Book.Kind.LIVE)
    before = config_state()
    frozen = list(BookGuard.objects.values_list("name", "config_version", "params", "active"))

    result = recommend_thresholds.apply().get()

    assert result == {"created": 1, "none": 1}
    assert config_state() == before
    assert list(BookGuard.objects.values_list("name", "config_version", "params", "active")) == (
        frozen
    )


def test_a_book_running_an_older_version_recommends_nothing(steady_book, configs):
    cooldown = configs[0]
    cooldown.params = {"minutes": 120}
    guard_config_save(config=cooldown)

    outcomes = {o.guard: o for o in thresholds_recommend(book=steady_book)}

    assert outcomes["cooldown v1"].action == "skipped"
    assert "v2" in outcomes["cooldown v1"].detail
    assert not ThresholdRecommendation.objects.exists()


# --- Applying ------------------------------------------------------------------------


def test_apply_saves_a_new_version_with_the_user_in_its_history(
    steady_book, configs, staff, staff_client
):
    thresholds_recommend(book=steady_book)
    rec = ThresholdRecommendation.objects.get()
    frozen = list(BookGuard.objects.filter(book=steady_book).values_list("params", flat=True))

    response = staff_client.post(reverse("analytics:apply-recommendation", args=[rec.pk]))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('analytics:learning')}?book={steady_book.pk}"
    config = GuardConfig.objects.get(name="cooldown")
    assert (config.version, config.params) == (2, {"minutes": 400})
    latest = config.history.order_by("-history_date", "-history_id").first()
    assert (latest.version, latest.history_user) == (2, staff)
    assert latest.params == {"minutes": 400}
    rec.refresh_from_db()
    assert rec.status == "applied" and rec.applied_by == staff and rec.applied_version == 2
    assert rec.applied_at is not None
    # The book keeps the copy it froze.
    assert list(BookGuard.objects.filter(book=steady_book).values_list("params", flat=True)) == (
        frozen
    )
    page = staff_client.get(response["Location"])
    assert "is now 400 (version 2)" in page.content.decode()

    again = staff_client.post(reverse("analytics:apply-recommendation", args=[rec.pk]))
    assert again.status_code == 302
    assert GuardConfig.objects.get(name="cooldown").version == 2


def test_a_recommendation_for_a_changed_configuration_is_refused(
    steady_book, configs, staff_client
):
    thresholds_recommend(book=steady_book)
    rec = ThresholdRecommendation.objects.get()
    cooldown = configs[0]
    cooldown.params = {"minutes": 90}
    guard_config_save(config=cooldown)

    response = staff_client.post(
        reverse("analytics:apply-recommendation", args=[rec.pk]), follow=True
    )

    assert "Not applied" in response.content.decode()
    assert GuardConfig.objects.get(name="cooldown").params == {"minutes": 90}
    assert ThresholdRecommendation.objects.get().status == "open"


def test_only_holders_of_change_guardconfig_may_apply(steady_book, configs, client, trader_client):
    thresholds_recommend(book=steady_book)
    rec = ThresholdRecommendation.objects.get()
    url = reverse("analytics:apply-recommendation", args=[rec.pk])
    before = config_state()

    assert trader_client.post(url).status_code == 403
    assert trader_client.get(url).status_code == 405
    client.logout()
    anonymous = client.post(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/?next=")
    assert config_state() == before
    assert ThresholdRecommendation.objects.get().status == "open"


def test_apply_needs_the_csrf_token(steady_book, configs, staff):
    thresholds_recommend(book=steady_book)
    rec = ThresholdRecommendation.objects.get()
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)

    response = client.post(reverse("analytics:apply-recommendation", args=[rec.pk]))

    assert response.status_code == 403
    assert GuardConfig.objects.get(name="cooldown").version == 1


def test_the_admin_applies_and_dismisses(steady_book, configs, admin_client, admin_user):
    thresholds_recommend(book=steady_book)
    rec = ThresholdRecommendation.objects.get()
    changelist = reverse("admin:analytics_thresholdrecommendation_changelist")
    assert admin_client.get(changelist).status_code == 200

    admin_client.post(
        changelist, {"action": "apply_selected", "_selected_action": [rec.pk]}, follow=True
    )

    rec.refresh_from_db()
    assert rec.status == "applied" and rec.applied_by == admin_user
    assert GuardConfig.objects.get(name="cooldown").version == 2
    other = ThresholdRecommendation.objects.create(
        book=steady_book,
        guard_config=configs[1],
        param="max_open",
        current_value=1,
        recommended_value=2,
        current_net_impact=0,
        recommended_net_impact=1,
        samples=5,
    )
    admin_client.post(changelist, {"action": "dismiss_selected", "_selected_action": [other.pk]})
    assert ThresholdRecommendation.objects.get(pk=other.pk).status == "dismissed"
    for model in ("taskheartbeat", "recoveryrun", "report", "thresholdrecommendation"):
        assert admin_client.get(reverse(f"admin:analytics_{model}_changelist")).status_code == 200
        assert admin_client.get(reverse(f"admin:analytics_{model}_add")).status_code == 403


# --- The command ---------------------------------------------------------------------


def test_the_command_reports_what_it_recommends(steady_book, configs):
    out = StringIO()
    before = config_state()

    call_command("recommend_thresholds", "--book", "steady", stdout=out)

    text = out.getvalue()
    assert "Book steady" in text
    assert "cooldown v1: created: minutes 240 -> 400" in text
    assert "max open v1: none" in text
    assert "1 open recommendation(s)" in text and "no configuration was changed" in text
    assert config_state() == before


def test_the_command_refuses_an_unknown_book(steady_book):
    with pytest.raises(CommandError, match="no book named 'nope'; books: steady"):
        call_command("recommend_thresholds", "--book", "nope", stdout=StringIO())


# --- The page and its twin -----------------------------------------------------------


def test_the_page_shows_curves_the_recommendation_and_its_apply_button(
    steady_book, configs, staff_client, trader_client
):
    thresholds_recommend(book=steady_book)
    url = reverse("analytics:learning")

    page = staff_client.get(url, {"book": steady_book.pk}).content.decode()

    assert "cooldown v1" in page and "max open v1" in page
    assert "+800.00 USD" in page  # net impact at the current threshold
    assert "minutes 240 &rarr; 400" in page
    assert "version 2 of cooldown" in page
    assert (
        reverse("analytics:apply-recommendation", args=[ThresholdRecommendation.objects.get().pk])
        in page
    )
    assert "csrfmiddlewaretoken" in page
    assert 'data-chart="curve-' in page
    plain = trader_client.get(url, {"book": steady_book.pk}).content.decode()
    assert "minutes 240 &rarr; 400" in plain
    assert "Create version 2" not in plain


def test_the_twin_is_the_page_data(steady_book, configs, trader_client):
    thresholds_recommend(book=steady_book)
    params = {"book": steady_book.pk}

    page = trader_client.get(reverse("analytics:learning"), params)
    twin = trader_client.get(reverse("analytics:api-page", args=["learning"]), params).json()

    shown = json.loads(json.dumps(page.context["payload"], cls=DjangoJSONEncoder))
    assert twin == shown
    cooldown = next(g for g in twin["data"]["guards"] if g["name"] == "cooldown")
    assert cooldown["current"]["net_impact"] == "800.00"
    assert cooldown["recommendation"]["recommended_value"] == 400.0
    assert cooldown["chart"]["kind"] == "line"
    series = cooldown["chart"]["series"]
    assert [v for v in series[2]["values"] if v is not None] == [800.0]
    assert series[2]["marker"] is True


PAGE_QUERIES = (
    # session, user, book, clock, book list, book meta, page cache keys; 9 own (the
    # expectancy: the pool's size from the rollups, then the pool; whether the rollups
    # are built and the decisions the guard histograms hold, which choose the row path)
    22
)


def test_the_page_needs_a_fixed_number_of_queries(
    small_book, configs, trader_client, django_assert_max_num_queries
):
    thresholds_recommend(book=small_book)
    url = reverse("analytics:learning")
    # Rows written outside the engine: the first read rebuilds the book's rollups.
    trader_client.get(url, {"book": small_book.pk})
    with django_assert_max_num_queries(PAGE_QUERIES):
        trader_client.get(url, {"book": small_book.pk})
    frozen = tuple(BookGuard.objects.filter(book=small_book).order_by("name"))
    decide(small_book, (frozen[0], frozen[1]), ROWS * 4)
    trader_client.get(url, {"book": small_book.pk})
    with django_assert_max_num_queries(PAGE_QUERIES):
        trader_client.get(url, {"book": small_book.pk})


def test_observed_values_between_whole_numbers_still_match_a_recount(small_book):
    """Fractional observed values of a whole-number threshold (candidates rounded to the
    boundary in the database): every point still matches a plain recount."""
    frozen = BookGuard.objects.get(book=small_book, name="cooldown")
    for i, decision in enumerate(GuardDecision.objects.filter(book_guard=frozen)):
        if decision.observed_value is not None:
            decision.observed_value += Decimal("0.000000004") * (i + 1)
            decision.save(update_fields=["observed_value"])
    for curve in guard_curves(book=small_book):
        assert_curve_matches_reference(small_book, curve)


# --- Walk-forward: chosen on earlier history, judged on later history ------------------


def flipping_regime(n=200, flip=110, seed=4):
    """Minutes since a stop-out for ``n`` signals in time order: until just past halfway the
    signals under 500 minutes lose 10 and the others win 10; from ``flip`` on, the
    other way round."""
    rng = np.random.default_rng(seed)
    observed = rng.integers(0, 1000, size=n).astype(float)
    early = np.arange(n) < flip
    low = observed < 500
    pnl = np.where(early == low, -10, 10)
    return observed, np.array([Decimal(int(v)) for v in pnl], dtype=object)


def run_walk_forward(observed, pnl, **overrides):
    n = len(observed)
    options = {
        "observed": observed,
        "pnl": pnl,
        "closed": np.ones(n, dtype=bool),
        "others": np.zeros(n, dtype=bool),
        "decided_before": np.arange(n + 1),
        "current": 100.0,
        "blocks_when": "<",
        "tolerance": 0.0,
        "integral": True,
        "needed": 5,
        "max_share": 0.9,
        "folds": 3,
    }
    options.update(overrides)
    return walk_forward(**options)


def test_each_fold_is_chosen_on_its_past_alone():
    observed, pnl = flipping_regime()
    folds = run_walk_forward(observed, pnl)
    assert len(folds) == 3
    for fold in folds:
        start = fold.train_until
        # The same choice from the training prefix alone, by the plain best_point.
        past = Observations.of(observed[:start], pnl[:start], [True] * start, [False] * start)
        candidates = candidate_thresholds(
            past.observed, current=100.0, integral=True, blocks_when="<"
        )
        best = best_point(
            threshold_curve(past, candidates, blocks_when="<", current=100.0),
            needed=5,
            decided=start,
            max_share=0.9,
        )
        assert fold.chosen == (best.threshold if best is not None else 100.0)
        # Rewriting everything from the test chunk on changes nothing it was tuned on.
        scrambled = pnl.copy()
        scrambled[start:] = -scrambled[start:]
        again = run_walk_forward(observed, scrambled)
        same = next(f for f in again if f.train_until == start)
        assert same.chosen == fold.chosen
        assert same.chosen_net_impact == -fold.chosen_net_impact


def test_a_regime_that_flips_halfway_wins_in_sample_and_loses_out_of_sample():
    observed, pnl = flipping_regime()
    everything = Observations.of(observed, pnl, [True] * len(pnl), [False] * len(pnl))
    candidates = candidate_thresholds(
        everything.observed, current=100.0, integral=True, blocks_when="<"
    )
    in_sample = best_point(
        threshold_curve(everything, candidates, blocks_when="<", current=100.0),
        needed=5,
        decided=len(pnl),
        max_share=0.9,
    )
    assert in_sample is not None  # the whole history says: block below ~500 minutes

    folds = run_walk_forward(observed, pnl)

    # The first fold is judged inside the first regime and gains; the later folds are
    # judged after the flip, where the threshold tuned before it loses.
    assert folds[0].gain > 0
    assert folds[1].gain < 0 and folds[2].gain < 0
    assert sum(fold.gain for fold in folds) < 0


def test_a_flipping_book_gets_no_recommendation(configs):
    book = BookFactory(name="flipping")
    book_configure(book=book, strategies=[], guards=list(configs))
    frozen = (
        BookGuard.objects.get(book=book, name="cooldown"),
        BookGuard.objects.get(book=book, name="max open"),
    )
    observed, pnl = flipping_regime(n=120, flip=70)
    decide(book, frozen, [(int(m), 0, str(p)) for m, p in zip(observed, pnl, strict=True)])

    curve = curve_of(book, "cooldown")

    assert curve.best is not None and curve.best.net_impact > curve.current_point.net_impact
    assert curve.out_of_sample_gain < 0
    assert curve.recommended is None
    assert "did not beat the current one on later history" in curve.reason
    assert thresholds_recommend(book=book)[0].action == "none"
    assert not ThresholdRecommendation.objects.exists()


def test_blocking_most_signals_is_called_trading_less_not_recommended(configs):
    """A losing strategy where every signal loses a little: the longer the cooldown, the
    more it 'saves', up to blocking nearly everything."""
    book = BookFactory(name="losing")
    book_configure(book=book, strategies=[], guards=list(configs))
    frozen = (
        BookGuard.objects.get(book=book, name="cooldown"),
        BookGuard.objects.get(book=book, name="max open"),
    )
    rows = [((i * 37) % 1000, 0, "-5" if i % 4 else "3") for i in range(120)]
    decide(book, frozen, rows)

    curve = curve_of(book, "cooldown")

    assert curve.trading_less is not None
    assert curve.trading_less.blocked > 0.5 * curve.decided
    assert "this amounts to trading less" in curve.reason
    assert curve.recommended is None or curve.recommended.blocked <= 0.5 * curve.decided
    for point in curve.points:
        if curve.recommended is not None and point.threshold == curve.recommended.threshold:
            assert point.blocked <= 0.5 * curve.decided


def test_the_page_marks_the_current_threshold_and_the_share_blocked(steady_book, trader_client):
    twin = trader_client.get(
        reverse("analytics:api-page", args=["learning"]), {"book": steady_book.pk}
    ).json()["data"]
    cooldown = next(g for g in twin["guards"] if g["name"] == "cooldown")
    current = cooldown["current"]
    # 240 minutes blocks 30, 60, 180 and 200 of every 14: 32 of 112.
    assert (current["blocked"], current["share_blocked"]) == (32, 0.286)  # 0.2857
    assert all(point["share_blocked"] is not None for point in cooldown["points"])
    assert all("% blocked" in label for label in cooldown["chart"]["labels"])
    assert len(cooldown["folds"]) == 3
    assert Decimal(cooldown["out_of_sample_gain"]) > 0
    assert cooldown["recommendable"] and cooldown["q_value"] < 0.05
    assert twin["expectancy"]["trades"] == 112
