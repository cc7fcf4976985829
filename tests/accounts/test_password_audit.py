"""A new password is audited and takes back the credentials issued under the old one."""

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.models import ApiToken
from accounts.services import api_token_issue, user_password_set
from helpdesk.exceptions import ApplicationError
from tests.factories import api_token_stored
from tests.tickets.verification_helpers import password_reset_lookups
from tickets import services
from tickets.audit import audit_verify
from tickets.models import ActionLog, Notification

LOGIN = "/accounts/login/"
RESET = "/accounts/password-reset/"
API_TICKETS = "/api/v1/tickets/"
MY_TICKETS = reverse("portal:my-tickets")
NEW_PASSWORD = "a-brand-new-pass-42"


def _logged_in_client(username: str, password: str) -> Client:
    client = Client()
    response = client.post(LOGIN, {"username": username, "password": password})
    assert response.status_code == 302
    return client


def _signs_in(username: str, password: str) -> bool:
    return Client().post(LOGIN, {"username": username, "password": password}).status_code == 302


def _reset_through_the_email(client: Client, email: str, new_password: str):
    """Ask for a reset, have the worker send the email, follow its link, set the password."""
    client.post(RESET, {"email": email})
    password_reset_lookups()
    notification = Notification.objects.get(template="password_reset", recipient=email)
    services.notification_send(notification_id=notification.pk)
    [message] = [m for m in mail.outbox if m.to == [email]]
    link = re.search(
        r"https://help\.exabytes\.example(/accounts/password-reset/\S+/)", message.body
    )
    assert link is not None
    form_page = client.get(link.group(1), follow=True)
    assert form_page.status_code == 200
    return client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": new_password, "new_password2": new_password},
    )


