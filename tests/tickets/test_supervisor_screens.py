"""The audit log, approvals and disclosures: their readers are chosen where the rows are read."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from accounts.roles import SUPERVISORS
from accounts.services import roles_ensure
from helpdesk.exceptions import StaffForbidden
from tests.factories import CustomerFactory
from tests.tickets.test_staff_approvals import change_request
from tickets import services
from tickets.audit import audit_record
from tickets.selectors.audit import AUDIT_LOG_FORBIDDEN, audit_actions, audit_log_page
from tickets.selectors.export import customer_disclosures_for
from tickets.services import modify_approvals_waiting
from tickets.services.modify_approval import APPROVALS_FORBIDDEN


def _customer_login_as_supervisor(customer) -> User:
    """A customer's login given the staff flag and the supervisors' role around every service."""
    User.objects.filter(pk=customer.user.pk).update(is_staff=True)
    login = User.objects.get(pk=customer.user.pk)
    login.groups.add(roles_ensure()[SUPERVISORS])
    return login


@pytest.mark.django_db
def test_the_audit_log_is_read_by_supervisors_only_whoever_asks(agent, supervisor, alice):
    # given a row on the log
    audit_record(actor="system", action="test.row", details={"secret": "x"})

    # when / then: a supervisor reads it; an agent, a customer's login holding a supervisor's
    # role, and nobody are refused by the read itself, not only by the page in front of it
    rows, _ = audit_log_page(user=supervisor, action="test.row")
    assert [row.action for row in rows] == ["test.row"]
    assert "test.row" in audit_actions(user=supervisor)
    for reader in (agent, _customer_login_as_supervisor(alice), None):
        with pytest.raises(StaffForbidden) as refused:
            audit_log_page(user=reader)
        assert refused.value.message == AUDIT_LOG_FORBIDDEN
        with pytest.raises(StaffForbidden):
            audit_actions(user=reader)


@pytest.mark.django_db
def test_the_approvals_list_is_read_by_supervisors_only_whoever_asks(agent, supervisor, alice):
    # given a change of name waiting for a supervisor
    waiting = change_request(CustomerFactory(), "full_name")

    # when / then
    assert modify_approvals_waiting(user=supervisor, limit=10) == ([waiting], 1)
    for reader in (agent, _customer_login_as_supervisor(alice), None):
        with pytest.raises(StaffForbidden) as refused:
            modify_approvals_waiting(user=reader, limit=10)
        assert refused.value.message == APPROVALS_FORBIDDEN


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/staff/audit/", "/staff/approvals/"])
def test_an_agent_is_refused_the_page_with_the_reason_and_a_supervisor_reads_it(
    agent_client, supervisor_client, path
):
    refused = agent_client.get(path)
    assert refused.status_code == 403
    assert "Only a supervisor can" in refused.content.decode()
    assert supervisor_client.get(path).status_code == 200


@pytest.mark.django_db
def test_the_disclosure_register_is_shown_to_its_keepers_only(agent, supervisor, alice):
    # given a disclosure on record
    services.disclosure_record(
        customer=alice,
        actor=supervisor,
        disclosed_to="Police",
        information="Name and email",
        legal_basis="Court order 12/2026",
    )

    # when / then: the register is read for a supervisor, for nobody else, page or selector
    assert [d.disclosed_to for d in customer_disclosures_for(user=supervisor, customer=alice)] == [
        "Police"
    ]
    for reader in (agent, _customer_login_as_supervisor(alice), None):
        assert customer_disclosures_for(user=reader, customer=alice) is None
    for user, shown in ((agent, False), (supervisor, True)):
        client = Client()
        client.force_login(user)
        page = client.get(f"/staff/customers/{alice.number}/").content.decode()
        assert ("Court order 12/2026" in page) is shown
