"""stale_data is live only: in a replay it never blocks, and its page and the admin say so."""

import pytest
from django.urls import reverse

from analytics.tests.factories import replay_testex
from signals.domain.guards.stale_data import REPLAY_REASON
from signals.models import Book, GuardConfig, GuardDecision
from signals.services import guard_config_save
from signals.tests.candles import store_walk

pytestmark = pytest.mark.django_db


@pytest.fixture
def replayed():
    store_walk(300, seed=11)
    # A limit of 0: any age at all would block. A replay has none to see.
    for name, kind, params in (
        ("stale", "stale_data", {"max_timeframes": 0.0}),
        ("cooldown", "cooldown_after_stop", {}),
    ):
        guard_config_save(config=GuardConfig(name=name, kind=kind, params=params))
    replay_testex()
    return Book.objects.get(kind=Book.Kind.REPLAY)


def test_in_a_replay_stale_data_passes_every_signal_and_says_why(replayed):
    decisions = GuardDecision.objects.filter(signal__book=replayed, guard="stale")
    assert decisions.count() >= 5
    assert set(decisions.values_list("verdict", "observed_value", "reason")) == {
        (GuardDecision.Verdict.PASS, None, REPLAY_REASON)
    }


def test_the_guards_page_and_its_twin_mark_it_live_only(trader_client, replayed):
    page = trader_client.get(reverse("analytics:guards"), {"book": replayed.pk})
    guards = {g["name"]: g for g in page.context["data"]["guards"]}
    assert (guards["stale"]["live_only"], guards["cooldown"]["live_only"]) == (True, False)
    html = page.content.decode()
    assert html.count("live only: never blocks in a replay") == 1
    twin = trader_client.get(
        reverse("analytics:api-page", args=["guards"]), {"book": replayed.pk}
    ).json()
    assert {g["name"]: g["live_only"] for g in twin["data"]["guards"]} == {
        "stale": True,
        "cooldown": False,
    }


def test_the_admin_marks_it_live_only(admin_client, replayed):
    listing = admin_client.get(reverse("admin:signals_guardconfig_changelist")).content.decode()
    assert "Live only" in listing
    row = {
        name: listing.split(f">{name}</a>")[1].split("</tr>")[0] for name in ("stale", "cooldown")
    }
    assert 'alt="True"' in row["stale"] and 'alt="False"' in row["cooldown"]
    form = admin_client.get(reverse("admin:signals_guardconfig_add")).content.decode()
    assert "Live only (it never blocks in a replay, where a candle is known at its close): " in (
        form
    )
