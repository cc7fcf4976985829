"""Tickets sent without logging in from a customer's email on record are that customer's."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import Customer
from helpdesk.exceptions import ApplicationError
from tests.factories import CustomerFactory, TicketFactory, freeze_shown
from tests.tickets.test_inbound import SECRET as INBOUND_SECRET
from tests.tickets.test_inbound import payload, post
from tickets import services
from tickets.models import ActionLog, FieldChange, Notification, Ticket
from tickets.selectors.tickets import ticket_list
from tickets.services.freeze import account_unfreeze

S = Ticket.Status


def ask_logged_out(email: str, subject: str = "Slow website") -> Ticket:
    response = Client().post(
        "/requests/new/", {"subject": subject, "message": "It is slow.", "email": email}
    )
    assert response.status_code == 303
    return Ticket.objects.get(subject=subject)


def visible_to(customer) -> set[str]:
    return {t.reference for t in ticket_list(user=customer.user)}


def backdate(ticket: Ticket, when) -> Ticket:
    Ticket.objects.filter(pk=ticket.pk).update(created_at=when)
    ticket.refresh_from_db()
    return ticket


# --- at creation ---


@pytest.mark.django_db
def test_a_general_request_sent_logged_out_from_the_email_on_record_is_the_customers(
    alice, agent_client
):
    # given another ticket of Alice's
    earlier = TicketFactory(customer=alice, subject="Earlier")

    # when someone asks without logging in, giving Alice's address in another case
    ticket = ask_logged_out("ALICE@Example.test")

    # then the ticket is Alice's, marked as linked by its address, and audited so
    assert ticket.customer == alice
    assert ticket.customer_by_contact is True
    created = ActionLog.objects.get(ticket=ticket, action="ticket.created")
    assert created.details["customer_by_contact"] is True
    # Alice sees it among her requests; staff see it among her other tickets, with a warning
    assert ticket.reference in visible_to(alice)
    page = agent_client.get(f"/staff/tickets/{earlier.reference}/").content.decode()
    assert ticket.reference in page
    page = agent_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
    assert "identity was not confirmed" in page


@pytest.mark.django_db
def test_linking_does_not_change_what_the_typed_address_is_told(alice):
    # when the same request comes from Alice's address and from an address nobody has
    linked = ask_logged_out("alice@example.test", subject="First")
    unknown = ask_logged_out("nobody@example.test", subject="Second")

    # then both acknowledgements carry the same keys: the requester's subject is echoed to
    # neither, so the answer says nothing of whether the address is on record
    contexts = [Notification.objects.get(ticket=t).context for t in (linked, unknown)]
    assert "subject" not in contexts[0]
    assert set(contexts[0]) == set(contexts[1])
    assert unknown.customer is None and unknown.customer_by_contact is False


@pytest.mark.django_db
def test_only_general_requests_are_linked_at_creation(alice, settings):
    # given a password resend and a change request typed with Alice's address, logged out
    resend = services.request_password_resend(
        domain="alice-shop.test",
        contact_email="alice@example.test",
        client_key="10.0.0.1",
        actor="anonymous",
        channel=Ticket.Channel.PORTAL,
    )
    change = services.request_modify(
        email="alice@example.test",
        customer=None,
        changes={"phone": "+60399999999"},
        note="",
        client_key="10.0.0.2",
        actor="anonymous",
    )

    # then neither is linked by creation (the worker looks change requests up itself)
    for ticket in (resend, change):
        ticket.refresh_from_db()
        assert ticket.customer is None
        assert ticket.customer_by_contact is False


# --- tickets sent before linking: the command ---


@pytest.mark.django_db
def test_the_command_links_earlier_tickets_sent_while_the_address_was_the_customers(alice):
    # given a general request from Alice's address, unlinked (sent before tickets were linked)
    ticket = TicketFactory(customer=None, contact_email="Alice@example.test", status=S.RESOLVED)
    version = ticket.version
    # and tickets the command must leave alone
    resend = TicketFactory(
        customer=None, contact_email="alice@example.test", kind=Ticket.Kind.RESEND_PASSWORD
    )
    stranger = TicketFactory(customer=None, contact_email="stranger@example.test")

    # when
    call_command("link_tickets_to_customers", "--batch-size", "1")

    # then
    ticket.refresh_from_db()
    assert (ticket.customer, ticket.customer_by_contact) == (alice, True)
    assert ticket.version == version + 1
    row = ActionLog.objects.get(ticket=ticket, action="ticket.customer_linked")
    assert row.details == {"customer": alice.number, "by": "contact_email"}
    assert row.customer == alice
    for other in (resend, stranger):
        other.refresh_from_db()
        assert other.customer is None
    # and a second run finds nothing more to do
    call_command("link_tickets_to_customers")
    assert ActionLog.objects.filter(action="ticket.customer_linked").count() == 1


@pytest.mark.django_db
def test_a_ticket_sent_before_the_address_was_the_customers_stays_unlinked_and_unseen(alice, agent):
    # given a ticket from Alice's address sent a year before her record was made (the address
    # had another holder then), answered by staff
    before = backdate(
        TicketFactory(customer=None, contact_email="alice@example.test", subject="Old"),
        alice.created_at - timedelta(days=365),
    )

    # when
    call_command("link_tickets_to_customers")

    # then it is not hers, not even to read; staff still have it
    before.refresh_from_db()
    assert before.customer is None
    assert before.reference not in visible_to(alice)
    assert before.reference in {t.reference for t in ticket_list(user=agent)}


@pytest.mark.django_db
def test_an_address_taken_by_an_email_change_brings_none_of_its_earlier_tickets(
    alice, bob, settings
):
    # given a ticket sent from an address before Alice changed her email to it
    now = timezone.now()
    earlier = backdate(
        TicketFactory(customer=None, contact_email="shared@example.test", subject="Not hers"),
        now - timedelta(days=30),
    )
    change_request = TicketFactory(customer=alice, kind=Ticket.Kind.MODIFY_INFO, status=S.RESOLVED)
    FieldChange.objects.create(
        ticket=change_request,
        field="email",
        old_value=alice.email,
        new_value="shared@example.test",
        applied_at=now - timedelta(days=1),
    )
    alice.email = "shared@example.test"
    alice.save(update_fields=["email"])
    # and one sent from it after the change
    later = TicketFactory(customer=None, contact_email="shared@example.test", subject="Hers")

    # when
    call_command("link_tickets_to_customers")

    # then only the later one is hers
    earlier.refresh_from_db()
    later.refresh_from_db()
    assert earlier.customer is None
    assert later.customer == alice
    assert earlier.reference not in visible_to(alice)
    assert later.reference in visible_to(alice)


@pytest.mark.django_db
def test_an_unlinked_anonymous_request_from_another_customers_era_is_not_readable(alice):
    # given a change request for Alice's record typed before her record existed, still waiting
    old = backdate(
        TicketFactory(
            customer=None,
            contact_email="alice@example.test",
            kind=Ticket.Kind.MODIFY_INFO,
            status=S.EXPIRED,
        ),
        alice.created_at - timedelta(days=2),
    )

    # when Alice asks for it by the portal and the API
    client = Client()
    client.force_login(alice.user)

    # then it is not found
    assert client.get(f"/my/tickets/{old.reference}/").status_code == 404
    assert client.get(f"/api/v1/tickets/{old.reference}/").status_code == 404


@pytest.mark.django_db
def test_a_customer_created_after_a_ticket_does_not_get_it_linked(db):
    ticket = TicketFactory(customer=None, contact_email="late@example.test")
    backdate(ticket, timezone.now() - timedelta(days=3))
    late = CustomerFactory(email="late@example.test")

    call_command("link_tickets_to_customers")

    ticket.refresh_from_db()
    assert ticket.customer is None
    assert late.tickets.count() == 0


# --- a frozen or closed account: its address speaks for nobody ---


def lock_out(customer, status=Customer.AccountStatus.SUSPENDED) -> None:
    """The account as a freeze (or a closure) leaves it: its address is in dispute."""
    Customer.objects.filter(pk=customer.pk).update(account_status=status)
    customer.refresh_from_db()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "status", [Customer.AccountStatus.SUSPENDED, Customer.AccountStatus.CLOSED]
)
def test_a_request_from_a_frozen_accounts_address_is_not_filed_on_the_account(
    alice, agent_client, status
):
    # given Alice's account, frozen after she reported a takeover, and one of its tickets
    earlier = TicketFactory(customer=alice, subject="Earlier")
    lock_out(alice, status)

    # when whoever holds the address on record asks without logging in
    ticket = ask_logged_out("alice@example.test")

    # then the request is nobody's: it does not show on the account as the owner's
    assert (ticket.customer, ticket.customer_by_contact) == (None, False)
    created = ActionLog.objects.get(ticket=ticket, action="ticket.created")
    assert "customer_by_contact" not in created.details
    page = agent_client.get(f"/staff/tickets/{earlier.reference}/").content.decode()
    assert ticket.reference not in page
    # and once the freeze is lifted, the address speaks for the account again
    lock_out(alice, Customer.AccountStatus.ACTIVE)
    assert ask_logged_out("alice@example.test", subject="After").customer == alice


@pytest.mark.django_db
def test_authenticated_mail_from_a_frozen_accounts_address_is_not_taken_as_the_owners(
    client, alice, settings
):
    # given Alice's frozen account
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": INBOUND_SECRET}
    lock_out(alice)

    # when mail our server authenticated as sent from its address asks for help
    response = post(client, payload(sender="alice@example.test", subject="Lift the freeze"))

    # then it is a request of no account, answered with our standard text only
    assert response.status_code == 200
    ticket = Ticket.objects.get(subject="Lift the freeze")
    assert (ticket.customer, ticket.customer_by_contact) == (None, False)
    acknowledgement = Notification.objects.get(ticket=ticket)
    assert "subject" not in acknowledgement.context


@pytest.mark.django_db
def test_the_command_links_nothing_to_a_frozen_account_until_the_freeze_is_lifted(alice):
    # given a general request from Alice's address, unlinked, and her account frozen
    ticket = TicketFactory(customer=None, contact_email="alice@example.test")
    lock_out(alice)

    # when the command runs
    call_command("link_tickets_to_customers")

    # then the ticket stays nobody's
    ticket.refresh_from_db()
    assert ticket.customer is None
    assert not ActionLog.objects.filter(action="ticket.customer_linked").exists()
    # until a supervisor lifts the freeze
    lock_out(alice, Customer.AccountStatus.ACTIVE)
    call_command("link_tickets_to_customers")
    ticket.refresh_from_db()
    assert ticket.customer == alice


@pytest.mark.django_db
@pytest.mark.parametrize("sent_by", ["form", "authenticated mail"])
def test_what_was_sent_from_her_address_while_frozen_stays_off_her_pages_once_it_is_lifted(
    client, alice, alice_client, agent, supervisor, settings, sent_by
):
    # given Alice's account, frozen, and a request from its address meanwhile: nobody's
    lock_out(alice)
    if sent_by == "form":
        ticket = ask_logged_out("alice@example.test", subject="Send the code to +60 3 5555 0100")
    else:
        settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": INBOUND_SECRET}
        post(
            client,
            payload(sender="alice@example.test", subject="Send the code to +60 3 5555 0100"),
        )
        ticket = Ticket.objects.get(subject="Send the code to +60 3 5555 0100")
    assert ticket.customer is None
    own = TicketFactory(customer=alice, subject="Mine", contact_email="alice@example.test")

    # when a supervisor lifts the freeze, and she signs in again (a login let back in keeps no
    # session of before)
    account_unfreeze(
        customer=alice,
        freeze_version=freeze_shown(alice),
        actor=supervisor,
        reason="Passport checked",
    )
    alice_client.force_login(alice.user)

    # then the request is on none of her pages, as a stranger's is: not listed, not found
    assert ticket.reference not in visible_to(alice)
    listed = alice_client.get("/my/").content.decode()
    assert ticket.reference not in listed and "5555" not in listed
    assert alice_client.get(f"/my/tickets/{ticket.reference}/").status_code == 404
    assert alice_client.get(f"/api/v1/tickets/{ticket.reference}/").status_code == 404
    assert alice_client.get("/api/v1/tickets/", {"q": "5555"}).json()["results"] == []
    # and staff cannot merge its words into a ticket she reads
    with pytest.raises(ApplicationError):
        services.ticket_merge(ticket=ticket, into=own, actor=agent)
