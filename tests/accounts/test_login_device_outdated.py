"""Device cookies end with the password and the state of the login they were issued under.

A copy of an owner's device cookie is worth a few guesses every 15 minutes past the login's
limit from every client. Once the owner resets or changes the password, or the login is
deactivated, frozen or closed, the copy is worth one failed attempt (the one that reads the
login, after the refusals) and then nothing, on every login path.
"""

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Customer, LoginState
from accounts.services import user_password_set
from tests.accounts.conftest import ROOT_PASSWORD as PASSWORD
from tests.factories import freeze_shown
from tests.tickets.test_freeze import email_change_applied, freeze_token
from tickets.services.freeze import account_unfreeze

ADMIN_LOGIN = "/admin/login/"
PORTAL_LOGIN = "/accounts/login/"
TOKEN = "/api/v1/auth/token/"
COOKIE = "login_device"
OWNER = "198.51.100.20"
THIEF = "203.0.113.66"
NEW_PASSWORD = "root-new-pass-5517"
ALICE = "alice@example.test"
WAYS = ["portal", "admin", "token"]


pytestmark = pytest.mark.usefixtures("limits")  # tests/accounts/conftest.py


def log_in(way, client, password, username="root", ip=OWNER):
    data = {"username": username, "password": password}
    if way == "portal":
        return client.post(PORTAL_LOGIN, data, REMOTE_ADDR=ip)
    if way == "admin":
        return client.post(ADMIN_LOGIN, {**data, "next": "/admin/"}, REMOTE_ADDR=ip)
    return client.post(TOKEN, data, content_type="application/json", REMOTE_ADDR=ip)


def let_in(way, response):
    return response.status_code == (200 if way == "token" else 302)


def device_cookie(way="portal", username="root", password=PASSWORD):
    """The device cookie a successful login gives its browser."""
    response = log_in(way, Client(), password, username=username)
    assert let_in(way, response)
    return response.cookies[COOKIE].value


def browser_with(cookie):
    browser = Client()
    browser.cookies[COOKIE] = cookie
    return browser


def fill_the_ceiling(username="root"):
    """Wrong passwords from as many addresses as it takes, each under its own client's limit."""
    ceiling, _window = settings.RATE_LIMITS["login_failures_per_username_all_clients"]
    for n in range(ceiling + 1):
        response = log_in("portal", Client(), "wrong", username=username, ip=f"10.40.{n}.1")
        if response.status_code == 429:
            return
        assert response.status_code == 200
    raise AssertionError("the ceiling was not reached")


def guesses(way, cookie, username="root", count=3):
    """The statuses of `count` wrong guesses made with a copy of the cookie."""
    copy = browser_with(cookie)
    return [
        log_in(way, copy, f"guess-{n}", username=username, ip=THIEF).status_code
        for n in range(count)
    ]


def _password_changed(user):
    user_password_set(user=user, password=NEW_PASSWORD, actor=user, how="change")


def _password_reset(user):
    user_password_set(user=user, password=NEW_PASSWORD, actor=user, how="reset")


def _password_set_by_a_command(user):
    # As manage.py changepassword does: no service hears of it.
    user.set_password(NEW_PASSWORD)
    user.save()


def _deactivated(user):
    user.is_active = False
    user.save(update_fields=["is_active"])


CHANGES = {
    "password changed": _password_changed,
    "password reset": _password_reset,
    "password set by a command": _password_set_by_a_command,
    "login deactivated": _deactivated,
}


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("way", WAYS)
def test_a_copied_device_cookie_is_worth_one_attempt_once_the_login_changed(root, way, change):
    # given: a copy of the cookie of the owner's browser; the owner's login changes since
    cookie = device_cookie(way)
    CHANGES[change](root)

    # when guessers fill the ceiling, and the copy is used to guess on
    fill_the_ceiling()
    statuses = guesses(way, cookie)

    # then its first attempt (which reads the login) was its last past the ceiling
    assert statuses[0] in (200, 401)
    assert statuses[1:] == [429, 429]


@pytest.mark.parametrize("way", WAYS)
def test_a_copied_device_cookie_is_worth_nothing_more_once_the_account_is_frozen(
    client, alice, supervisor, way
):
    # given: a copy of Alice's cookie; her account is taken over (its email changed), and her
    # old address freezes it
    cookie = device_cookie("portal", ALICE, "alice-demo-pass")
    ticket = email_change_applied(alice, supervisor)
    assert client.post(f"/not-me/{freeze_token(ticket)}/").status_code == 303
    alice.refresh_from_db()
    alice.user.refresh_from_db()
    assert alice.account_status == Customer.AccountStatus.SUSPENDED
    assert alice.user.get_username() == ALICE

    # when guessers fill the ceiling, and the copy is used to guess on
    fill_the_ceiling(ALICE)
    statuses = guesses(way, cookie, username=ALICE)

    # then
    assert statuses[1:] == [429, 429]


