"""Device cookies: guessing spread over many addresses fills a login's limit from every client,
but the owner still signs in from a browser they signed in from before."""

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import User
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.login_devices import login_device_cookie_set
from helpdesk.exceptions import RateLimited
from helpdesk.ratelimit import LOGIN_THROTTLED, login_attempt_count, login_succeeded
from tests.accounts.conftest import ROOT_PASSWORD as PASSWORD

ADMIN_LOGIN = "/admin/login/"
PORTAL_LOGIN = "/accounts/login/"
TOKEN = "/api/v1/auth/token/"
COOKIE = "login_device"
OWNER = "198.51.100.20"
WAYS = ["portal", "admin", "token"]


def _log_in(way, client, password, username="root", ip=OWNER):
    if way == "portal":
        data = {"username": username, "password": password}
        return client.post(PORTAL_LOGIN, data, REMOTE_ADDR=ip)
    if way == "admin":
        data = {"username": username, "password": password, "next": "/admin/"}
        return client.post(ADMIN_LOGIN, data, REMOTE_ADDR=ip)
    data = {"username": username, "password": password}
    return client.post(TOKEN, data, content_type="application/json", REMOTE_ADDR=ip)


def _let_in(way, response):
    return response.status_code == (200 if way == "token" else 302)


def _browser_that_logged_in(way, username="root", password=PASSWORD):
    """A browser that signed in once and whose session has ended since: its device cookie."""
    response = _log_in(way, Client(), password, username=username)
    assert _let_in(way, response)
    browser = Client()
    browser.cookies[COOKIE] = response.cookies[COOKIE].value
    return browser


def _fill_the_ceiling(limits, username="root"):
    """Wrong passwords from as many addresses as it takes, each under its own client's limit."""
    ceiling, _window = limits["login_failures_per_username_all_clients"]
    for n in range(ceiling):
        response = _log_in("portal", Client(), "wrong", username=username, ip=f"10.40.{n}.1")
        assert response.status_code == 200
    refused = _log_in("portal", Client(), "wrong", username=username, ip="10.41.0.1")
    assert refused.status_code == 429


@pytest.mark.parametrize("way", WAYS)
def test_guessers_on_many_addresses_do_not_lock_the_owner_out_of_a_browser_they_used(
    root, limits, way
):
    # given: the owner signed in from this browser before; guessers then fill the ceiling
    owner = _browser_that_logged_in(way)
    _fill_the_ceiling(limits)

    # when the owner signs in from that browser, and someone from a browser never used for it
    response = _log_in(way, owner, PASSWORD)
    fresh = Client()
    refused = _log_in(way, fresh, PASSWORD, ip="203.0.113.7")

    # then the owner is let in; the fresh browser is refused, as before, with no cookie
    assert _let_in(way, response)
    if way != "token":
        assert SESSION_KEY in owner.session
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert COOKIE not in refused.cookies
    assert SESSION_KEY not in fresh.session


@pytest.mark.parametrize("way", WAYS)
def test_a_login_issues_a_device_cookie_browsers_keep_to_themselves(root, settings, way):
    settings.SESSION_COOKIE_SECURE = True  # as the settings make it for an https SITE_URL

    response = _log_in(way, Client(), PASSWORD)

    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["secure"] is True
    assert cookie["path"] == "/"
    assert cookie["max-age"] == settings.LOGIN_DEVICE_COOKIE_DAYS * 24 * 60 * 60
    assert settings.LOGIN_DEVICE_COOKIE_DAYS == 180


def test_the_device_cookie_is_not_secure_on_a_plain_http_site(root, settings):
    settings.SESSION_COOKIE_SECURE = False

    response = _log_in("portal", Client(), PASSWORD)

    assert response.cookies[COOKIE]["secure"] == ""


@pytest.mark.parametrize("way", WAYS)
def test_a_wrong_password_issues_no_device_cookie(root, way):
    response = _log_in(way, Client(), "wrong")

    assert not _let_in(way, response)
    assert COOKIE not in response.cookies


def test_a_login_the_admin_turns_away_issues_no_device_cookie_there(alice):
    response = _log_in("admin", Client(), "alice-demo-pass", username="alice@example.test")

    assert response.status_code == 200
    assert COOKIE not in response.cookies


def test_a_tampered_device_cookie_is_no_device_cookie(root, limits):
    owner = _browser_that_logged_in("portal")
    value = owner.cookies[COOKIE].value
    owner.cookies[COOKIE] = value[:-1] + ("A" if value[-1] != "A" else "B")
    _fill_the_ceiling(limits)

    assert _log_in("portal", owner, PASSWORD).status_code == 429


