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
