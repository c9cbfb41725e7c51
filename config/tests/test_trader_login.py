"""The trader's view's own login page (/login/): a non-staff trader signs in there (the
admin's login refuses anyone not staff), django-axes' lockout applies to it as to the
admin's, and /logout/ comes back to it."""

import pytest
from django.conf import settings as django_settings

from analytics.tests.personas import person

pytestmark = pytest.mark.django_db

LOGIN = "/login/"
PASSWORD = "right-horse-battery-staple"
LOCKED = {403, 429}


@pytest.fixture
def trader():
    user = person("alice", trader=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def login(client, password, url=LOGIN, next_url="/guards/", **headers):
    return client.post(
        url, {"username": "alice", "password": password, "next": next_url}, **headers
    )


def test_the_login_page_is_a_page_of_the_site(client):
    response = client.get(LOGIN, {"next": "/guards/"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/static/css/app.css"' in html or "app.css" in html
    assert 'id="id_username"' in html and 'id="id_password"' in html
    assert 'name="next" value="/guards/"' in html
    # Nothing of the pages before signing in: no navigation, no admin link.
    assert 'href="/guards/"' not in html
    assert "/admin/" not in html
    assert "Content-Security-Policy" in response.headers


def test_a_trader_who_is_not_staff_signs_in_and_reads(client, trader):
    assert not trader.is_staff
    response = login(client, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/guards/"
    page = client.get("/guards/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "alice" in html and 'action="/logout/"' in html
    assert 'href="/admin/"' not in html  # the admin link is for staff


def test_the_admin_login_still_refuses_a_trader(client, trader):
    response = client.post(
        "/admin/login/", {"username": "alice", "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 200  # the form again, with its error
    assert "_auth_user_id" not in client.session


def test_a_visitor_is_sent_to_the_login_and_back(client, trader):
    first = client.get("/performance/")
    assert first.status_code == 302
    assert first["Location"] == "/login/?next=/performance/"
    response = login(client, PASSWORD, next_url="/performance/")
    assert response["Location"] == "/performance/"


def test_a_next_on_another_site_is_ignored(client, trader):
    response = login(client, PASSWORD, next_url="https://evil.example/")
    assert response.status_code == 302
    assert response["Location"] == django_settings.LOGIN_REDIRECT_URL


def test_a_wrong_password_shows_the_form_again(client, trader):
    response = login(client, "wrong")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_five_failures_lock_the_trader_out_even_with_the_right_password(client, trader):
    assert django_settings.AXES_FAILURE_LIMIT == 5
    for _ in range(4):
        assert login(client, "wrong").status_code == 200
    assert login(client, "wrong").status_code in LOCKED
    assert login(client, PASSWORD).status_code in LOCKED
    assert "_auth_user_id" not in client.session
    # One count per username and client IP, whichever login page was used.
    staff = person("bob", staff=True)
    staff.set_password(PASSWORD)
    staff.save()
    for _ in range(3):
        response = client.post("/admin/login/", {"username": "bob", "password": "wrong"})
        assert response.status_code == 200
    assert client.post(LOGIN, {"username": "bob", "password": "wrong"}).status_code == 200
    assert client.post(LOGIN, {"username": "bob", "password": "wrong"}).status_code in LOCKED
    admin = client.post("/admin/login/", {"username": "bob", "password": PASSWORD})
    assert admin.status_code in LOCKED


def test_another_client_ip_is_not_locked_out(client, trader):
    for _ in range(5):
        login(client, "wrong")
    assert login(client, PASSWORD).status_code in LOCKED
    assert login(client, PASSWORD, REMOTE_ADDR="192.0.2.10")["Location"] == "/guards/"


def test_logging_out_comes_back_to_the_login(client, trader):
    login(client, PASSWORD)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert "_auth_user_id" not in client.session
    assert client.get("/guards/")["Location"] == "/login/?next=/guards/"


def test_a_signed_in_user_visiting_the_login_goes_on(client, trader):
    login(client, PASSWORD)
    response = client.get(LOGIN, {"next": "/trading/"})
    assert response.status_code == 302
    assert response["Location"] == "/trading/"
