"""``manage.py trader_role``: the "trader" group and the accounts that hold it."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client

from analytics.roles import READ_PAGES, READ_REPORTS, TRADER_GROUP, permission_get
from analytics.tests.personas import person

pytestmark = pytest.mark.django_db

PASSWORD = "right-horse-battery-staple"


def run(*args: str) -> str:
    out = StringIO()
    call_command("trader_role", *args, stdout=out)
    return out.getvalue()


def group_permissions() -> set[str]:
    group = Group.objects.get(name=TRADER_GROUP)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}


def test_it_creates_the_group_with_the_read_permissions_only():
    out = run()
    assert group_permissions() == {READ_PAGES, READ_REPORTS}
    assert f"group 'trader': {READ_REPORTS}, {READ_PAGES}" in out


def test_it_sets_the_group_back_to_its_permissions():
    run()
    group = Group.objects.get(name=TRADER_GROUP)
    group.permissions.add(permission_get("signals.change_guardconfig"))
    group.permissions.remove(permission_get(READ_REPORTS))
    run()
    assert group_permissions() == {READ_PAGES, READ_REPORTS}


def test_it_gives_existing_accounts_the_role():
    bob = person("bob", staff=True)
    assert not bob.has_perm(READ_PAGES)
    assert "'bob' has the trader role" in run("bob")
    bob = get_user_model().objects.get(pk=bob.pk)  # permissions are cached per object
    assert bob.has_perm(READ_PAGES) and bob.is_staff


def test_an_unknown_account_is_refused_without_create():
    with pytest.raises(CommandError, match="no account 'carol'"):
        run("carol")
    assert not get_user_model().objects.filter(username="carol").exists()


def test_it_creates_a_trader_who_signs_in_and_reads(monkeypatch):
    monkeypatch.setenv("DJANGO_TRADER_PASSWORD", PASSWORD)
    out = run("carol", "--create", "--noinput")
    assert "created 'carol' (not staff)" in out
    carol = get_user_model().objects.get(username="carol")
    assert not carol.is_staff and not carol.is_superuser
    client = Client()
    response = client.post("/login/", {"username": "carol", "password": PASSWORD, "next": "/"})
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.post("/guards/ablate/", {"book": 1}).status_code == 403


def test_a_weak_or_missing_password_creates_nobody(monkeypatch):
    monkeypatch.setenv("DJANGO_TRADER_PASSWORD", "123")
    with pytest.raises(CommandError, match="too short"):
        run("carol", "--create", "--noinput")
    monkeypatch.delenv("DJANGO_TRADER_PASSWORD")
    with pytest.raises(CommandError, match="DJANGO_TRADER_PASSWORD"):
        run("carol", "--create", "--noinput")
    assert not get_user_model().objects.filter(username="carol").exists()