@pytest.mark.django_db
def test_a_completed_reset_is_audited_without_the_password(client, alice):
    response = _reset_through_the_email(client, "alice@example.test", NEW_PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_reset_complete")
    row = ActionLog.objects.get(action="account.password_reset")
    assert row.actor == "user:alice@example.test"
    assert row.customer == alice
    assert row.details["user"] == "alice@example.test"
    assert NEW_PASSWORD not in str(row.details)
    alice.user.refresh_from_db()
    assert alice.user.check_password(NEW_PASSWORD)


@pytest.mark.django_db
def test_an_api_token_issued_before_the_reset_is_refused_after_it(client, alice):
    key = api_token_issue(user=alice.user).key
    api = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get(API_TICKETS).status_code == 200

    _reset_through_the_email(client, "alice@example.test", NEW_PASSWORD)

    assert api.get(API_TICKETS).status_code == 401
    assert not ApiToken.objects.filter(user=alice.user).exists()
    assert ActionLog.objects.filter(action="api_token.revoked").count() == 1
    row = ActionLog.objects.get(action="account.password_reset")
    assert row.details["credentials_revoked"]["api_tokens"] == 1


@pytest.mark.django_db
def test_another_session_of_the_user_is_logged_out_by_the_reset(client, alice, bob):
    # given Alice logged in elsewhere (say, a stolen laptop), and Bob logged in too
    elsewhere = _logged_in_client("alice@example.test", "alice-demo-pass")
    bob_browser = _logged_in_client("bob@example.test", "bob-demo-pass")
    stolen_key = elsewhere.session.session_key
    assert elsewhere.get(MY_TICKETS).status_code == 200

    # when Alice resets her password from another browser
    _reset_through_the_email(client, "alice@example.test", NEW_PASSWORD)

    # then the other session is gone, and only Alice's
    assert not Session.objects.filter(session_key=stolen_key).exists()
    response = elsewhere.get(MY_TICKETS)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    assert bob_browser.get(MY_TICKETS).status_code == 200
    row = ActionLog.objects.get(action="account.password_reset")
    assert row.details["credentials_revoked"] == {"api_tokens": 0, "sessions": 1}
    # and the new password logs in
    assert _logged_in_client("alice@example.test", NEW_PASSWORD).get(MY_TICKETS).status_code == 200


@pytest.mark.django_db
def test_the_audit_chain_still_verifies_after_a_reset(client, alice):
    api_token_issue(user=alice.user)
    _reset_through_the_email(client, "alice@example.test", NEW_PASSWORD)

    assert audit_verify().ok
    call_command("verify_audit_log")  # exit 0


@pytest.mark.django_db
def test_a_password_change_keeps_the_current_session_and_ends_the_others(alice):
    here = _logged_in_client("alice@example.test", "alice-demo-pass")
    there = _logged_in_client("alice@example.test", "alice-demo-pass")
    key = api_token_issue(user=alice.user).key

    user_password_set(
        user=alice.user,
        password=NEW_PASSWORD,
        actor=alice.user,
        how="change",
        keep_session_key=here.session.session_key,
    )

    assert Session.objects.filter(session_key=here.session.session_key).exists()
    assert not Session.objects.filter(session_key=there.session.session_key).exists()
    assert api_token_stored(key) is None
    row = ActionLog.objects.get(action="account.password_changed")
    assert row.details == {
        "user": "alice@example.test",
        "credentials_revoked": {"api_tokens": 1, "sessions": 1},
    }
    assert audit_verify().ok


@pytest.mark.django_db
def test_a_session_the_search_misses_still_ends_on_the_password_hash(alice, settings):
    # A session engine that cannot be searched (signed cookies): Django's own check of the
    # session's password hash logs the old session out.
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    elsewhere = _logged_in_client("alice@example.test", "alice-demo-pass")
    assert elsewhere.get(MY_TICKETS).status_code == 200

    user_password_set(user=alice.user, password=NEW_PASSWORD, actor=alice.user, how="change")

    assert elsewhere.get(MY_TICKETS).status_code == 302
    row = ActionLog.objects.get(action="account.password_changed")
    assert row.details["credentials_revoked"]["sessions"] == 0


@pytest.mark.django_db
def test_a_weak_password_is_refused_and_nothing_is_revoked(alice):
    key = api_token_issue(user=alice.user).key

    with pytest.raises(ValidationError):
        user_password_set(user=alice.user, password="123", actor=alice.user, how="change")

    alice.user.refresh_from_db()
    assert alice.user.check_password("alice-demo-pass")
    assert api_token_stored(key) is not None
    assert not ActionLog.objects.filter(action="account.password_changed").exists()


@pytest.mark.django_db
def test_a_reset_with_a_mismatched_confirmation_changes_nothing(client, alice):
    key = api_token_issue(user=alice.user).key
    client.post(RESET, {"email": "alice@example.test"})
    password_reset_lookups()
    notification = Notification.objects.get(template="password_reset")
    path = re.sub(r"^https://[^/]+", "", notification.context["link"])
    form_page = client.get(path, follow=True)

    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": "something-else-42"},
    )

    assert response.status_code == 400
    assert api_token_stored(key) is not None
    assert not ActionLog.objects.filter(action="account.password_reset").exists()
    assert SESSION_KEY not in client.session


