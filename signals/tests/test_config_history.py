"""Configuration history: every admin change of a strategy or guard is kept with who
made it, when, what changed and the version it left."""

import pytest
from django.urls import reverse

from signals.models import GuardConfig, StrategyConfig
from signals.services import guard_config_save
from signals.tests.factories import StrategyConfigFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def guard():
    return guard_config_save(
        config=GuardConfig(name="cooldown", kind="cooldown_after_stop", params={"minutes": 240})
    )


def change_url(config):
    return reverse(f"admin:signals_{config._meta.model_name}_change", args=[config.pk])


def guard_form(guard, **overrides):
    return {
        "name": guard.name,
        "kind": guard.kind,
        "params": '{"minutes": 240}',
        "enabled": "on",
    } | (overrides)


def versions(config):
    """(version, user name, history type) of every history row, oldest first."""
    rows = config.history.order_by("history_date", "history_id").select_related("history_user")
    return [
        (row.version, row.history_user.username if row.history_user else None, row.history_type)
        for row in rows
    ]


def test_editing_params_in_the_admin_keeps_a_new_version_with_user_and_diff(
    admin_client, admin_user, guard
):
    response = admin_client.post(change_url(guard), guard_form(guard, params='{"minutes": 60}'))

    assert response.status_code == 302
    assert versions(guard) == [(1, None, "+"), (2, admin_user.username, "~")]
    new, old = guard.history.all()[:2]
    delta = new.diff_against(old)
    assert delta.changed_fields == ["params"]
    assert delta.changes[0].old == {"minutes": 240}
    assert delta.changes[0].new == {"minutes": 60}


def test_the_history_page_shows_who_when_and_what_per_version(admin_client, admin_user, guard):
    admin_client.post(change_url(guard), guard_form(guard, params='{"minutes": 60}'))

    response = admin_client.get(reverse("admin:signals_guardconfig_history", args=[guard.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert admin_user.username in html
    assert "<strong>params:</strong>" in html.lower()
    assert "minutes" in html
    records = list(response.context["page_obj"])
    assert [record.version for record in records] == [2, 1]


def test_a_save_that_keeps_the_params_keeps_the_version(admin_client, admin_user, guard):
    admin_client.post(change_url(guard), guard_form(guard, enabled=""))

    guard.refresh_from_db()
    assert not guard.enabled
    assert guard.version == 1
    assert versions(guard) == [(1, None, "+"), (1, admin_user.username, "~")]
    new, old = guard.history.all()[:2]
    assert new.diff_against(old).changed_fields == ["enabled"]


def test_editing_a_strategy_in_the_admin_keeps_its_history(admin_client, admin_user):
    strategy = StrategyConfigFactory(name="ema fast")
    form = {
        "name": strategy.name,
        "kind": strategy.kind,
        "params": '{"fast": 5, "slow": 20}',
        "exchange": strategy.exchange,
        "symbol": strategy.symbol,
        "timeframe": strategy.timeframe,
        "enabled": "on",
    }

    assert admin_client.post(change_url(strategy), form).status_code == 302

    strategy.refresh_from_db()
    assert strategy.version == 2
    assert versions(strategy) == [(1, None, "+"), (2, admin_user.username, "~")]
    new, old = strategy.history.all()[:2]
    assert new.diff_against(old).changed_fields == ["params"]
    response = admin_client.get(reverse("admin:signals_strategyconfig_history", args=[strategy.pk]))
    assert response.status_code == 200
    assert "<strong>params:</strong>" in response.content.decode().lower()


def test_reverting_to_an_old_version_makes_a_new_version(admin_client, admin_user, guard):
    first = guard.history.get()
    admin_client.post(change_url(guard), guard_form(guard, params='{"minutes": 60}'))
    revert_url = reverse(
        "admin:signals_guardconfig_simple_history", args=[guard.pk, first.history_id]
    )

    assert admin_client.get(revert_url).status_code == 200
    assert admin_client.post(revert_url, guard_form(guard)).status_code == 302

    guard.refresh_from_db()
    assert guard.params == {"minutes": 240}
    assert guard.version == 3
    assert [row[0] for row in versions(guard)] == [1, 2, 3]


def test_an_old_form_never_takes_the_version_back(admin_client, guard):
    """A revert form of v1 carries version 1; saved with the current params it must leave
    the version where it is."""
    first = guard.history.get()
    admin_client.post(change_url(guard), guard_form(guard, params='{"minutes": 60}'))
    revert_url = reverse(
        "admin:signals_guardconfig_simple_history", args=[guard.pk, first.history_id]
    )

    admin_client.post(revert_url, guard_form(guard, params='{"minutes": 60}'))

    guard.refresh_from_db()
    assert guard.version == 2


def test_history_rows_of_a_deleted_configuration_stay(admin_client, guard):
    pk = guard.pk
    response = admin_client.post(
        reverse("admin:signals_guardconfig_delete", args=[pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not GuardConfig.objects.filter(pk=pk).exists()
    kinds = list(
        GuardConfig.history.filter(id=pk)
        .order_by("history_id")
        .values_list("history_type", "version")
    )
    assert kinds == [("+", 1), ("-", 1)]


def test_a_configuration_made_in_code_has_a_first_history_row():
    strategy = StrategyConfig.objects.create(
        name="ema", kind="ema_crossover", exchange="testex", symbol="BTC/USD", timeframe="1h"
    )

    assert versions(strategy) == [(1, None, "+")]
