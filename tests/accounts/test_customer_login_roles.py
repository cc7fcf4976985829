"""A customer's portal login never holds a staff flag, role or permission, by any path."""

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError

from accounts.roles import AGENTS, SUPERVISORS
from accounts.services import roles_ensure, staff_user_ensure
from tests.accounts.test_admin_readonly import _user_form
from tickets.audit import audit_verify
from tickets.models import ActionLog

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    root = User.objects.create_superuser("root", "root@exabytes.example", "root-pass-123")
    client.force_login(root)
    return client


def _work_ticket() -> Permission:
    return Permission.objects.get(content_type__app_label="tickets", codename="work_ticket")


def _roles_of(user: User) -> tuple:
    user.refresh_from_db()
    return (
        user.is_staff,
        user.is_superuser,
        list(user.groups.all()),
        list(user.user_permissions.all()),
    )


@pytest.mark.parametrize(
    "grant",
    [
        lambda groups: {"is_staff": "on"},
        lambda groups: {"is_superuser": "on"},
        lambda groups: {"is_staff": "on", "groups": [str(groups[SUPERVISORS].pk)]},
        lambda groups: {"groups": [str(groups[AGENTS].pk)]},
        lambda groups: {"user_permissions": [str(_work_ticket().pk)]},
    ],
    ids=["staff", "superuser", "supervisor", "agents-group", "permission"],
)
def test_the_admin_gives_a_customers_login_no_staff_role(admin_client, alice, grant):
    # given Alice's portal login
    login = alice.user

    # when a superuser gives it a staff flag, a role or a permission
    response = admin_client.post(
        f"/admin/auth/user/{login.pk}/change/", _user_form(login, **grant(roles_ensure()))
    )

    # then the form says why, and nothing is saved or recorded
    assert response.status_code == 200
    assert f"portal login of customer {alice.number}" in response.content.decode()
    assert _roles_of(login) == (False, False, [], [])
    assert not ActionLog.objects.filter(action="account.user_changed").exists()


def test_the_admin_still_changes_a_customers_login_otherwise(admin_client, alice):
    # when a superuser turns Alice's login off
    response = admin_client.post(
        f"/admin/auth/user/{alice.user.pk}/change/", _user_form(alice.user, is_active="")
    )

    # then it is saved, and on the chain
    assert response.status_code == 302
    alice.user.refresh_from_db()
    assert not alice.user.is_active
    assert audit_verify().ok


@pytest.mark.parametrize("superuser", [False, True])
def test_a_staff_login_is_not_made_of_a_customers_login(alice, superuser):
    # given Alice's login, renamed (by hand, in the database) to the name a staff login has,
    # without an address (so the login address rule has nothing to refuse)
    User.objects.filter(pk=alice.user.pk).update(username="agent", email="")

    # when the staff login "agent" is ensured (seed_demo's path)
    with pytest.raises(ValidationError, match=f"portal login of customer {alice.number}"):
        staff_user_ensure(
            username="agent", password="agent-demo-pass", role=AGENTS, superuser=superuser
        )

    # then Alice's login is as it was
    assert _roles_of(alice.user) == (False, False, [], [])