@pytest.fixture
def root(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser(
        username="root", email="root@example.test", password="root-pass-123"
    )


def _admin_password_url(user) -> str:
    return reverse("admin:auth_user_password_change", args=[user.pk])


@pytest.mark.django_db
def test_a_password_set_in_the_admin_is_audited_and_revokes_the_users_credentials(agent, root):
    elsewhere = _logged_in_client("agent", "agent-demo-pass")
    key = api_token_issue(user=agent).key
    admin = _logged_in_client("root", "root-pass-123")

    response = admin.post(
        _admin_password_url(agent),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.check_password(NEW_PASSWORD)
    assert api_token_stored(key) is None
    assert not Session.objects.filter(session_key=elsewhere.session.session_key).exists()
    row = ActionLog.objects.get(action="account.password_changed")
    assert row.actor == "staff:root"
    assert row.details["user"] == "agent"
    assert row.details["credentials_revoked"] == {"api_tokens": 1, "sessions": 1}
    assert NEW_PASSWORD not in str(row.details)
    assert audit_verify().ok


@pytest.mark.django_db
def test_a_superuser_cannot_set_a_customers_password_to_sign_in_as_them(alice, root):
    # given a superuser who would sign in as Alice, whose session then counts as her own
    # verification for a change of her record
    elsewhere = _logged_in_client("alice@example.test", "alice-demo-pass")
    key = api_token_issue(user=alice.user).key
    admin = _logged_in_client("root", "root-pass-123")

    # when they set her password in the admin
    response = admin.post(
        _admin_password_url(alice.user),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    # then the page says why and that a reset mailed to her is the way; nothing changed
    assert response.status_code == 200
    assert "password reset" in response.content.decode()
    alice.user.refresh_from_db()
    assert alice.user.check_password("alice-demo-pass")
    assert not _signs_in("alice@example.test", NEW_PASSWORD)
    assert api_token_stored(key) is not None
    assert Session.objects.filter(session_key=elsewhere.session.session_key).exists()
    assert not ActionLog.objects.filter(action__startswith="account.password").exists()


@pytest.mark.django_db
def test_the_password_service_sets_a_customers_password_only_for_the_customer(alice, root):
    # whoever calls it: the admin, a command, a future screen
    with pytest.raises(ApplicationError):
        user_password_set(user=alice.user, password=NEW_PASSWORD, actor=root, how="change")

    alice.user.refresh_from_db()
    assert alice.user.check_password("alice-demo-pass")
    assert not ActionLog.objects.filter(action__startswith="account.password").exists()


@pytest.mark.django_db
def test_disabling_password_login_in_the_admin_is_audited_too(alice, root):
    key = api_token_issue(user=alice.user).key
    admin = _logged_in_client("root", "root-pass-123")

    response = admin.post(
        _admin_password_url(alice.user), {"usable_password": "false", "unset-password": "1"}
    )

    assert response.status_code == 302
    alice.user.refresh_from_db()
    assert not alice.user.has_usable_password()
    assert api_token_stored(key) is None
    assert ActionLog.objects.get(action="account.password_disabled").actor == "staff:root"


@pytest.mark.django_db
def test_a_superuser_changing_their_own_password_in_the_admin_stays_logged_in(root):
    admin = _logged_in_client("root", "root-pass-123")

    admin.post(
        _admin_password_url(root),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert admin.get("/admin/").status_code == 200
    assert (
        ActionLog.objects.get(action="account.password_changed").details["credentials_revoked"][
            "sessions"
        ]
        == 0
    )


@pytest.mark.django_db
def test_a_weak_password_in_the_admin_changes_nothing(agent, root):
    admin = _logged_in_client("root", "root-pass-123")

    response = admin.post(
        _admin_password_url(agent),
        {"password1": "123", "password2": "123", "usable_password": "true"},
    )

    assert response.status_code == 200
    agent.refresh_from_db()
    assert agent.check_password("agent-demo-pass")
    assert not ActionLog.objects.filter(action__startswith="account.password").exists()


@pytest.mark.django_db
def test_a_staff_member_changing_their_password_on_the_admins_own_page_is_audited(agent):
    # given an agent whose API token and a second session were issued under the old password
    elsewhere = _logged_in_client("agent", "agent-demo-pass")
    key = api_token_issue(user=agent).key
    staff = _logged_in_client("agent", "agent-demo-pass")

    # when they change it on the admin's "change my password" page (any staff login reaches it)
    assert staff.get(reverse("admin:password_change")).status_code == 200
    response = staff.post(
        reverse("admin:password_change"),
        {
            "old_password": "agent-demo-pass",
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )

    # then it went through the one password service: audited, the old credentials taken back
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.check_password(NEW_PASSWORD)
    assert api_token_stored(key) is None
    assert not Session.objects.filter(session_key=elsewhere.session.session_key).exists()
    row = ActionLog.objects.get(action="account.password_changed")
    assert row.actor == "staff:agent"
    assert row.details["credentials_revoked"] == {"api_tokens": 1, "sessions": 1}
    assert NEW_PASSWORD not in str(row.details)
    assert staff.get("/staff/").status_code == 200  # the page's own session goes on


@pytest.mark.django_db
def test_a_wrong_old_password_on_the_admins_own_page_changes_nothing(agent):
    staff = _logged_in_client("agent", "agent-demo-pass")

    response = staff.post(
        reverse("admin:password_change"),
        {"old_password": "not-it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 200
    agent.refresh_from_db()
    assert agent.check_password("agent-demo-pass")
    assert not ActionLog.objects.filter(action__startswith="account.password").exists()


@pytest.mark.django_db
def test_the_admins_own_password_page_is_still_for_staff_logins_only(alice):
    customer = _logged_in_client("alice@example.test", "alice-demo-pass")

    response = customer.get(reverse("admin:password_change"))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