@pytest.mark.parametrize("way", WAYS)
def test_a_copied_device_cookie_is_worth_nothing_more_once_the_account_is_closed(alice, way):
    # given: a copy of Alice's cookie; her account is closed, her password left as it was
    cookie = device_cookie("portal", ALICE, "alice-demo-pass")
    Customer.objects.filter(pk=alice.pk).update(account_status=Customer.AccountStatus.CLOSED)

    fill_the_ceiling(ALICE)
    statuses = guesses(way, cookie, username=ALICE)

    assert statuses[1:] == [429, 429]


def test_a_revoked_copy_stays_worthless_once_the_login_is_active_again(root):
    # given: the copy failed once while the login was deactivated; it is active again since
    cookie = device_cookie()
    _deactivated(root)
    assert guesses("portal", cookie, count=1) == [200]
    root.is_active = True
    root.save(update_fields=["is_active"])

    fill_the_ceiling()

    assert guesses("portal", cookie, count=2) == [429, 429]


def test_a_revoked_cookie_is_refused_before_any_login_is_read(root):
    cookie = device_cookie()
    _password_changed(root)
    guesses("portal", cookie, count=1)
    fill_the_ceiling()

    with CaptureQueriesContext(connection) as queries:
        response = log_in("portal", browser_with(cookie), NEW_PASSWORD)

    assert response.status_code == 429
    assert len(queries) == 0


@pytest.mark.parametrize("way", WAYS)
def test_signing_in_with_the_new_password_gives_the_browser_a_cookie_that_counts(root, way):
    # given: the owner changed the password; their browser still holds the old cookie
    old = device_cookie(way)
    _password_changed(root)
    owner = browser_with(old)

    # when the owner signs in there with the new password
    response = log_in(way, owner, NEW_PASSWORD)
    assert let_in(way, response)
    fresh = response.cookies[COOKIE].value
    assert fresh != old

    # then past a full ceiling that browser may still mistype and sign in; the old copy may not
    fill_the_ceiling()
    owner = browser_with(fresh)
    assert log_in(way, owner, "typo").status_code in (200, 401)
    assert let_in(way, log_in(way, owner, NEW_PASSWORD))
    if way != "token":
        assert SESSION_KEY in owner.session
    assert guesses(way, old)[1:] == [429, 429]


def test_a_cookie_of_the_current_password_survives_the_owners_typos(root):
    cookie = device_cookie()
    owner = browser_with(cookie)
    assert [log_in("portal", owner, "typo").status_code for _ in range(3)] == [200] * 3

    fill_the_ceiling()

    assert log_in("portal", owner, PASSWORD).status_code == 302


def test_a_cookie_issued_before_the_secret_key_was_rotated_still_counts(root, settings):
    # given: a cookie issued under the old key, which is kept as a fallback
    cookie = device_cookie()
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-for-the-rotation-test-0123456789"
    owner = browser_with(cookie)

    # when the owner mistypes, and guessers fill the ceiling
    assert log_in("portal", owner, "typo").status_code == 200
    fill_the_ceiling()

    # then the cookie still counts
    assert log_in("portal", owner, PASSWORD).status_code == 302


def test_a_revocation_lost_with_the_cache_is_made_again_by_the_next_attempt(root):
    # given: a copy revoked after a password change; then the cache loses everything
    cookie = device_cookie()
    _password_changed(root)
    guesses("portal", cookie, count=1)
    cache.clear()

    # when guessers fill the ceiling again
    fill_the_ceiling()

    # then the copy is worth one attempt again, and no more
    assert guesses("portal", cookie)[1:] == [429, 429]


@pytest.mark.parametrize("page", ["/my/", "/api/v1/tickets/"])
def test_a_browser_signed_in_when_its_login_is_renamed_keeps_a_cookie_that_counts(
    alice, supervisor, page
):
    # given: Alice signed in on her browser; a verified change of her email renames her login
    owner = Client()
    assert log_in("portal", owner, "alice-demo-pass", username=ALICE).status_code == 302
    old = owner.cookies[COOKIE].value
    email_change_applied(alice, supervisor)
    alice.user.refresh_from_db()
    renamed = alice.user.get_username()
    assert renamed != ALICE

    # when her browser makes its next request, and guessers fill the new name's ceiling
    assert owner.get(page).status_code == 200
    fill_the_ceiling(renamed)

    # then that browser signs in again under the new name, past the ceiling; a copy of the
    # cookie of the old name does not
    owner.post("/accounts/logout/")
    assert log_in("portal", owner, "typo", username=renamed).status_code == 200
    assert log_in("portal", owner, "alice-demo-pass", username=renamed).status_code == 302
    assert (
        log_in("portal", browser_with(old), "alice-demo-pass", username=renamed).status_code == 429
    )


