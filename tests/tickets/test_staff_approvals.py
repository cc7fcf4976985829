import importlib
import re
import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from accounts.models import Customer
from helpdesk.exceptions import ApplicationError
from tests.factories import CustomerFactory, TicketFactory
from tests.markers import postgresql_only
from tests.tickets.test_staff import confirmed_email_change, modify_ticket
from tests.tickets.verification_helpers import link_token, owner_request, verification_mail
from tickets import services
from tickets.audit import audit_verify
from tickets.models import FieldChange, Ticket
from tickets.services.modify_approval import (
    MODIFY_EMAIL_TAKEN,
    MODIFY_STAFF_ONLY,
    ApprovalForbidden,
)

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


@postgresql_only("two transactions that each wait on the other's new email")
@pytest.mark.django_db(transaction=True)
def test_two_approvals_at_once_giving_two_accounts_one_address_refuse_one_cleanly(
    alice, bob, supervisor, settings, monkeypatch
):
    # given two accounts each asking, verified, for the same new address
    wanted = "shared@example.net"
    tickets = []
    for customer in (alice, bob):
        ticket = modify_ticket(customer, {"email": wanted}, settings)
        token = link_token(verification_mail(ticket, "verify_new_email"))
        services.verification_confirm(token=token, client_key="10.0.0.3", actor="anonymous")
        tickets.append(ticket)
    # and both approvals find the address free before either is saved
    both_looked = threading.Barrier(2, timeout=10)
    # The module, not the function of that name the services package exports.
    modify_approval = importlib.import_module("tickets.services.modify_approval")
    lookup = modify_approval.customer_get_by_email

    def look_then_wait(**kwargs):
        found = lookup(**kwargs)
        both_looked.wait()
        return found

    monkeypatch.setattr(modify_approval, "customer_get_by_email", look_then_wait)
    outcomes: list[object] = []

    def approve(ticket: Ticket) -> None:
        close_old_connections()
        try:
            services.ticket_approve(ticket=ticket, actor=supervisor)
            outcomes.append("applied")
        except Exception as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    # when two supervisors approve at once
    threads = [threading.Thread(target=approve, args=(t,)) for t in tickets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # then one account has the address, and the other approval is a clear refusal, not a 500
    assert outcomes.count("applied") == 1
    [refused] = [o for o in outcomes if o != "applied"]
    assert isinstance(refused, ApplicationError)
    assert str(refused.message) == MODIFY_EMAIL_TAKEN
    holders = [c.full_name for c in Customer.objects.filter(email__iexact=wanted)]
    assert len(holders) == 1
    assert audit_verify().ok


# --- a name that imitates another ---

# "Alice" with a Cyrillic capital A: it reads as Alice.
LOOKALIKE = "\u0410lice Tan"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "mark"),
    [
        (LOOKALIKE, "Mixed alphabets"),
        # "Alice" in Cyrillic letters throughout: A, palochka, Ukrainian i, es, ie
        ("\u0410\u04cf\u0456\u0441\u0435 Tan", "Looks Latin"),
        ("Alice Tan Mei Ling", None),
        # two alphabets in two words is a name written in both, not a look-alike
        ("Alice \u0645\u062d\u0645\u062f", None),
        ("\u7530\u4e2d \u3072\u308d\u3057", None),
    ],
)
def test_a_name_that_imitates_another_is_marked_for_the_supervisor(
    alice, supervisor_client, name, mark
):
    # given Alice's request to change her name, waiting for a supervisor
    ticket = owner_request(alice, {"full_name": name})

    # when a supervisor reads the approvals list and the ticket
    pages = [
        supervisor_client.get("/staff/approvals/").content.decode(),
        supervisor_client.get(f"/staff/tickets/{ticket.reference}/").content.decode(),
    ]

    # then the new name carries its mark on both where it imitates another, and only then
    for page in pages:
        assert name in page
        assert [m for m in ("Mixed alphabets", "Looks Latin") if m in page] == (
            [mark] if mark else []
        )


@pytest.mark.django_db
def test_a_customer_whose_login_was_made_a_supervisor_cannot_approve_their_own_change(
    alice, supervisor
):
    # given Alice asked for a new name, and her portal login was given a supervisor's role since
    # (the admin's user page lets anyone's login be given one)
    ticket = owner_request(alice, {"full_name": "Alice Wong"})
    login = alice.user
    login.is_staff = True
    login.save(update_fields=["is_staff"])
    login.groups.set(supervisor.groups.all())
    login = type(login).objects.get(pk=login.pk)

    # when she approves her own request
    with pytest.raises(ApprovalForbidden) as refused:
        services.ticket_approve(ticket=ticket, actor=login)

    # then it is refused: a customer's login is no staff member, whatever role it holds (and
    # the supervisor's look would be someone else's)
    assert refused.value.message == MODIFY_STAFF_ONLY
    alice.refresh_from_db()
    assert alice.full_name == "Alice Tan"
    # and another supervisor still can
    services.ticket_approve(ticket=ticket, actor=supervisor)
    alice.refresh_from_db()
    assert alice.full_name == "Alice Wong"
