"""One login limiter for the portal, the admin and the API token: failures per username and
per client address, a success clearing the username's count there."""

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

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


@pytest.mark.usefixtures("rate_window_start")
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


@pytest.mark.usefixtures("rate_window_start")
def test_admin_guessing_from_many_addresses_locks_the_username(client, admin_user, settings):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "login_failures_per_username_all_clients": (10, 900),
    }
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


def _page_without(response, username):
    body = response.content.decode().replace(username, "USER")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body)


@pytest.mark.usefixtures("rate_window_start")
def test_admin_and_portal_and_token_share_one_count(client, admin_user, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_failures_per_username": (3, 900)}
    _admin_login(client, "wrong", ip="10.8.0.1")
    _portal_login(client, "root", "wrong", ip="10.8.0.1")
    assert _token("root", "wrong", ip="10.8.0.1").status_code == 401

    response = _token("root", "root-secret-pass", ip="10.8.0.1")

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


@pytest.mark.usefixtures("rate_window_start")
def test_guesses_in_flight_at_once_count_before_any_password_is_checked(db, settings):
    # Each attempt is counted before its password is tried: a burst sent in parallel cannot
    # all pass the limiter while none of them has finished.
    per_pair, _window = settings.RATE_LIMITS["login_failures_per_username"]
    for _ in range(per_pair):
        login_attempt_count(client="10.7.0.1", username="root")
    ceiling, _window = settings.RATE_LIMITS["login_failures_per_username_all_clients"]
    for n in range(ceiling - per_pair):
        login_attempt_count(client=f"10.7.1.{n}", username="root")

    with pytest.raises(RateLimited):
        login_attempt_count(client="10.7.0.1", username="root")
    with pytest.raises(RateLimited):
        login_attempt_count(client="10.7.2.1", username="root")


def test_a_success_takes_its_attempt_back_from_the_client_count(db, settings):
    limit, _window = settings.RATE_LIMITS["login_failures_per_client"]
    for n in range(limit * 2):
        login_attempt_count(client="10.8.0.1", username=f"agent{n}")
        login_succeeded(client="10.8.0.1", username=f"agent{n}")

    login_attempt_count(client="10.8.0.1", username="someone")  # not refused


@pytest.mark.usefixtures("rate_window_start")
def test_the_owners_success_takes_back_only_its_own_attempt_from_the_ceiling(db, settings):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "login_failures_per_username_all_clients": (3, 900),
    }
    login_attempt_count(client="10.9.0.1", username="root")
    login_attempt_count(client="10.9.0.2", username="root")
    login_attempt_count(client="10.9.0.3", username="root")  # the owner's attempt...
    login_succeeded(client="10.9.0.3", username="root")  # ...had the right password

    login_attempt_count(client="10.9.0.4", username="root")  # the third failure
    with pytest.raises(RateLimited):  # guessers got no new allowance from the owner's login
        login_attempt_count(client="10.9.0.5", username="root")


# --- someone else's failures never lock the owner out of their own client ---

ATTACKER = "203.0.113.66"
OWNER = "198.51.100.20"


def _log_in_by(way, client, username, password, ip):
    if way == "portal":
        return _portal_login(client, username, password, ip=ip)
    if way == "admin":
        return _admin_login(client, password, username=username, ip=ip)
    return _token(username, password, ip=ip)


@pytest.mark.parametrize("way", ["portal", "admin", "token"])
@pytest.mark.usefixtures("rate_window_start")
def test_one_attackers_failures_do_not_lock_the_owner_out_of_their_own_client(
    admin_user, settings, way
):
    # given: one client sends more wrong passwords for the login than any limit on it
    ceiling, _window = settings.RATE_LIMITS["login_failures_per_username_all_clients"]
    attacker = Client()
    statuses = [
        _log_in_by(way, attacker, "root", f"guess-{n}", ATTACKER).status_code
        for n in range(ceiling + 20)
    ]

    # when the owner logs in from their own client
    owner = Client()
    response = _log_in_by(way, owner, "root", "root-secret-pass", OWNER)

    # then the attacker is refused and the owner is let in
    assert statuses[-1] == 429
    assert response.status_code == (200 if way == "token" else 302)
    if way != "token":
        assert SESSION_KEY in owner.session


@pytest.mark.usefixtures("rate_window_start")
def test_the_guessing_client_is_refused_that_username_even_with_the_right_password(
    client, alice, settings
):
    per_pair, _window = settings.RATE_LIMITS["login_failures_per_username"]
    for _ in range(per_pair):
        _portal_login(client, "alice@example.test", "wrong", ip=ATTACKER)

    guessed = _portal_login(client, "alice@example.test", "alice-demo-pass", ip=ATTACKER)
    another_login = _portal_login(client, "bob@example.test", "wrong", ip=ATTACKER)

    assert guessed.status_code == 429
    assert SESSION_KEY not in client.session
    assert another_login.status_code == 200  # the client is not locked out of every login


@pytest.mark.usefixtures("rate_window_start")
def test_guessing_from_many_clients_locks_the_username_at_its_ceiling(client, alice, settings):
    # given: each client stays under the per-(username, client) limit
    ceiling, _window = settings.RATE_LIMITS["login_failures_per_username_all_clients"]
    per_pair, _window = settings.RATE_LIMITS["login_failures_per_username"]
    for n in range(ceiling):
        ip = f"10.20.{n // (per_pair - 1)}.1"
        assert _portal_login(client, "alice@example.test", "wrong", ip=ip).status_code == 200

    # when the owner logs in from a client of their own
    response = _portal_login(client, "alice@example.test", "alice-demo-pass", ip=OWNER)

    # then distributed guessing has locked the login for a while
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert LOGIN_THROTTLED in response.content.decode()
    assert SESSION_KEY not in client.session


def _attempt(client, username, password, ip):
    """The answer to one portal login, its page with the username taken out, and its queries."""
    with CaptureQueriesContext(connection) as queries:
        response = _portal_login(client, username, password, ip=ip)
    return response.status_code, _page_without(response, username), len(queries)


@pytest.mark.parametrize(
    "clients",
    [
        pytest.param(["10.30.0.1"] * 3, id="locked-for-the-client"),
        pytest.param(["10.30.0.1", "10.30.0.2", "10.30.0.3"] * 2, id="locked-at-the-ceiling"),
    ],
)
@pytest.mark.usefixtures("rate_window_start")
def test_known_and_unknown_usernames_get_the_same_answers_side_by_side(
    client, alice, settings, clients
):
    # given: three failures per (username, client), six per username from any client
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "login_failures_per_username": (3, 900),
        "login_failures_per_username_all_clients": (6, 900),
    }
    known, unknown = [], []

    # when the same attempts are made for a login that exists and one that does not
    for ip in clients:
        known.append(_attempt(client, "alice@example.test", "wrong", ip))
        unknown.append(_attempt(client, "nobody@example.test", "wrong", ip))
    known.append(_attempt(client, "alice@example.test", "alice-demo-pass", clients[-1]))
    unknown.append(_attempt(client, "nobody@example.test", "alice-demo-pass", clients[-1]))

    # then every answer is the same, and the refusal reads no login at all
    assert known == unknown
    assert [status for status, _page, _queries in known] == [200] * len(clients) + [429]
    assert known[-1][2] == 0
