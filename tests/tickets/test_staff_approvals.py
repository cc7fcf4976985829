import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import CustomerFactory, TicketFactory
from tests.tickets.test_staff import confirmed_email_change, modify_ticket
from tickets import services
from tickets.models import FieldChange, Ticket

S = Ticket.Status


def change_request(customer, field, *, status=S.OPEN, applied=False, age_days=0):
    ticket = TicketFactory(
        kind=Ticket.Kind.MODIFY_INFO, customer=customer, status=status, verified_by="session"
    )
    Ticket.objects.filter(pk=ticket.pk).update(created_at=timezone.now() - timedelta(days=age_days))
    FieldChange.objects.create(
        ticket=ticket,
        field=field,
        old_value="old",
        new_value="new",
        applied_at=timezone.now() if applied else None,
    )
    return ticket


@pytest.mark.django_db
def test_the_approvals_list_holds_exactly_what_modify_approval_says_waits_for_a_supervisor(
    supervisor,
):
    # given change requests of every shape
    customer = CustomerFactory()
    tickets = [
        change_request(customer, "full_name"),
        change_request(customer, "email", status=S.AWAITING_CUSTOMER),
        change_request(customer, "phone"),
        change_request(customer, "full_name", applied=True),
        change_request(customer, "full_name", status=S.RESOLVED),
        change_request(customer, "email", status=S.AWAITING_VERIFICATION),
        TicketFactory(kind=Ticket.Kind.GENERAL, customer=customer),
    ]

    # when
    listed = set(services.modify_awaiting_supervisor().values_list("pk", flat=True))

    # then the list and the approval rule agree on every ticket
    for ticket in tickets:
        approval = services.modify_approval(ticket, supervisor)
        assert (ticket.pk in listed) == (approval.possible and approval.needs_supervisor)
    assert listed == {tickets[0].pk, tickets[1].pk}


@pytest.mark.django_db
def test_a_supervisor_sees_waiting_changes_oldest_first_with_the_diff(
    supervisor_client, alice, settings
):
    # given an email change whose new address is confirmed, and an older name change
    newer = confirmed_email_change(alice, settings)
    older = change_request(CustomerFactory(full_name="Bob Lim"), "full_name", age_days=3)
    phone_only = modify_ticket(alice, {"phone": "+60 12 345 6789"}, settings)

    # when
    page = supervisor_client.get("/staff/approvals/").content.decode()

    # then oldest first, with the diff inline, and nothing an agent may approve
    references = re.findall(r'href="/staff/tickets/(HD-[0-9A-Z]{8})/"', page)
    assert references == [older.reference, newer.reference]
    assert phone_only.reference not in page
    assert "<del>alice@example.test</del>" in page
    assert "<ins>alice.new@example.net</ins>" in page
    assert "2 change requests wait for a supervisor" in page
    assert 'href="/staff/approvals/" aria-current="page"' in page


@pytest.mark.django_db
def test_the_approvals_list_reads_a_constant_number_of_queries(
    supervisor_client, django_assert_num_queries
):
    customer = CustomerFactory()
    for _ in range(3):
        change_request(customer, "full_name")
    for _ in range(20):
        change_request(customer, "email")
    # session, user, permissions (own and groups'), the tickets with customer and assignee,
    # their pending changes
    with django_assert_num_queries(5):
        response = supervisor_client.get("/staff/approvals/")
    assert response.status_code == 200
    assert "23 change requests wait" in response.content.decode()


@pytest.mark.django_db
def test_an_agent_has_no_approvals_tab_and_is_refused_the_list(agent_client):
    assert "/staff/approvals/" not in agent_client.get("/staff/").content.decode()
    assert agent_client.get("/staff/approvals/").status_code == 403


@pytest.mark.django_db
def test_the_dashboard_counts_the_approvals_waiting(supervisor_client, agent_client):
    customer = CustomerFactory()
    change_request(customer, "full_name")
    change_request(customer, "email")
    change_request(customer, "phone")

    page = agent_client.get("/staff/dashboard/").content.decode()
    assert re.search(r'id="approvals-waiting">2<', page)
    assert "/staff/approvals/" not in page
    page = supervisor_client.get("/staff/dashboard/").content.decode()
    assert 'href="/staff/approvals/">See them' in page
