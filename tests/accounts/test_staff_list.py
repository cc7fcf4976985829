"""The staff list kept in the cache offers no login that may no longer be assigned."""

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import AGENTS
from accounts.selectors import staff_member_list
from accounts.services import roles_ensure, staff_list_changed, staff_user_ensure
from tests.accounts.test_admin_readonly import _user_form
from tests.factories import TicketFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, supervisor):
    root = staff_user_ensure(username="root", password="root-pass-123", role=None, superuser=True)
    client.force_login(root)
    return client


@pytest.fixture
def colleague(db):
    return staff_user_ensure(username="colleague", password="colleague-pass", role=AGENTS)


def _assignees(client, ticket) -> list[str]:
    page = client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
    menu = page.split('name="assignee"')[1].split("</select>")[0]
    return re.findall(r'<option value="([^"]+)"', menu)


@pytest.mark.parametrize(
    "change",
    [{"groups": []}, {"is_active": ""}, {"is_staff": ""}],
    ids=["role-taken", "turned-off", "staff-flag-taken"],
)
def test_a_login_changed_in_the_admin_is_offered_no_more(
    agent_client, admin_client, colleague, change
):
    # given a ticket page that offered the colleague (the list kept since)
    ticket = TicketFactory()
    assert "colleague" in _assignees(agent_client, ticket)

    # when a superuser takes their role, turns their login off or takes their staff flag
    response = admin_client.post(
        f"/admin/auth/user/{colleague.pk}/change/", _user_form(colleague, **change)
    )

    # then the next page offers them no more
    assert response.status_code == 302
    assert "colleague" not in _assignees(agent_client, ticket)


def test_a_login_deleted_in_the_admin_is_offered_no_more(agent_client, admin_client, colleague):
    # given a ticket page that offered the colleague
    ticket = TicketFactory()
    assert "colleague" in _assignees(agent_client, ticket)

    # when a superuser deletes their login
    response = admin_client.post(f"/admin/auth/user/{colleague.pk}/delete/", {"post": "yes"})

    # then the next page offers them no more
    assert response.status_code == 302
    assert "colleague" not in _assignees(agent_client, ticket)


def test_a_role_that_loses_the_permission_in_the_admin_offers_its_logins_no_more(
    supervisor_client, admin_client, colleague
):
    # given a ticket page that offered the colleague, an agent
    ticket = TicketFactory()
    assert "colleague" in _assignees(supervisor_client, ticket)
    agents = roles_ensure()[AGENTS]
    work = Permission.objects.get(content_type__app_label="tickets", codename="work_ticket")

    # when a superuser takes the permission to work tickets from the agents' role
    kept = [str(pk) for pk in agents.permissions.exclude(pk=work.pk).values_list("pk", flat=True)]
    response = admin_client.post(
        f"/admin/auth/group/{agents.pk}/change/", {"name": agents.name, "permissions": kept}
    )

    # then the next page offers no agent, only those who still work tickets
    assert response.status_code == 302
    assert _assignees(supervisor_client, ticket) == ["root", "supervisor"]


def test_a_list_read_before_a_change_commits_is_not_kept_past_the_commit(
    colleague, django_capture_on_commit_callbacks
):
    # given a change of who is staff, not yet committed, and a list read meanwhile (another
    # request reads the rows as they were before the commit)
    with django_capture_on_commit_callbacks(execute=True):
        staff_list_changed()
        assert [member.username for member in staff_member_list()] == ["colleague"]

    # when the change is committed, then the list is read again
    with CaptureQueriesContext(connection) as captured:
        assert [member.username for member in staff_member_list()] == ["colleague"]
    assert len(captured.captured_queries) == 1


def test_the_list_is_read_once_and_kept(colleague, django_assert_num_queries):
    # given the list read once
    first = staff_member_list()

    # when / then: read again, from the cache
    with django_assert_num_queries(0):
        assert staff_member_list() == first


def test_the_ticket_page_offers_the_staff_while_the_cache_is_unreachable(
    agent_client, colleague, cache_unreachable
):
    assert _assignees(agent_client, TicketFactory()) == ["agent", "colleague"]


@pytest.mark.parametrize(
    "change",
    [{"is_active": False}, {"is_staff": False}, {"username": "renamed"}],
    ids=["turned-off", "staff-flag-taken", "renamed"],
)
@pytest.mark.parametrize("update_fields", [None, "the changed one"])
def test_a_login_changed_from_a_shell_is_shown_as_it_is_at_once(
    agent_client, colleague, change, update_fields
):
    # given a ticket page that offered the colleague (the list kept since)
    ticket = TicketFactory()
    assert "colleague" in _assignees(agent_client, ticket)

    # when a shell or a data fix saves the login changed, no service told
    for name, value in change.items():
        setattr(colleague, name, value)
    colleague.save(update_fields=None if update_fields is None else list(change))

    # then the next page shows the list as the rows are, not for up to a minute as it was
    offered = _assignees(agent_client, ticket)
    assert "colleague" not in offered
    assert ("renamed" in offered) == ("username" in change)


def test_a_login_deleted_from_a_shell_is_offered_no_more(agent_client, colleague):
    # given a ticket page that offered the colleague (the list kept since)
    ticket = TicketFactory()
    assert "colleague" in _assignees(agent_client, ticket)

    # when a shell deletes their login, no service told
    colleague.delete()

    # then the next page offers them no more
    assert "colleague" not in _assignees(agent_client, ticket)


def test_a_role_taken_from_a_shell_is_shown_at_once(agent_client, colleague):
    # given a ticket page that offered the colleague, an agent (the list kept since)
    ticket = TicketFactory()
    agents = roles_ensure()[AGENTS]
    assert "colleague" in _assignees(agent_client, ticket)

    # when a shell takes the agents' role from them
    colleague.groups.remove(agents)

    # then the next page offers them no more
    assert "colleague" not in _assignees(agent_client, ticket)


@pytest.mark.parametrize("how", ["role's permission", "role deleted", "roles cleared"])
def test_access_taken_from_a_shell_is_shown_at_once(supervisor_client, colleague, how):
    # given a ticket page that offered the colleague, an agent (the list kept since)
    ticket = TicketFactory()
    agents = roles_ensure()[AGENTS]
    assert "colleague" in _assignees(supervisor_client, ticket)

    # when a shell takes the permission to work tickets from the role, deletes the role, or
    # clears the colleague's roles
    if how == "role's permission":
        agents.permissions.remove(
            Permission.objects.get(content_type__app_label="tickets", codename="work_ticket")
        )
    elif how == "role deleted":
        agents.delete()
    else:
        colleague.groups.clear()

    # then the next page offers them no more
    assert "colleague" not in _assignees(supervisor_client, ticket)


def test_a_permission_given_to_a_login_from_a_shell_is_shown_at_once(agent_client, db):
    # given a staff login with no role, not offered (the list kept since)
    newcomer = User.objects.create_user(username="newcomer", password="x-pass-123", is_staff=True)
    ticket = TicketFactory()
    assert "newcomer" not in _assignees(agent_client, ticket)

    # when a shell gives them the permission to work tickets directly
    newcomer.user_permissions.add(
        Permission.objects.get(content_type__app_label="tickets", codename="work_ticket")
    )

    # then the next page offers them
    assert "newcomer" in _assignees(agent_client, ticket)
