"""API tokens: hashed at rest, named, expiring, listed and revoked by their owner only."""

import hashlib
import importlib
import re
import threading
from datetime import timedelta
from unittest.mock import ANY

import pytest
import time_machine
from django.apps import apps
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts import services as accounts_services
from accounts.models import ApiToken
from accounts.services import (
    API_TOKEN_LIMIT_REACHED,
    api_token_issue,
    api_token_revoke,
    user_password_set,
)
from helpdesk.exceptions import ApplicationError
from tests.factories import api_key_for, api_token_stored
from tests.markers import postgresql_only
from tests.threads import run_at_once
from tickets.models import ActionLog

pytestmark = pytest.mark.django_db
plain_migration = importlib.import_module("accounts.migrations.0005_api_token_from_plain")

TOKEN = "/api/v1/auth/token/"
TOKENS = "/api/v1/auth/tokens/"
LIST = "/api/v1/tickets/"
PAGE = "/accounts/tokens/"
ALICE = {"username": "alice@example.test", "password": "alice-demo-pass"}


def token_client(key: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


def post_json(client: Client, path: str, data: dict | None = None):
    return client.post(path, data or {}, content_type="application/json")


# --- issuing: hashed, named, expiring ---


def test_a_token_is_stored_only_as_a_digest(alice):
    # when
    key = post_json(Client(), TOKEN, ALICE).json()["token"]

    # then: no column holds the key; the digest is its SHA-512
    row = ApiToken.objects.get()
    stored = [str(value) for value in ApiToken.objects.values().get().values()]
    assert key not in stored
    assert row.digest == hashlib.sha512(key.encode()).hexdigest()
    assert len(row.token_key) < len(key) // 2  # a lookup prefix only
    assert key not in str(ActionLog.objects.get(action="api_token.issued").details)


def test_the_answer_keeps_token_and_adds_name_and_expiry(alice):
    # when
    now = timezone.now()
    response = post_json(Client(), TOKEN, {**ALICE, "name": "  billing   script "})

    # then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "id", "name", "created_at", "expires_at", "last_used_at"}
    assert body["name"] == "billing script"
    expires = ApiToken.objects.get(pk=body["id"]).expiry
    assert timedelta(days=89, hours=23) < expires - now <= timedelta(days=90, minutes=1)
    assert body["last_used_at"] is None


def test_a_token_without_a_name_is_named_after_its_date(alice):
    body = post_json(Client(), TOKEN, ALICE).json()

    assert re.fullmatch(r"API token of \d{4}-\d\d-\d\d \d\d:\d\d", body["name"])


@pytest.mark.parametrize("days", [0, -1, 366, "soon"])
def test_a_lifetime_out_of_range_is_a_400_naming_the_field(alice, days):
    response = post_json(Client(), TOKEN, {**ALICE, "expires_in_days": days})

    assert response.status_code == 400
    assert "expires_in_days" in response.json()
    assert not ApiToken.objects.exists()


def test_an_expired_token_is_refused_and_removed(alice):
    # given a token made to last one day
    key = post_json(Client(), TOKEN, {**ALICE, "expires_in_days": 1}).json()["token"]
    assert token_client(key).get(LIST).status_code == 200

    # when a day and a minute have passed
    with time_machine.travel(timezone.now() + timedelta(days=1, minutes=1)):
        response = token_client(key).get(LIST)

    # then
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}
    assert not ApiToken.objects.exists()


def test_a_tampered_key_is_refused(alice):
    key = api_key_for(alice.user)
    # same lookup prefix, different key
    forged = key[:-1] + ("0" if key[-1] != "0" else "1")

    assert token_client(forged).get(LIST).status_code == 401


@pytest.mark.parametrize(
    "header", ["Token \u00e9\u00e9", "Token", "Token a b", "Token " + "f" * 500]
)
def test_a_malformed_token_header_is_a_401_not_a_500(db, header):
    response = Client(HTTP_AUTHORIZATION=header).get(LIST)

    assert response.status_code == 401
    assert "detail" in response.json()


