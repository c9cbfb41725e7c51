"""The guard form in the admin names each kind's stop duration and how it lets go."""

import html

import pytest
from django.urls import reverse

from signals.domain.guards import GUARDS
from signals.models import GuardConfig
from signals.services import guard_config_save

pytestmark = pytest.mark.django_db


def test_the_guard_form_gives_every_release_rule_and_the_stop_default(admin_client):
    page = html.unescape(
        admin_client.get(reverse("admin:signals_guardconfig_add")).content.decode()
    )
    assert "'stop_minutes': 1440" in page
    for kind, cls in GUARDS.items():
        assert f"{kind}: {cls.release}" in page


def test_a_stop_duration_that_is_not_positive_is_refused_in_the_admin(admin_client):
    guard = guard_config_save(
        config=GuardConfig(name="dd", kind="max_drawdown", params={"max_drawdown": 200.0})
    )
    url = reverse("admin:signals_guardconfig_change", args=[guard.pk])
    form = {"name": "dd", "kind": "max_drawdown", "enabled": "on"}
    response = admin_client.post(url, form | {"params": '{"stop_minutes": 0}'})
    assert response.status_code == 200
    assert "max_drawdown needs stop_minutes &gt; 0" in response.content.decode()
    assert admin_client.post(url, form | {"params": '{"stop_minutes": 720}'}).status_code == 302
    guard.refresh_from_db()
    assert guard.params == {"stop_minutes": 720}
