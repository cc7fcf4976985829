"""A customer's portal login never holds a staff flag, role or permission, by any path."""

from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.checks import run_checks
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.roles import AGENTS, SUPERVISORS
from accounts.selectors import is_staff_member, staff_member_logins
from accounts.services import roles_ensure, staff_user_ensure
from tests.accounts.test_admin_readonly import _user_form
from tests.factories import TicketFactory, api_key_for
from tickets.audit import audit_record, audit_verify
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


def _grant_in_the_database(login: User, how: str) -> None:
    """Give a login a staff flag, role or permission past every service (as before the rule)."""
    if how in ("staff", "superuser"):
        User.objects.filter(pk=login.pk).update(is_staff=True, is_superuser=how == "superuser")
    elif how == "supervisor":
        User.objects.filter(pk=login.pk).update(is_staff=True)
        login.groups.add(roles_ensure()[SUPERVISORS])
    else:
        User.objects.filter(pk=login.pk).update(is_staff=True)
        login.user_permissions.add(_work_ticket())


GRANTS = ["staff", "superuser", "supervisor", "permission"]


@pytest.mark.parametrize("how", GRANTS)
def test_a_customers_login_given_staff_roles_in_the_database_is_no_staff(alice, bob, how):
    # given Alice's login given a staff flag (and a role, a permission or superuser status)
    # in the database, around the rule; and Bob's ticket
    _grant_in_the_database(alice.user, how)
    bobs = TicketFactory(customer=bob)
    session = Client()
    session.force_login(alice.user)
    token = Client(HTTP_AUTHORIZATION=f"Token {api_key_for(alice.user)}")

    # when she tries the staff queue, the staff ticket page, the admin and the staff API
    queue = session.get("/staff/")
    page = session.get(f"/staff/tickets/{bobs.reference}/")
    admin_index = session.get("/admin/")
    admin_users = session.get("/admin/auth/user/")
    by_session = session.get(f"/api/v1/tickets/{bobs.reference}/")
    by_token = token.get(f"/api/v1/tickets/{bobs.reference}/")
    assign = token.post(
        f"/api/v1/tickets/{bobs.reference}/assign/",
        {"assignee": alice.user.username},
        content_type="application/json",
    )

    # then every door is shut: Bob's ticket is not found, the admin sends her to its login
    assert (queue.status_code, page.status_code) == (404, 404)
    assert admin_index.status_code == admin_users.status_code == 302
    assert admin_index["Location"].startswith("/admin/login/")
    assert (by_session.status_code, by_token.status_code, assign.status_code) == (404, 404, 404)
    bobs.refresh_from_db()
    assert bobs.assignee is None
    # and she is nobody a ticket can be assigned to
    alice.user.refresh_from_db()
    assert not is_staff_member(alice.user)
    assert alice.user.pk not in staff_member_logins().values_list("pk", flat=True)


def test_the_admin_login_form_refuses_a_customers_login_with_the_staff_flag(alice):
    # given Alice's login with the staff flag, set in the database
    _grant_in_the_database(alice.user, "superuser")
    client = Client()

    # when she signs in at the admin's login page with her right password
    response = client.post(
        "/admin/login/", {"username": alice.user.username, "password": "alice-demo-pass"}
    )

    # then it reads as a wrong password, and she is not signed in
    assert response.status_code == 200
    assert "for a staff account" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_staff_login_still_works_the_queue_and_enters_the_admin(agent_client, admin_client):
    assert agent_client.get("/staff/").status_code == 200
    assert admin_client.get("/admin/").status_code == 200


