"""A customer's own request that began before the account was frozen or closed writes nothing.

Sign-in refuses a locked-out account, but a request signed in just before (a page posted, an
API call) is already past that check: the services read the account again under its lock.
"""

import pytest
from django.utils.html import escape

from accounts.models import Customer
from helpdesk.exceptions import TransitionNotAllowed
from tests.factories import TicketFactory
from tickets import services
from tickets.models import Message, Ticket
from tickets.services.freeze import ACCOUNT_FROZEN
from tickets.services.lifecycle import ACCOUNT_CLOSED
from tickets.views import my_tickets

S = Ticket.Status

pytestmark = pytest.mark.django_db

LOCKED_OUT = [
    (Customer.AccountStatus.SUSPENDED, ACCOUNT_FROZEN),
    (Customer.AccountStatus.CLOSED, ACCOUNT_CLOSED),
]


def signed_in_then(customer: Customer, status: str) -> Customer:
    """The customer as a request loaded it at sign-in; the account is `status` since."""
    loaded = Customer.objects.get(pk=customer.pk)
    Customer.objects.filter(pk=customer.pk).update(account_status=status)
    return loaded


def locked_out_before(module, service: str, customer: Customer, status: str, monkeypatch) -> None:
    """The account is `status` after a page's sign-in check, just before it calls `service`."""
    call = getattr(module, service)

    def locked_out_meanwhile(**kwargs):
        Customer.objects.filter(pk=customer.pk).update(account_status=status)
        return call(**kwargs)

    monkeypatch.setattr(module, service, locked_out_meanwhile)


@pytest.mark.parametrize(("status", "refusal"), LOCKED_OUT)
def test_a_reply_signed_in_before_the_account_was_locked_out_is_refused(alice, status, refusal):
    ticket = TicketFactory(customer=alice, status=S.AWAITING_CUSTOMER)
    signed_in = signed_in_then(alice, status)

    with pytest.raises(TransitionNotAllowed) as refused:
        services.ticket_reply_add(
            ticket=ticket,
            body="Reply from a locked-out account",
            actor=signed_in,
            author=Message.Author.CUSTOMER,
            channel=Ticket.Channel.API,
            author_user=signed_in.user,
        )

    assert refused.value.message == refusal
    assert not ticket.messages.exists()
    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_CUSTOMER


@pytest.mark.parametrize(("status", "refusal"), LOCKED_OUT)
def test_the_portal_says_why_a_reply_was_refused(client, alice, monkeypatch, status, refusal):
    # given Alice signed in on her ticket's page
    ticket = TicketFactory(customer=alice, status=S.AWAITING_CUSTOMER)
    client.force_login(alice.user)
    locked_out_before(my_tickets, "ticket_reply_add", alice, status, monkeypatch)

    # when she sends her reply
    response = client.post(
        f"/my/tickets/{ticket.reference}/reply/", {"body": "Still me"}, follow=True
    )

    # then the page says the service's reason, not that the ticket is closed
    page = response.content.decode()
    assert escape(refusal) in page
    assert "closed; please open a new request" not in page
    assert not ticket.messages.exists()


@pytest.mark.parametrize(("status", "refusal"), LOCKED_OUT)
def test_a_close_signed_in_before_the_account_was_locked_out_is_refused_with_its_reason(
    client, alice, monkeypatch, status, refusal
):
    ticket = TicketFactory(customer=alice, status=S.RESOLVED)
    client.force_login(alice.user)
    locked_out_before(my_tickets, "ticket_close", alice, status, monkeypatch)

    response = client.post(
        f"/my/tickets/{ticket.reference}/close/", {"version": ticket.version}, follow=True
    )

    assert escape(refusal) in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED
