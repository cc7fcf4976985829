"""A customer's own request that began before the account was frozen or closed writes nothing.

Sign-in refuses a locked-out account, but a request signed in just before (a page posted, an
API call) is already past that check: the services read the account again under its lock.
"""

import re

import pytest
from django.conf import settings
from django.utils.html import escape

from accounts.models import Customer
from helpdesk.exceptions import TransitionNotAllowed
from tests.factories import TicketFactory
from tests.tickets.test_inbound import payload, post, webhook_secret  # noqa: F401
from tests.tickets.verification_helpers import deliver_outbox
from tickets import services
from tickets.models import ActionLog, Message, Notification, Satisfaction, Ticket, Verification
from tickets.services import status_link
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


# --- written as the requester without a session: a status link, inbound mail ---


def _reply_by_mail(client, ticket, *, authenticated, sender="alice@example.test"):
    return post(
        client,
        payload(
            sender=sender,
            subject=f"Re: [{ticket.reference}] {ticket.subject}",
            text="Please change it back to my old address.",
            message_id="locked-out-reply@example.test",
            authenticated=authenticated,
        ),
    )


@pytest.mark.parametrize("authenticated", [True, False])
@pytest.mark.parametrize(("status", "refusal"), LOCKED_OUT)
def test_mail_on_a_locked_out_accounts_ticket_is_kept_for_staff_and_does_nothing(
    client, supervisor_client, alice, status, refusal, authenticated
):
    # given Alice's ticket waiting for her answer, and her account frozen (or closed) since
    ticket = TicketFactory(
        customer=alice, contact_email=alice.email, status=S.RESOLVED, subject="Invoice"
    )
    Customer.objects.filter(pk=alice.pk).update(account_status=status)

    # when a reply from her address arrives through the inbound webhook
    response = _reply_by_mail(client, ticket, authenticated=authenticated)

    # then the mail is kept on the ticket for staff only, and the ticket stays as it was
    assert response.status_code == 200
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED
    held = ticket.messages.get(author=Message.Author.CUSTOMER)
    assert held.internal is True
    assert "old address" in held.body
    assert held.sender_authentication["authenticated"] is authenticated
    assert not ActionLog.objects.filter(action="ticket.status_changed", ticket=ticket).exists()
    received = ActionLog.objects.get(action="inbound.received")
    assert received.details["outcome"] == "reply_held_account_locked_out"
    # and staff read it with a note saying why it did nothing; the requester's page shows none
    note = ticket.messages.get(author=Message.Author.SYSTEM, internal=True)
    assert "did not reopen" in note.body
    page = supervisor_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
    assert "change it back to my old address" in page
    assert not Message.objects.filter(ticket=ticket, internal=False).exists()
    # and nothing was mailed in answer
    assert not Notification.objects.filter(ticket=ticket).exists()


def test_mail_on_an_open_accounts_ticket_still_reopens_it(client, alice):
    ticket = TicketFactory(
        customer=alice, contact_email=alice.email, status=S.RESOLVED, subject="Invoice"
    )

    _reply_by_mail(client, ticket, authenticated=True)

    ticket.refresh_from_db()
    assert ticket.status == S.OPEN
    assert ticket.messages.get(author=Message.Author.CUSTOMER).internal is False


@pytest.mark.parametrize(("status", "refusal"), LOCKED_OUT)
def test_a_status_page_reply_on_a_locked_out_accounts_ticket_is_refused_with_its_reason(
    client, alice, status, refusal
):
    # given a status link to Alice's ticket, and her account frozen (or closed) since
    ticket = TicketFactory(customer=alice, contact_email=alice.email, status=S.AWAITING_CUSTOMER)
    link = services.status_link_issue(ticket=ticket, send_to=alice.email)
    path = link.removeprefix("https://help.exabytes.example")
    Customer.objects.filter(pk=alice.pk).update(account_status=status)

    # when the link's holder replies from the status page
    response = client.post(f"{path}reply/", {"body": "Still me"}, follow=True)

    # then the page says why, and nothing was written
    assert escape(refusal) in response.content.decode()
    assert not ticket.messages.exists()
    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_CUSTOMER


@pytest.mark.parametrize(("status", "refusal"), LOCKED_OUT)
def test_a_satisfaction_answer_on_a_locked_out_accounts_ticket_is_refused_with_its_reason(
    client, alice, agent, status, refusal
):
    # given Alice's ticket resolved, its "Did this solve it?" links mailed to her, and her
    # account frozen (or closed) since
    ticket = TicketFactory(customer=alice, contact_email=alice.email, assignee=agent)
    services.ticket_resolve(ticket=ticket, actor=agent, note="Your DNS is fixed.")
    [resolved] = [m for m in deliver_outbox() if "/satisfaction/" in m.body]
    path = re.search(r"https://help\.exabytes\.example(/satisfaction/\S+/no/)", resolved.body)[1]
    Customer.objects.filter(pk=alice.pk).update(account_status=status)

    # when the link's holder answers
    response = client.post(path, {"answer": "no", "comment": "Nothing works, call me."})

    # then the page says why, and no answer is recorded
    assert escape(refusal) in response.content.decode()
    assert not Satisfaction.objects.filter(ticket=ticket).exists()


@pytest.mark.parametrize(("status", "refusal"), LOCKED_OUT)
def test_a_locked_out_accounts_resolution_email_asks_for_no_answer(alice, agent, status, refusal):
    # given Alice's ticket, and her account frozen (or closed)
    ticket = TicketFactory(customer=alice, contact_email=alice.email, assignee=agent)
    Customer.objects.filter(pk=alice.pk).update(account_status=status)

    # when staff resolve it
    services.ticket_resolve(ticket=ticket, actor=agent, note="Your DNS is fixed.")

    # then the email says so, without "Did this solve it?" links that could not be answered
    [resolved] = [m for m in deliver_outbox() if "Your DNS is fixed." in m.body]
    assert "/satisfaction/" not in resolved.body
    assert not Verification.objects.filter(
        ticket=ticket, purpose=Verification.Purpose.SATISFACTION
    ).exists()


@pytest.mark.parametrize("status", [status for status, _ in LOCKED_OUT])
def test_while_locked_out_a_status_link_goes_only_to_the_accounts_email_on_record(
    client, alice, status
):
    # given a question of Alice's whose answers go to another address typed for it, and that
    # address's status link, both from before her account was frozen or closed
    typed = "someone@elsewhere.test"
    question = TicketFactory(customer=alice, contact_email=typed)
    link = status_link.status_link_issue(ticket=question, send_to=typed)
    path = link.replace(settings.SITE_URL, "")
    assert client.get(path).status_code == 200
    Customer.objects.filter(pk=alice.pk).update(account_status=status)

    # when that address asks /track/ for a link, and opens the one it holds
    asked = status_link.status_link_send(reference=question.reference, email=typed, request_id="1")
    opened = client.get(path)

    # then it gets no link and its link opens nothing; the email on record still gets one
    assert asked == "no_match"
    assert opened.status_code == 404
    assert (
        status_link.status_link_send(
            reference=question.reference, email=alice.email, request_id="2"
        )
        == "sent"
    )
    assert not [m for m in deliver_outbox() if m.to == [typed]]