def test_migrate_and_the_database_check_name_each_customer_login_with_a_staff_role(
    alice, bob, agent
):
    # given Alice's login a supervisor and Bob's a holder of a permission, from before the rule
    _grant_in_the_database(alice.user, "supervisor")
    User.objects.filter(pk=bob.user.pk).update(is_superuser=True)
    bob.user.user_permissions.add(_work_ticket())

    # when the checks run with the database (as `migrate` and `check --database` run them)
    warnings = [w for w in run_checks(databases=["default"]) if w.id == "helpdesk.W002"]
    without_database = [w for w in run_checks() if w.id == "helpdesk.W002"]

    # then each is named, with what it holds and how to settle it; the staff login is not
    assert without_database == []
    assert [w.msg for w in warnings] == [
        f"The login 'alice@example.test' is the portal login of customer {alice.number} and "
        "holds staff status, group supervisors (database 'default'): a customer's login holds "
        "no staff status, superuser status, staff role or permission. It is not let into the "
        "admin, the staff pages or the staff API.",
        f"The login 'bob@example.test' is the portal login of customer {bob.number} and holds "
        "superuser status, permission tickets.work_ticket (database 'default'): a customer's "
        "login holds no staff status, superuser status, staff role or permission. It is not "
        "let into the admin, the staff pages or the staff API.",
    ]
    assert all("take the staff and superuser status" in w.hint for w in warnings)
    out = StringIO()
    call_command("check", "--database", "default", stdout=out, stderr=out)
    assert "helpdesk.W002" in out.getvalue()


def test_the_database_check_is_quiet_when_no_customer_login_holds_a_role(alice, agent):
    assert [w for w in run_checks(databases=["default"]) if w.id == "helpdesk.W002"] == []


def _menu(page: str) -> str:
    return page.split('class="site-nav"')[1].split("</nav>")[0]


@pytest.mark.parametrize("how", GRANTS)
def test_a_customers_login_with_a_stale_staff_flag_has_its_portal_menu_and_pages(
    alice, django_assert_num_queries, how
):
    # given Alice's own request, and what her home page costs her while her login is as it
    # should be
    ticket = TicketFactory(customer=alice, subject="My own request")
    session = Client()
    session.force_login(alice.user)
    with CaptureQueriesContext(connection) as plain:
        session.get("/")

    # when her login is given a staff flag (a role, a permission or superuser status) in the
    # database, around the rule
    _grant_in_the_database(alice.user, how)
    with django_assert_num_queries(len(plain.captured_queries)):
        home = session.get("/").content.decode()
    mine = session.get("/my/")

    # then she is shown her portal, not a staff queue that would not open for her, and it
    # opens: her requests and her preferences, at no extra query
    assert "/staff/" not in _menu(home)
    assert 'href="/my/"' in _menu(home) and "/preferences/" in _menu(home)
    assert 'href="/my/"' in home.split('class="site-header"')[1].split("</header>")[1]
    assert mine.status_code == 200 and ticket.reference in mine.content.decode()


@pytest.mark.parametrize("role", [AGENTS, SUPERVISORS])
def test_a_staff_member_is_shown_the_staff_queue_not_the_portals_menu(role):
    # given a staff member
    member = staff_user_ensure(username="worker", password="worker-pass-123", role=role)
    session = Client()
    session.force_login(member)

    # when they open the portal's home
    home = session.get("/").content.decode()

    # then their menu leads to the queue, not to a customer's pages
    assert 'href="/staff/"' in _menu(home)
    assert 'href="/my/"' not in home


def test_a_staff_flag_without_a_staff_role_is_no_way_to_the_staff_queue():
    # given a login with the staff flag alone (the admin, nothing more)
    login = User.objects.create_user(username="admin-only", password="x-pass-123", is_staff=True)
    session = Client()
    session.force_login(login)

    # when / then: no menu entry for a queue that answers it 404
    assert 'href="/staff/"' not in _menu(session.get("/").content.decode())
    assert session.get("/staff/").status_code == 404


def test_a_customers_login_with_a_stale_staff_flag_is_no_staff_on_the_audit_log(alice, agent):
    # given Alice's login holding a staff flag past the rule
    User.objects.filter(pk=alice.user.pk).update(is_staff=True)
    login = User.objects.get(pk=alice.user.pk)

    # when she and a staff member each act on the record
    audit_record(actor=login, action="test.by_login")
    audit_record(actor=agent, action="test.by_staff")

    # then the log names her as the login she is, and the staff member as staff
    actors = dict(ActionLog.objects.values_list("action", "actor"))
    assert actors["test.by_login"] == f"user:{login.username}"
    assert actors["test.by_staff"] == "staff:agent"
