"""Django's own commands that make logins or dump rows, held to the promises the services keep."""

import json
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from tickets.audit import audit_verify
from tickets.models import ActionLog

pytestmark = pytest.mark.django_db


def test_a_superuser_made_by_createsuperuser_is_on_the_audit_chain(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-root-pass-for-ops-42")

    call_command(
        "createsuperuser", "--noinput", username="root2", email="root2@ops.test", stdout=StringIO()
    )

    row = ActionLog.objects.get(action="account.user_created")
    assert row.actor == "command:createsuperuser"
    assert row.details["user"] == "root2"
    assert row.details["changes"]["is_superuser"] == {"from": None, "to": True}
    assert "password" not in json.dumps(row.details)
    assert audit_verify().ok


def test_a_refused_createsuperuser_leaves_no_row_and_no_login(alice):
    with pytest.raises(Exception, match=alice.number):
        call_command(
            "createsuperuser",
            "--noinput",
            username="root3",
            email="alice@example.test",
            stdout=StringIO(),
        )

    assert not User.objects.filter(username="root3").exists()
    assert not ActionLog.objects.filter(action="account.user_created").exists()


@pytest.mark.parametrize("labels", [(), ("sessions",), ("sessions.session",)])
def test_dumpdata_never_writes_a_session_key(supervisor, labels):
    browser = Client()
    browser.force_login(supervisor)
    key = browser.session.session_key
    assert key
    out = StringIO()

    call_command("dumpdata", *labels, stdout=out)

    assert key not in out.getvalue()


def test_dumpdata_still_writes_the_other_rows(alice):
    out = StringIO()

    call_command("dumpdata", "accounts.customer", stdout=out)

    assert alice.number in out.getvalue()


def _fixture(tmp_path, rows):
    path = tmp_path / "logins.json"
    path.write_text(json.dumps(rows))
    return str(path)


def test_logins_made_or_raised_by_loaddata_are_on_the_audit_chain(agent, tmp_path):
    # given a fixture that makes the agent a superuser and adds a superuser of its own
    stored = User.objects.get(pk=agent.pk)
    rows = [
        {
            "model": "auth.user",
            "pk": agent.pk,
            "fields": {
                "username": "agent",
                "password": "pbkdf2_sha256$1000000$salt$forged",
                "is_superuser": True,
                "is_staff": True,
                "is_active": True,
                "date_joined": stored.date_joined.isoformat(),
            },
        },
        {
            "model": "auth.user",
            "fields": {
                "username": "ghost",
                "password": "!",
                "is_superuser": True,
                "is_staff": True,
                "is_active": True,
                "date_joined": stored.date_joined.isoformat(),
            },
        },
    ]

    # when it is loaded
    call_command("loaddata", _fixture(tmp_path, rows), stdout=StringIO())

    # then each login's change, its password too, is on the chain, by the command
    logged = {
        row.details["user"]: row
        for row in ActionLog.objects.filter(action__startswith="account.user_")
    }
    raised = logged["agent"]
    assert raised.action == "account.user_changed"
    assert raised.actor == "command:loaddata"
    assert raised.details["changes"]["is_superuser"] == {"from": False, "to": True}
    assert raised.details["changes"]["password"] == {"from": "set", "to": "replaced"}
    assert "forged" not in json.dumps(raised.details)
    made = logged["ghost"]
    assert made.action == "account.user_created"
    assert made.details["changes"]["is_superuser"] == {"from": None, "to": True}
    assert audit_verify().ok


def test_loaddata_of_rows_that_are_no_logins_writes_no_login_row(tmp_path):
    rows = [{"model": "auth.group", "fields": {"name": "readers", "permissions": []}}]

    call_command("loaddata", _fixture(tmp_path, rows), stdout=StringIO())

    assert not ActionLog.objects.filter(action__startswith="account.user_").exists()