def test_a_signed_in_browser_with_a_cookie_that_counts_is_given_no_other(root):
    owner = Client()
    assert log_in("admin", owner, PASSWORD).status_code == 302

    response = owner.get("/admin/")

    assert response.status_code == 200
    assert COOKIE not in response.cookies


def test_a_browser_not_signed_in_is_given_no_cookie_and_no_login_is_read(db):
    with CaptureQueriesContext(connection) as queries:
        response = Client().get("/accounts/login/")

    assert response.status_code == 200
    assert COOKIE not in response.cookies
    assert not [query for query in queries if "auth_user" in query["sql"]]


# --- a lock-out lifted: the state comes back, the cookies of before it do not ---

AGENT_PASSWORD = "agent-demo-pass"


def _admin_sets_active(root, user, active):
    """A superuser ticks or unticks "active" on the login's page of the admin."""
    admin = Client()
    admin.force_login(root)
    form = {
        "username": user.username,
        "email": user.email,
        "is_active": "on" if active else "",
        "is_staff": "on" if user.is_staff else "",
        "groups": [str(pk) for pk in user.groups.values_list("pk", flat=True)],
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    form = {key: value for key, value in form.items() if value != ""}
    response = admin.post(f"/admin/auth/user/{user.pk}/change/", form)
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.is_active is active


def _frozen_by_the_not_me_link(client, alice, supervisor):
    # The freeze also gives the login a random password (user_credentials_revoke).
    ticket = email_change_applied(alice, supervisor)
    assert client.post(f"/not-me/{freeze_token(ticket)}/").status_code == 303


def _suspended_on_record(client, alice, supervisor):
    # Suspended as it stands on record, its password kept.
    Customer.objects.filter(pk=alice.pk).update(account_status=Customer.AccountStatus.SUSPENDED)


FREEZES = {"not-me link": _frozen_by_the_not_me_link, "suspended on record": _suspended_on_record}


def _freeze_lifted(client, alice, supervisor, freeze):
    FREEZES[freeze](client, alice, supervisor)
    alice.refresh_from_db()
    assert alice.account_status == Customer.AccountStatus.SUSPENDED
    account_unfreeze(
        customer=alice,
        freeze_version=freeze_shown(alice),
        actor=supervisor,
        reason="ID checked on a video call",
    )
    alice.refresh_from_db()
    assert alice.account_status == Customer.AccountStatus.ACTIVE


@pytest.mark.parametrize("freeze", FREEZES)
@pytest.mark.parametrize("way", WAYS)
def test_a_copied_device_cookie_counts_no_more_once_a_freeze_is_lifted(
    client, alice, supervisor, way, freeze
):
    # given: a copy of Alice's cookie, taken while her account was open; it is frozen, and a
    # supervisor lifts the freeze before the copy is ever tried
    cookie = device_cookie("portal", ALICE, "alice-demo-pass")
    _freeze_lifted(client, alice, supervisor, freeze)

    # when guessers fill the ceiling, and the copy is used to guess on
    fill_the_ceiling(ALICE)
    statuses = guesses(way, cookie, username=ALICE)

    # then its first attempt (which reads the login) was its last past the ceiling
    assert statuses[1:] == [429, 429]


@pytest.mark.parametrize("way", ["portal", "token"])  # a customer's login has no admin
def test_the_owner_signing_in_once_the_freeze_is_lifted_gets_a_cookie_that_counts(
    client, alice, supervisor, way
):
    # given: Alice's browser holds the cookie of before the freeze, which is lifted since
    old = device_cookie(way, ALICE, "alice-demo-pass")
    _freeze_lifted(client, alice, supervisor, "suspended on record")

    # when she signs in there
    owner = browser_with(old)
    response = log_in(way, owner, "alice-demo-pass", username=ALICE)
    assert let_in(way, response)
    fresh = response.cookies[COOKIE].value

    # then past a full ceiling that browser may still mistype and sign in; the old copy may not
    fill_the_ceiling(ALICE)
    owner = browser_with(fresh)
    assert log_in(way, owner, "typo", username=ALICE).status_code in (200, 401)
    assert let_in(way, log_in(way, owner, "alice-demo-pass", username=ALICE))
    assert guesses(way, old, username=ALICE)[1:] == [429, 429]


@pytest.mark.parametrize("way", WAYS)
def test_a_copied_device_cookie_counts_no_more_once_the_admin_makes_the_login_active_again(
    root, agent, way
):
    # given: a copy of the agent's cookie; a superuser deactivates the login and activates it
    # again before the copy is ever tried
    cookie = device_cookie(way, "agent", AGENT_PASSWORD)
    _admin_sets_active(root, agent, False)
    _admin_sets_active(root, agent, True)

    # when guessers fill the ceiling, and the copy is used to guess on
    fill_the_ceiling("agent")
    statuses = guesses(way, cookie, username="agent")

    # then
    assert statuses[1:] == [429, 429]


def test_a_browser_signed_in_before_a_deactivation_gets_a_cookie_that_counts_after_it(root, agent):
    # given: the agent's browser, signed in; the admin deactivates the login, then activates it
    owner = Client()
    assert log_in("admin", owner, AGENT_PASSWORD, username="agent").status_code == 302
    old = owner.cookies[COOKIE].value
    _admin_sets_active(root, agent, False)
    _admin_sets_active(root, agent, True)

    # when that browser makes its next request (its session ended as the login came back: it
    # signs in again), and guessers fill the ceiling
    assert owner.get("/admin/").status_code == 302
    assert log_in("admin", owner, AGENT_PASSWORD, username="agent").status_code == 302
    fresh = owner.cookies[COOKIE].value
    fill_the_ceiling("agent")

    # then the browser's new cookie counts and the copy of its old one does not
    assert fresh != old
    owner.post("/admin/logout/")
    assert log_in("admin", owner, "typo", username="agent").status_code == 200
    assert log_in("admin", owner, AGENT_PASSWORD, username="agent").status_code == 302
    assert guesses("admin", old, username="agent")[1:] == [429, 429]


def _raw_reactivated(user):
    # As a shell or a data fix does: the row saved again, no service told.
    user.is_active = True
    user.save()


def _raw_reactivated_by_its_field(user):
    user.is_active = True
    user.save(update_fields=["is_active"])


RAW_REACTIVATIONS = {"saved": _raw_reactivated, "saved by its field": _raw_reactivated_by_its_field}


@pytest.mark.parametrize("reactivate", RAW_REACTIVATIONS)
@pytest.mark.parametrize("way", WAYS)
def test_a_copied_device_cookie_counts_no_more_once_a_raw_save_makes_the_login_active_again(
    root, agent, way, reactivate
):
    # given: a copy of the agent's cookie; the login is deactivated and made active again by a
    # plain save, before the copy is ever tried
    cookie = device_cookie(way, "agent", AGENT_PASSWORD)
    _deactivated(agent)
    RAW_REACTIVATIONS[reactivate](agent)

    # when guessers fill the ceiling, and the copy is used to guess on
    fill_the_ceiling("agent")
    statuses = guesses(way, cookie, username="agent")

    # then its first attempt (which reads the login) was its last past the ceiling
    assert statuses[1:] == [429, 429]


@pytest.mark.parametrize("way", ["portal", "token"])  # a customer's login has no admin
def test_a_copied_device_cookie_counts_no_more_once_a_raw_save_reopens_the_account(
    client, alice, way
):
    # given: a copy of Alice's cookie; her account is suspended and reopened by plain saves
    cookie = device_cookie(way, ALICE, "alice-demo-pass")
    account = Customer.objects.get(pk=alice.pk)
    account.account_status = Customer.AccountStatus.SUSPENDED
    account.save()
    account.account_status = Customer.AccountStatus.ACTIVE
    account.save()

    # when guessers fill the ceiling, and the copy is used to guess on
    fill_the_ceiling(ALICE)

    # then
    assert guesses(way, cookie, username=ALICE)[1:] == [429, 429]


def test_a_save_that_leaves_a_login_as_it_was_counts_nothing(root, agent, alice):
    # given: a login that was never locked out, saved as logins are every day
    cookie = device_cookie("portal", "agent", AGENT_PASSWORD)
    agent.first_name = "Aida"
    agent.save()
    agent.save(update_fields=["last_login"])
    account = Customer.objects.get(pk=alice.pk)
    account.phone = "+60 12-345 6789"
    account.save()

    # then no login was counted let back in, and the owner's cookie still counts
    assert not LoginState.objects.filter(user__in=[agent, alice.user]).exists()
    fill_the_ceiling("agent")
    owner = browser_with(cookie)
    assert log_in("portal", owner, "typo", username="agent").status_code == 200


def test_each_path_that_lets_a_login_back_in_counts_it_once(client, root, agent, alice, supervisor):
    # when the admin makes the agent's login active again, and a supervisor lifts Alice's freeze
    _admin_sets_active(root, agent, False)
    _admin_sets_active(root, agent, True)
    _freeze_lifted(client, alice, supervisor, "suspended on record")

    # then each is counted once, by the save both pass through
    counts = LoginState.objects.filter(user__in=[agent, alice.user])
    assert sorted(counts.values_list("reactivations", flat=True)) == [1, 1]
