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
