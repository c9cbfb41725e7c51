"""The admin pages of the signal and shadow sides, as a superuser sees them."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import reverse

from analytics.tests.factories import (
    BookFactory,
    GuardDecisionFactory,
    PaperTradeFactory,
    ShadowTradeFactory,
    SignalFactory,
    SignalTransitionFactory,
    StrategyConfigFactory,
)
from shadow.models import ShadowTrade
from signals.models import (
    Book,
    BookGuard,
    BookState,
    BookStrategy,
    EquityPoint,
    GuardConfig,
    GuardDecision,
    PaperTrade,
    Signal,
    SignalState,
    SignalTransition,
    StrategyConfig,
)
from signals.services import book_configure, guard_config_save

pytestmark = pytest.mark.django_db

SERVICE_WRITTEN = [
    Signal,
    GuardDecision,
    SignalTransition,
    PaperTrade,
    ShadowTrade,
    BookState,
    EquityPoint,
]


@pytest.fixture
def rows():
    """One row of every model the signal and shadow admins show."""
    book = BookFactory(name="admin replay")
    blocked = SignalFactory(book=book, state=SignalState.BLOCKED)
    GuardDecisionFactory(signal=blocked, verdict=GuardDecision.Verdict.BLOCK)
    SignalTransitionFactory(signal=blocked)
    shadow = ShadowTradeFactory(signal=blocked)
    paper = PaperTradeFactory(signal=SignalFactory(book=book, state=SignalState.CLOSED))
    guard = GuardConfig.objects.create(
        name="max 2", kind="max_open_positions", params={"max_open": 2}
    )
    book_configure(book=book, strategies=[blocked.strategy_config], guards=[guard])
    state = BookState.objects.create(book=book, state={"last_time": {}}, revision=3)
    equity = EquityPoint.objects.create(
        book=book, time=datetime(2024, 1, 1, tzinfo=UTC), equity=Decimal("12.5")
    )
    return {
        Book: book,
        StrategyConfig: blocked.strategy_config,
        GuardConfig: guard,
        BookState: state,
        EquityPoint: equity,
        Signal: blocked,
        GuardDecision: blocked.decisions.get(),
        SignalTransition: blocked.transitions.get(),
        PaperTrade: paper,
        ShadowTrade: shadow,
    }


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_registered_changelist_opens(admin_client, rows):
    for model in admin.site._registry:
        response = admin_client.get(admin_url(model, "changelist"))
        assert response.status_code == 200, model


def test_every_change_page_opens(admin_client, rows):
    for model, obj in rows.items():
        assert model in admin.site._registry, model
        response = admin_client.get(admin_url(model, "change", obj.pk))
        assert response.status_code == 200, model


def test_signal_page_shows_its_decisions_transitions_and_shadow_link(admin_client, rows):
    signal = rows[Signal]

    html = admin_client.get(admin_url(Signal, "change", signal.pk)).content.decode()

    assert "max_open_positions" in html
    assert f"{admin_url(ShadowTrade, 'changelist')}?signal__id__exact={signal.pk}" in html


def test_shadow_trade_links_to_its_signal(admin_client, rows):
    shadow = rows[ShadowTrade]

    html = admin_client.get(admin_url(ShadowTrade, "changelist")).content.decode()

    assert admin_url(Signal, "change", shadow.signal_id) in html
    filtered = admin_client.get(
        admin_url(ShadowTrade, "changelist"), {"signal__id__exact": shadow.signal_id}
    )
    assert filtered.status_code == 200


def test_signal_state_cannot_be_edited(admin_client, rows):
    signal = rows[Signal]
    url = admin_url(Signal, "change", signal.pk)

    form = admin_client.get(url).context["adminform"].form
    response = admin_client.post(url, {"state": SignalState.CLOSED})

    assert "state" not in form.fields
    assert response.status_code == 403
    signal.refresh_from_db()
    assert signal.state == SignalState.BLOCKED


@pytest.mark.parametrize("model", SERVICE_WRITTEN)
def test_service_written_rows_cannot_be_added_or_deleted(admin_client, rows, model):
    obj = rows[model]

    assert admin_client.get(admin_url(model, "add")).status_code == 403
    assert admin_client.get(admin_url(model, "delete", obj.pk)).status_code == 403
    assert admin_client.post(admin_url(model, "change", obj.pk), {}).status_code == 403


def guard_form(**overrides):
    return {
        "name": "cool 60",
        "kind": "cooldown_after_stop",
        "params": "{}",
        "enabled": "on",
    } | overrides


def strategy_form(**overrides):
    return {
        "name": "ema fast",
        "kind": "ema_crossover",
        "params": "{}",
        "exchange": "kraken",
        "symbol": "BTC/USD",
        "timeframe": "1h",
        "enabled": "on",
    } | overrides


def test_strategy_config_can_be_added(admin_client):
    response = admin_client.post(
        admin_url(StrategyConfig, "add"), strategy_form(params='{"fast": 5, "slow": 20}')
    )

    assert response.status_code == 302
    assert StrategyConfig.objects.get(name="ema fast").params == {"fast": 5, "slow": 20}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ('{"fast": "x"}', "parameter fast must be int"),
        ('{"bogus": 1}', "unknown parameter(s) bogus"),
        ('{"fast": 30, "slow": 10}', "1 &lt; fast &lt; slow"),
        ("[1, 2]", "parameters must be a JSON object"),
    ],
)
def test_strategy_config_with_bad_params_shows_a_form_error(admin_client, params, message):
    response = admin_client.post(admin_url(StrategyConfig, "add"), strategy_form(params=params))

    assert response.status_code == 200
    assert "params" in response.context["adminform"].form.errors
    assert message in response.content.decode()
    assert not StrategyConfig.objects.exists()


def test_strategy_config_with_broken_json_shows_one_error(admin_client):
    response = admin_client.post(admin_url(StrategyConfig, "add"), strategy_form(params="{oops"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["params"] == ["Enter a valid JSON."]


def test_strategy_config_with_unknown_kind_shows_a_form_error(admin_client):
    response = admin_client.post(admin_url(StrategyConfig, "add"), strategy_form(kind="martingale"))

    assert response.status_code == 200
    assert "kind" in response.context["adminform"].form.errors


def test_existing_strategy_config_edit_with_bad_params_shows_a_form_error(admin_client):
    strategy = StrategyConfigFactory(name="ema edit")

    response = admin_client.post(
        admin_url(StrategyConfig, "change", strategy.pk),
        strategy_form(name="ema edit", params='{"stop_atr": -1.0}'),
    )

    assert response.status_code == 200
    assert "params" in response.context["adminform"].form.errors
    strategy.refresh_from_db()
    assert strategy.params == {}


def test_guard_config_with_bad_params_shows_a_form_error(admin_client):
    response = admin_client.post(
        admin_url(GuardConfig, "add"),
        guard_form(params='{"minutes": -5}'),
    )

    assert response.status_code == 200
    assert "minutes &gt;= 0" in response.content.decode()
    assert not GuardConfig.objects.exists()


def test_guard_config_can_be_added(admin_client):
    response = admin_client.post(
        admin_url(GuardConfig, "add"),
        guard_form(params='{"minutes": 60}'),
    )

    assert response.status_code == 302
    guard = GuardConfig.objects.get()
    assert (guard.name, guard.kind, guard.params, guard.version) == (
        "cool 60",
        "cooldown_after_stop",
        {"minutes": 60},
        1,
    )


def test_a_guard_config_needs_a_name_of_its_own(admin_client):
    GuardConfig.objects.create(name="cool 60", kind="cooldown_after_stop")

    missing = admin_client.post(admin_url(GuardConfig, "add"), guard_form(name=""))
    taken = admin_client.post(admin_url(GuardConfig, "add"), guard_form())

    assert "name" in missing.context["adminform"].form.errors
    assert "name" in taken.context["adminform"].form.errors
    assert GuardConfig.objects.count() == 1


def test_two_guard_configs_of_one_kind_can_be_added(admin_client):
    for name, limit in (("max 1", 1), ("max 3", 3)):
        response = admin_client.post(
            admin_url(GuardConfig, "add"),
            guard_form(name=name, kind="max_open_positions", params=f'{{"max_open": {limit}}}'),
        )
        assert response.status_code == 302
    assert sorted(GuardConfig.objects.values_list("name", "params")) == [
        ("max 1", {"max_open": 1}),
        ("max 3", {"max_open": 3}),
    ]


def test_an_admin_edit_of_the_parameters_raises_the_version(admin_client):
    guard = GuardConfig.objects.create(name="cool 60", kind="cooldown_after_stop")
    strategy = StrategyConfigFactory(name="ema edit")
    url = admin_url(GuardConfig, "change", guard.pk)

    admin_client.post(url, guard_form(params='{"minutes": 30}'))
    admin_client.post(url, guard_form(params='{"minutes": 30}', enabled=""))
    admin_client.post(
        admin_url(StrategyConfig, "change", strategy.pk),
        strategy_form(name="ema edit", params='{"fast": 5}'),
    )

    guard.refresh_from_db()
    strategy.refresh_from_db()
    assert (guard.params, guard.enabled, guard.version) == ({"minutes": 30}, False, 2)
    assert (strategy.params, strategy.version) == ({"fast": 5}, 2)


def test_the_book_page_shows_the_configuration_it_froze(admin_client, rows):
    book = rows[Book]
    guard = rows[GuardConfig]
    guard.params = {"max_open": 7}
    guard_config_save(config=guard)

    html = admin_client.get(admin_url(Book, "change", book.pk)).content.decode()

    assert BookStrategy.objects.filter(book=book).exists()
    assert BookGuard.objects.get(book=book).params == {"max_open": 2}
    assert "max 2" in html
    assert "&quot;max_open&quot;: 2" in html
    assert "&quot;max_open&quot;: 7" not in html


def test_a_replay_book_is_deleted_with_everything_it_holds(admin_client, rows):
    book = rows[Book]
    url = admin_url(Book, "delete", book.pk)

    confirm = admin_client.get(url)
    response = admin_client.post(url, {"post": "yes"})

    assert confirm.status_code == 200
    assert not confirm.context["perms_lacking"]
    assert response.status_code == 302
    assert not Book.objects.exists()
    assert not Signal.objects.exists()
    assert not SignalTransition.objects.exists()
    assert not ShadowTrade.objects.exists()
    for model in (BookStrategy, BookGuard, BookState, EquityPoint):
        assert not model.objects.exists(), model
    assert StrategyConfig.objects.exists() and GuardConfig.objects.exists()


def test_the_live_book_cannot_be_deleted(admin_client):
    live = BookFactory(name="live", kind=Book.Kind.LIVE)

    assert admin_client.get(admin_url(Book, "delete", live.pk)).status_code == 403
