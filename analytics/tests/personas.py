"""Accounts of each role (``analytics.roles``), for the tests of who may do what."""

from typing import Any

from django.contrib.auth import get_user_model

from analytics.roles import permission_get, trader_add


def person(
    username: str, *, staff: bool = False, trader: bool = False, perms: tuple[str, ...] = ()
) -> Any:
    """A new account: staff or not, with the trader role or not, holding ``perms``
    (``"app_label.codename"``) of its own."""
    user = get_user_model().objects.create_user(username, password="not-used", is_staff=staff)
    if trader:
        trader_add(user=user)
    user.user_permissions.add(*(permission_get(name) for name in perms))
    return user