def test_each_use_records_when_it_was_last_used(alice):
    key = api_key_for(alice.user)

    token_client(key).get(LIST)

    listed = token_client(key).get(TOKENS).json()
    assert listed[0]["last_used_at"] is not None


def test_a_login_has_at_most_twenty_tokens(alice, settings):
    # given
    for n in range(settings.API_TOKENS_PER_USER):
        api_token_issue(user=alice.user, name=f"script {n}")

    # when
    response = post_json(Client(), TOKEN, ALICE)

    # then
    assert response.status_code == 400
    assert response.json()["detail"] == API_TOKEN_LIMIT_REACHED.format(limit=20)
    assert ApiToken.objects.count() == 20


# --- listing ---


def test_the_owner_lists_its_tokens_without_keys_and_sees_which_is_in_use(alice, bob):
    # given
    first = api_key_for(alice.user, name="laptop")
    api_key_for(alice.user, name="backup job")
    api_key_for(bob.user, name="bob's")

    # when
    response = token_client(first).get(TOKENS)

    # then
    assert response.status_code == 200
    listed = response.json()
    assert [(t["name"], t["current"]) for t in listed] == [
        ("backup job", False),
        ("laptop", True),
    ]
    assert set(listed[0]) == {"id", "name", "created_at", "expires_at", "last_used_at", "current"}
    assert first not in response.content.decode()


def test_listing_needs_a_login(db):
    assert Client().get(TOKENS).status_code == 401


# --- revoking ---


def test_the_owner_revokes_one_token_and_the_others_keep_working(alice):
    # given
    laptop = api_key_for(alice.user, name="laptop")
    backup = api_key_for(alice.user, name="backup job")
    backup_id = api_token_stored(backup).pk

    # when
    response = token_client(laptop).delete(f"{TOKENS}{backup_id}/")

    # then
    assert response.status_code == 204
    assert token_client(backup).get(LIST).status_code == 401
    assert token_client(laptop).get(LIST).status_code == 200
    revoked = ActionLog.objects.get(action="api_token.revoked")
    assert revoked.details["tokens"] == [{"token": backup_id, "name": "backup job"}]


def test_another_logins_token_is_a_404_and_keeps_working(alice, bob):
    # given
    alice_key = api_key_for(alice.user)
    alice_id = api_token_stored(alice_key).pk
    bob_client = token_client(api_key_for(bob.user))

    # when
    response = bob_client.delete(f"{TOKENS}{alice_id}/")

    # then
    assert response.status_code == 404
    assert token_client(alice_key).get(LIST).status_code == 200
    assert not ActionLog.objects.filter(action="api_token.revoked").exists()


def test_revoking_by_id_needs_a_login(alice):
    alice_id = api_token_stored(api_key_for(alice.user)).pk

    assert Client().delete(f"{TOKENS}{alice_id}/").status_code == 401
    assert ApiToken.objects.filter(pk=alice_id).exists()


def test_delete_on_the_token_url_revokes_only_the_token_in_use(alice):
    in_use = api_key_for(alice.user)
    other = api_key_for(alice.user)

    assert token_client(in_use).delete(TOKEN).status_code == 204

    assert token_client(in_use).get(LIST).status_code == 401
    assert token_client(other).get(LIST).status_code == 200


def test_delete_on_the_token_url_by_session_revokes_them_all(alice_client, alice):
    keys = [api_key_for(alice.user), api_key_for(alice.user)]

    assert alice_client.delete(TOKEN).status_code == 204

    assert all(token_client(key).get(LIST).status_code == 401 for key in keys)


def test_a_password_change_revokes_every_token(alice_client, alice):
    keys = [api_key_for(alice.user), api_key_for(alice.user)]
    user_password_set(
        user=alice.user, password="a-new-long-passphrase-2026", actor=alice.user, how="change"
    )

    assert all(token_client(key).get(LIST).status_code == 401 for key in keys)
    assert not ApiToken.objects.filter(user=alice.user).exists()


# --- the account page ---


