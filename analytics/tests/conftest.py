"""Personas for the page tests: an anonymous visitor and a logged-in trader."""

import pytest


@pytest.fixture
def trader(django_user_model):
    return django_user_model.objects.create_user(username="trader", password="not-used")


@pytest.fixture
def trader_client(client, trader):
    client.force_login(trader)
    return client
