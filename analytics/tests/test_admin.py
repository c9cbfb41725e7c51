"""The admin pages of the signal and shadow sides, as a superuser sees them."""

from datetime import UTC, datetime

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
    GenerationCursor,
    GuardConfig,
    GuardDecision,
    PaperTrade,
    Signal,
    SignalState,
    SignalTransition,
    StrategyConfig,
)

pytestmark = pytest.mark.django_db

SERVICE_WRITTEN = [
    Signal,
    GuardDecision,
    SignalTransition,
    PaperTrade,
    ShadowTrade,
    GenerationCursor,
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
    cursor = GenerationCursor.objects.create(
        book=book,
        strategy_config=blocked.strategy_config,
        last_candle_time=datetime(2024, 1, 1, tzinfo=UTC),
    )
    guard = GuardConfig.objects.create(kind="max_open_positions", params={"max_open": 2})
    return {
        Book: book,
        StrategyConfig: blocked.strategy_config,
        GuardConfig: guard,
        GenerationCursor: cursor,
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
        {"kind": "cooldown_after_stop", "params": '{"minutes": -5}', "enabled": "on"},
    )

    assert response.status_code == 200
    assert "minutes &gt;= 0" in response.content.decode()
    assert not GuardConfig.objects.exists()


def test_guard_config_can_be_added(admin_client):
    response = admin_client.post(
        admin_url(GuardConfig, "add"),
        {"kind": "cooldown_after_stop", "params": '{"minutes": 60}', "enabled": "on"},
    )

    assert response.status_code == 302
    assert GuardConfig.objects.get().params == {"minutes": 60}


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


def test_the_live_book_cannot_be_deleted(admin_client):
    live = BookFactory(name="live", kind=Book.Kind.LIVE)

    assert admin_client.get(admin_url(Book, "delete", live.pk)).status_code == 403