def test_the_account_page_makes_a_token_shows_it_once_and_lists_it(alice_client, alice):
    # when
    made = alice_client.post(PAGE, {"name": "monthly report", "expires_in_days": "30"})

    # then: the key is on this answer only
    assert made.status_code == 200
    assert made["Cache-Control"] == "no-store"
    key = re.search(r'id="new-token-key">([0-9a-f]+)<', made.content.decode()).group(1)
    assert token_client(key).get(LIST).status_code == 200
    token = api_token_stored(key)
    assert token.name == "monthly report"
    assert token.expiry - timezone.now() > timedelta(days=29)
    page = alice_client.get(PAGE).content.decode()
    assert "monthly report" in page
    assert key not in page


def test_the_account_page_refuses_a_bad_lifetime(alice_client):
    response = alice_client.post(PAGE, {"name": "x", "expires_in_days": "400"})

    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_the_account_page_revokes_the_owners_token(alice_client, alice):
    key = api_key_for(alice.user, name="old laptop")

    response = alice_client.post(f"{PAGE}{api_token_stored(key).pk}/revoke/", follow=True)

    assert response.status_code == 200
    assert "old laptop" in response.content.decode()  # named in the confirmation
    assert token_client(key).get(LIST).status_code == 401


def test_the_account_page_cannot_revoke_another_logins_token(alice_client, bob):
    bob_key = api_key_for(bob.user)

    response = alice_client.post(f"{PAGE}{api_token_stored(bob_key).pk}/revoke/")

    assert response.status_code == 404
    assert token_client(bob_key).get(LIST).status_code == 200


def test_the_account_page_revokes_only_by_post(alice_client, alice):
    key = api_key_for(alice.user)

    assert alice_client.get(f"{PAGE}{api_token_stored(key).pk}/revoke/").status_code == 405
    assert api_token_stored(key) is not None


def test_the_account_page_needs_a_login(alice):
    key = api_key_for(alice.user)

    assert Client().get(PAGE).status_code == 302
    assert Client().post(f"{PAGE}{api_token_stored(key).pk}/revoke/").status_code == 302
    assert api_token_stored(key) is not None


def test_staff_have_the_page_too(agent_client):
    response = agent_client.get(PAGE)

    assert response.status_code == 200
    assert "You have no API tokens." in response.content.decode()


# --- plain tokens from before ---


class _SchemaEditor:
    """What the migration uses of a schema editor; SQLite's refuses to open inside a test."""

    connection = connection

    def execute(self, sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)


def test_plain_tokens_from_before_are_hashed_and_keep_working(alice):
    # given DRF's old table with a plain key, as a database from before holds it
    key = "0123456789abcdef0123456789abcdef01234567"
    created = timezone.now() - timedelta(days=400)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created timestamp with time zone NOT NULL, user_id integer NOT NULL)"
            if connection.vendor == "postgresql"
            else "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created datetime NOT NULL, user_id integer NOT NULL)"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
            [key, created, alice.user.pk],
        )

    # when the migration runs
    plain_migration.hash_plain_tokens(apps, _SchemaEditor())

    # then the key still works, is kept only as a digest, expires, and the plain table is gone
    assert "authtoken_token" not in connection.introspection.table_names()
    token = api_token_stored(key)
    assert token.user == alice.user
    assert token.name == plain_migration.MIGRATED_NAME
    assert abs(token.created - created) < timedelta(seconds=1)
    assert timedelta(days=89) < token.expiry - timezone.now() <= timedelta(days=90)
    assert token_client(key).get(LIST).status_code == 200


def test_a_database_without_plain_tokens_migrates_to_nothing(db):
    plain_migration.hash_plain_tokens(apps, _SchemaEditor())

    assert not ApiToken.objects.exists()


# --- a password set while a token is being issued ---

NEW_PASSWORD = "a-new-long-passphrase-2026"


def test_a_token_asked_with_the_old_password_as_it_is_reset_is_refused(alice, monkeypatch):
    """Whoever knows the old password asks for a token; the owner's reset lands meanwhile."""
    import tickets.api.auth as auth_api

    checked = auth_api.authenticate

    def reset_after_the_check(*args, **kwargs):
        user = checked(*args, **kwargs)
        # The owner's reset commits after the old password was checked, before the token is made.
        user_password_set(user=alice.user, password=NEW_PASSWORD, actor=alice.user, how="reset")
        return user

    monkeypatch.setattr(auth_api, "authenticate", reset_after_the_check)

    # when
    response = post_json(Client(), TOKEN, ALICE)

    # then: no token outlives the reset, which took back everything issued under the old one
    assert response.status_code == 401
    assert "token" not in response.json()
    assert not ApiToken.objects.filter(user=alice.user).exists()