def test_a_device_cookie_of_another_login_is_no_device_cookie(alice, bob, limits):
    # Bob signed in on this browser; guessers fill Alice's ceiling
    browser = _browser_that_logged_in("portal", "bob@example.test", "bob-demo-pass")
    _fill_the_ceiling(limits, username="alice@example.test")

    response = _log_in("portal", browser, "alice-demo-pass", username="alice@example.test")

    assert response.status_code == 429
    assert LOGIN_THROTTLED in response.content.decode()


def test_an_expired_device_cookie_is_no_device_cookie(root, limits, settings, time_machine):
    time_machine.move_to("2026-06-01 09:00:00+00:00", tick=False)
    owner = _browser_that_logged_in("admin")

    time_machine.shift(60 * 60 * 24 * settings.LOGIN_DEVICE_COOKIE_DAYS + 60)
    _fill_the_ceiling(limits)

    assert _log_in("admin", owner, PASSWORD).status_code == 429


def test_the_device_cookie_of_a_login_a_day_before_expiry_still_counts(
    root, limits, settings, time_machine
):
    time_machine.move_to("2026-06-01 09:00:00+00:00", tick=False)
    owner = _browser_that_logged_in("admin")

    time_machine.shift(60 * 60 * 24 * (settings.LOGIN_DEVICE_COOKIE_DAYS - 1))
    _fill_the_ceiling(limits)

    assert _log_in("admin", owner, PASSWORD).status_code == 302


@pytest.mark.parametrize("way", WAYS)
def test_a_copied_device_cookie_gives_only_its_own_few_guesses(root, settings, way):
    # given: the device's limit, and its cookie used from address after address
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_failures_per_device": (3, 900)}
    device = _browser_that_logged_in(way)
    statuses = [_log_in(way, device, f"guess-{n}", ip=f"10.50.{n}.1").status_code for n in range(3)]

    # when the right password comes with that cookie; and from a browser never used for it
    response = _log_in(way, device, PASSWORD, ip="10.50.9.1")
    fresh = _log_in(way, Client(), PASSWORD, ip="10.50.10.1")

    # then that device is locked for a while, the login is not
    assert 429 not in statuses
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert _let_in(way, fresh)


def test_a_locked_device_is_refused_before_any_login_is_read(root, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_failures_per_device": (1, 900)}
    device = _browser_that_logged_in("portal")
    _log_in("portal", device, "typo")

    with CaptureQueriesContext(connection) as queries:
        response = _log_in("portal", device, PASSWORD)

    assert response.status_code == 429
    assert LOGIN_THROTTLED in response.content.decode()
    assert len(queries) == 0


def test_failures_from_a_known_device_do_not_count_toward_the_ceiling(root, settings):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "login_failures_per_username_all_clients": (3, 900),
    }
    device = _browser_that_logged_in("portal")
    statuses = [_log_in("portal", device, "typo").status_code for _ in range(5)]

    fresh = _log_in("portal", Client(), PASSWORD, ip="203.0.113.8")

    assert statuses == [200] * 5
    assert fresh.status_code == 302


def test_the_per_client_limits_still_hold_with_a_device_cookie(root, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_failures_per_username": (3, 900)}
    device = _browser_that_logged_in("portal")
    for _ in range(3):
        _log_in("portal", device, "typo")

    assert _log_in("portal", device, PASSWORD).status_code == 429


def _device_cookie(username):
    response = HttpResponse()
    login_device_cookie_set(response, user=User(username=username))
    return response.cookies[COOKIE].value


def test_a_login_from_a_known_device_takes_nothing_from_the_ceiling(db, settings):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "login_failures_per_username_all_clients": (3, 900),
    }
    cookie = _device_cookie("root")
    login_attempt_count(client="10.60.0.1", username="root")
    login_attempt_count(client="10.60.0.2", username="root")
    login_attempt_count(client=OWNER, username="root", device_cookie=cookie)
    login_succeeded(client=OWNER, username="root", device_cookie=cookie)

    login_attempt_count(client="10.60.0.3", username="root")  # the third failure
    with pytest.raises(RateLimited):  # guessers got no allowance from the owner's login
        login_attempt_count(client="10.60.0.4", username="root")
    login_attempt_count(client=OWNER, username="root", device_cookie=cookie)  # the owner is not


def test_a_device_cookie_counts_only_for_its_login_as_it_is_spelled(db, settings):
    # Logins differ by case, counters do not: a cookie of one's own "ROOT" is no cookie for root,
    # or it would give its holder a new allowance of guesses at root with every login of theirs.
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "login_failures_per_username_all_clients": (1, 900),
    }
    login_attempt_count(client="10.61.0.1", username="root")

    login_attempt_count(client=OWNER, username=" root ", device_cookie=_device_cookie("root"))
    with pytest.raises(RateLimited):
        login_attempt_count(client=OWNER, username="root", device_cookie=_device_cookie("ROOT"))
    with pytest.raises(RateLimited):
        login_attempt_count(client=OWNER, username="root", device_cookie="not a cookie")
