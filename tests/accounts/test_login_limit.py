"""One login limiter for the portal, the admin and the API token: failures per username and
per client address, a success clearing the username's count."""

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import User
from django.test import Client

from accounts.roles import AGENTS
from accounts.services import staff_user_ensure
from helpdesk.exceptions import RateLimited
from helpdesk.ratelimit import LOGIN_THROTTLED, login_attempt_count, login_succeeded

ADMIN_LOGIN = "/admin/login/"
PORTAL_LOGIN = "/accounts/login/"
TOKEN = "/api/v1/auth/token/"


@pytest.fixture
def admin_user(db):
    return User.objects.create_superuser("root", "root@exabytes.example", "root-secret-pass")


def _admin_login(client, password, username="root", ip="10.1.1.1"):
    return client.post(
        ADMIN_LOGIN,
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
    )


def _portal_login(client, username, password, ip="10.1.1.1"):
    return client.post(PORTAL_LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def _token(username, password, ip="10.1.1.1"):
    return Client(REMOTE_ADDR=ip).post(
        TOKEN, {"username": username, "password": password}, content_type="application/json"
    )


def test_forty_wrong_admin_passwords_then_the_right_one_is_refused(client, admin_user):
    # given
    statuses = {_admin_login(client, f"guess-{n}").status_code for n in range(40)}

    # when
    response = _admin_login(client, "root-secret-pass")

    # then
    assert 429 in statuses
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert LOGIN_THROTTLED in response.content.decode()
    assert SESSION_KEY not in client.session


def test_admin_guessing_from_many_addresses_locks_the_username(client, admin_user, settings):
    for n in range(10):
        _admin_login(client, "wrong", ip=f"10.3.0.{n}")

    response = _admin_login(client, "root-secret-pass", ip="10.9.9.9")

    assert response.status_code == 429
    assert SESSION_KEY not in client.session


def test_sixty_agents_behind_one_address_all_log_in(db):
    # given: more successful logins from one office address than any failure limit
    for n in range(60):
        staff_user_ensure(username=f"agent{n}", password=f"agent{n}-demo-pass", role=AGENTS)

    # when / then
    for n in range(60):
        client = Client()
        response = _portal_login(client, f"agent{n}", f"agent{n}-demo-pass", ip="10.5.5.5")
        assert response.status_code == 302, n
        assert SESSION_KEY in client.session


def test_a_success_clears_the_usernames_failures(client, alice, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_failures_per_username": (3, 900)}
    for _ in range(2):
        _portal_login(client, "alice@example.test", "typo")
    assert _portal_login(client, "alice@example.test", "alice-demo-pass").status_code == 302
    client.logout()

    # two more typos after the success: still under the limit of three
    for _ in range(2):
        assert _portal_login(client, "alice@example.test", "typo").status_code == 200

    assert _portal_login(client, "alice@example.test", "alice-demo-pass").status_code == 302


def test_the_lockout_answer_is_the_same_for_a_username_that_does_not_exist(client, alice):
    for _ in range(10):
        _portal_login(client, "alice@example.test", "wrong", ip="10.7.0.1")
        _portal_login(client, "nobody@example.test", "wrong", ip="10.7.0.2")

    known = _portal_login(client, "alice@example.test", "alice-demo-pass", ip="10.7.1.1")
    unknown = _portal_login(client, "nobody@example.test", "whatever", ip="10.7.1.2")

    assert known.status_code == unknown.status_code == 429
    assert _page_without(known, "alice@example.test") == _page_without(
        unknown, "nobody@example.test"
    )


def _page_without(response, username):
    body = response.content.decode().replace(username, "USER")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body)


def test_admin_and_portal_and_token_share_one_count(client, admin_user, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_failures_per_username": (3, 900)}
    _admin_login(client, "wrong", ip="10.8.0.1")
    _portal_login(client, "root", "wrong", ip="10.8.0.2")
    assert _token("root", "wrong", ip="10.8.0.3").status_code == 401

    response = _token("root", "root-secret-pass", ip="10.8.0.4")

    assert response.status_code == 429
    assert response.json()["detail"] == LOGIN_THROTTLED


def test_a_rate_limit_is_read_from_the_environment(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from helpdesk.settings import rate_limit_from_env

    monkeypatch.setenv("RATE_LIMIT_LOGIN_FAILURES_PER_CLIENT", "7 / 60")
    assert rate_limit_from_env("login_failures_per_client", (50, 900)) == (7, 60)
    monkeypatch.setenv("RATE_LIMIT_LOGIN_FAILURES_PER_CLIENT", "seven")
    with pytest.raises(ImproperlyConfigured, match="RATE_LIMIT_LOGIN_FAILURES_PER_CLIENT"):
        rate_limit_from_env("login_failures_per_client", (50, 900))
    monkeypatch.delenv("RATE_LIMIT_LOGIN_FAILURES_PER_CLIENT")
    assert rate_limit_from_env("login_failures_per_client", (50, 900)) == (50, 900)


def test_guesses_in_flight_at_once_count_before_any_password_is_checked(db, settings):
    # Each attempt is counted before its password is tried: a burst sent in parallel cannot
    # all pass the limiter while none of them has finished.
    limit, _window = settings.RATE_LIMITS["login_failures_per_username"]
    for n in range(limit):
        login_attempt_count(client=f"10.7.0.{n}", username="root")

    with pytest.raises(RateLimited):
        login_attempt_count(client="10.7.1.1", username="root")


def test_a_success_takes_its_attempt_back_from_the_client_count(db, settings):
    limit, _window = settings.RATE_LIMITS["login_failures_per_client"]
    for n in range(limit * 2):
        login_attempt_count(client="10.8.0.1", username=f"agent{n}")
        login_succeeded(client="10.8.0.1", username=f"agent{n}")

    login_attempt_count(client="10.8.0.1", username="someone")  # not refused