def test_a_token_asked_by_a_session_as_the_password_changes_is_refused(alice, alice_client):
    # given: the session's login as read at the start of the request, before a change lands
    stale = type(alice.user).objects.get(pk=alice.user.pk)
    user_password_set(user=alice.user, password=NEW_PASSWORD, actor=alice.user, how="change")

    # when / then
    with pytest.raises(ApplicationError) as refused:
        api_token_issue(user=stale)
    assert refused.value.status_code == 401
    assert not ApiToken.objects.filter(user=alice.user).exists()


# --- revoking every token while one is being issued ---


@postgresql_only("two transactions at once, each on its own connection")
@pytest.mark.django_db(transaction=True)
def test_revoking_every_token_as_one_is_issued_leaves_none_issued_before_it(alice, monkeypatch):
    """The owner revokes all (a token leaked) as whoever holds the session asks for a new one."""
    # given a token Alice holds, and a revoke that waits, once it has read her tokens, for an
    # issue to commit (up to 2 s): unless a lock holds the issue until the revoke commits
    api_token_issue(user=alice.user, name="leaked")
    listed, issued = threading.Event(), threading.Event()
    audit = accounts_services._api_token_audit

    def audit_after_the_issue(user, action, **details):
        if action == "api_token.revoked":
            listed.set()
            issued.wait(2)
        audit(user, action, **details)

    monkeypatch.setattr(accounts_services, "_api_token_audit", audit_after_the_issue)

    def revoke_all() -> None:
        api_token_revoke(user=User.objects.get(pk=alice.user.pk))

    def issue() -> None:
        listed.wait(5)
        try:
            api_token_issue(user=User.objects.get(pk=alice.user.pk), name="new")
        finally:
            issued.set()

    # when both run at once
    run_at_once(lambda step: step(), [(revoke_all,), (issue,)])

    # then the revoke and the issue took turns: a token left was issued after the revoke
    revoked = ActionLog.objects.get(action="api_token.revoked")
    assert revoked.details["tokens"] == [{"token": ANY, "name": "leaked"}]
    for token in ApiToken.objects.filter(user=alice.user):
        issued_row = ActionLog.objects.get(action="api_token.issued", details__token=token.pk)
        assert issued_row.sequence > revoked.sequence


def test_a_login_let_back_in_after_deactivation_has_none_of_its_old_credentials(agent):
    # given the agent's token and signed-in browser, from before the login was turned off
    key = api_token_issue(user=agent, name="laptop").key
    browser = Client()
    browser.force_login(agent)
    agent.is_active = False
    agent.save()
    assert token_client(key).get("/api/v1/tickets/").status_code == 401

    # when the login is let back in (the admin, a data fix)
    agent.is_active = True
    agent.save()

    # then what was taken while it was off (or that the one who turned it off feared was)
    # opens nothing: the owner signs in again
    assert token_client(key).get("/api/v1/tickets/").status_code == 401
    assert browser.get("/staff/").status_code == 302
    assert not ApiToken.objects.filter(user=agent).exists()
    row = ActionLog.objects.filter(action="account.credentials_revoked").get()
    assert row.details == {"user": "agent", "credentials_revoked": {"api_tokens": 1, "sessions": 1}}


def test_a_customer_account_reopened_takes_back_the_tokens_from_before(alice):
    key = api_token_issue(user=alice.user, name="script").key
    alice.account_status = alice.AccountStatus.CLOSED
    alice.save()
    assert token_client(key).get("/api/v1/tickets/").status_code == 401

    alice.account_status = alice.AccountStatus.ACTIVE
    alice.save()

    assert token_client(key).get("/api/v1/tickets/").status_code == 401
    assert not ApiToken.objects.filter(user=alice.user).exists()
