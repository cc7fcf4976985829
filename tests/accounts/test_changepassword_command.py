"""`manage.py changepassword` sets a password through the one service: audited, credentials
taken back, and a customer's password left to the customer."""

import getpass

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import ApiToken
from accounts.services import api_token_issue
from tickets.audit import audit_verify
from tickets.models import ActionLog

NEW_PASSWORD = "a-brand-new-pass-42"

pytestmark = pytest.mark.django_db


@pytest.fixture
def typed(monkeypatch):
    """What the operator types at the password prompts, in turn."""
    answers: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": answers.pop(0))
    return answers


def test_a_staff_password_set_from_the_shell_is_audited_and_takes_back_credentials(agent, typed):
    # given the agent signed in, with an API token
    browser = Client()
    browser.force_login(agent)
    api_token_issue(user=agent, name="laptop")
    typed.extend([NEW_PASSWORD, NEW_PASSWORD])

    # when an operator sets the agent's password from the shell
    call_command("changepassword", "agent")

    # then it is the new password, every credential of the old one is gone, and the chain says so
    agent.refresh_from_db()
    assert agent.check_password(NEW_PASSWORD)
    assert not ApiToken.objects.filter(user=agent).exists()
    assert not [s for s in Session.objects.all() if s.get_decoded().get(SESSION_KEY)]
    row = ActionLog.objects.get(action="account.password_reset")
    assert row.actor == "command:changepassword"
    assert row.details["credentials_revoked"] == {"api_tokens": 1, "sessions": 1}
    assert NEW_PASSWORD not in str(row.details)
    assert audit_verify().ok


def test_a_customers_password_is_not_set_from_the_shell(alice, typed):
    # when an operator tries to give Alice's portal login a password
    typed.extend([NEW_PASSWORD, NEW_PASSWORD])
    with pytest.raises(CommandError, match="set by the customer alone"):
        call_command("changepassword", alice.user.username)

    # then it is still hers, and nothing was asked or written
    alice.user.refresh_from_db()
    assert alice.user.check_password("alice-demo-pass")
    assert typed == [NEW_PASSWORD, NEW_PASSWORD]
    assert not ActionLog.objects.filter(action__startswith="account.password").exists()


def test_three_refused_passwords_change_nothing(agent, typed):
    # given a mismatch, then a password the validators refuse twice
    typed.extend([NEW_PASSWORD, "something-else-42", "agent", "agent", "12345678", "12345678"])

    # when the operator gives up after three tries
    with pytest.raises(CommandError, match="after 3 attempts"):
        call_command("changepassword", "agent")

    # then the password is the one it was
    agent.refresh_from_db()
    assert agent.check_password("agent-demo-pass")
    assert not ActionLog.objects.filter(action="account.password_reset").exists()


def test_an_unknown_login_is_named(typed):
    with pytest.raises(CommandError, match="'nobody' does not exist"):
        call_command("changepassword", "nobody")
