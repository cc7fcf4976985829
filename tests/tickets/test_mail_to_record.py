"""Mail about a customer's record goes, when it is sent, only to the email still on record."""

import pytest
from django.core import mail

from tests.tickets.verification_helpers import (
    anonymous_change,
    link_token,
    owner_request,
    verification_mail,
)
from tickets import services
from tickets.models import Notification, Ticket
from tickets.tasks import notification_send as notification_send_task

pytestmark = pytest.mark.django_db

OLD = "alice@example.test"
NEW = "alice.new@example.net"


def _email_changed(alice, supervisor) -> None:
    """Alice's change of her email on record, confirmed by the new address and approved."""
    ticket = owner_request(alice, {"email": NEW})
    token = link_token(verification_mail(ticket, "verify_new_email"))
    services.verification_confirm(token=token, client_key="10.0.0.3", actor="anonymous")
    services.ticket_approve(ticket=ticket, actor=supervisor)
    alice.refresh_from_db()
    assert alice.email == NEW


def _send(notification: Notification) -> str:
    notification_send_task.apply(kwargs={"notification_id": notification.pk}, throw=True)
    notification.refresh_from_db()
    return notification.status


def test_a_verification_queued_before_an_email_change_is_not_sent_to_the_old_address(
    alice, supervisor
):
    # given a change request made without signing in, its link queued to the email on record
    # (the worker had not sent it yet), summarising the values typed
    ticket = anonymous_change(OLD, {"phone": "+60 12-999 0000"}, client_key="10.0.0.7")
    pending = verification_mail(ticket)
    assert pending.recipient == OLD and pending.status == Notification.Status.PENDING

    # when Alice's email on record changes, then the worker gets to the link
    _email_changed(alice, supervisor)
    mail.outbox.clear()
    status = _send(pending)

    # then it is not sent: the old mailbox may be no longer hers, and it would read the values
    assert status == Notification.Status.FAILED
    assert "no longer" in pending.last_error
    assert not [m for m in mail.outbox if OLD in m.to]
    assert not [m for m in mail.outbox if "999" in m.body]


def test_a_verification_to_the_email_still_on_record_is_sent(alice):
    # given the same request, the email on record unchanged
    ticket = anonymous_change(OLD, {"phone": "+60 12-999 0000"}, client_key="10.0.0.7")

    # when the worker sends its link
    status = _send(verification_mail(ticket))

    # then it goes, to that address
    assert status == Notification.Status.SENT
    assert [m.to for m in mail.outbox] == [[OLD]]


def test_the_old_address_is_still_told_of_the_change(alice, supervisor):
    # when Alice's email changes
    _email_changed(alice, supervisor)
    notice = Notification.objects.get(template="email_changed_old")

    # then the old address, no longer on record, is still told (it is the point of that mail)
    assert _send(notice) == Notification.Status.SENT
    assert [m.to for m in mail.outbox][-1] == [OLD]


def _question_acknowledged(alice) -> Ticket:
    """Alice's question, signed in, written to her email on record; its acknowledgement sent."""
    ticket = services.request_general(
        subject="My invoice",
        body="Which card did you charge?",
        contact_email=OLD,
        customer=alice,
        actor=alice,
    )
    for row in Notification.objects.filter(ticket=ticket, status=Notification.Status.PENDING):
        _send(row)
    return ticket


def test_a_reply_queued_before_an_email_change_is_not_sent_to_the_old_address(
    alice, agent, supervisor
):
    # given Alice's question, and an agent's answer queued to her email on record
    ticket = _question_acknowledged(alice)
    services.ticket_reply_add(
        ticket=ticket,
        body="The Visa ending 4242, Alice.",
        actor=agent,
        author="staff",
        channel="staff",
        author_user=agent,
    )
    reply = Notification.objects.get(ticket=ticket, template="ticket_reply")

    # when Alice's email on record changes before the worker gets to it
    _email_changed(alice, supervisor)
    mail.outbox.clear()

    # then the answer is not mailed to the address she left
    assert _send(reply) == Notification.Status.FAILED
    assert not [m for m in mail.outbox if "4242" in m.body]


def test_a_status_link_queued_before_an_email_change_is_not_sent_to_the_old_address(
    alice, supervisor
):
    # given Alice's question, and a link to its status page asked for with her old address and
    # queued by the worker (not sent yet)
    ticket = _question_acknowledged(alice)
    assert services.status_link_send(reference=ticket.reference, email=OLD, request_id="r1") == (
        "sent"
    )
    link = Notification.objects.get(ticket=ticket, template="status_link")
    assert link.recipient == OLD

    # when Alice's email on record changes (the ticket's contact follows it) before it is sent
    _email_changed(alice, supervisor)
    mail.outbox.clear()

    # then nothing is mailed to the address she left, with a link or without one
    assert _send(link) == Notification.Status.FAILED
    assert "no longer" in link.last_error
    assert not [m for m in mail.outbox if OLD in m.to]


HELPER = "helper@example.net"


def _resend_acknowledgement() -> Notification:
    """A resend request's acknowledgement to the address typed with it, still in the outbox."""
    ticket = services.request_password_resend(
        domain="alice-shop.test",
        contact_email=HELPER,
        client_key="10.0.0.8",
        actor="anonymous",
        channel="portal",
    )
    return Notification.objects.get(ticket=ticket, template="password_resend_received")


def test_a_password_resend_acknowledgement_goes_only_to_an_address_still_the_tickets(alice):
    # given a resend request whose acknowledgement to the typed address is still in the outbox
    ack = _resend_acknowledgement()

    # when the ticket no longer writes to that address (a data fix corrected its contact; no
    # flow moves a resend's contact today, the rule holds whoever does)
    Ticket.objects.filter(pk=ack.ticket_id).update(contact_email="owner@example.net")

    # then the acknowledgement fails at send time instead of going to the old address
    assert _send(ack) == Notification.Status.FAILED
    assert not [m for m in mail.outbox if HELPER in m.to]


def test_a_password_resend_acknowledgement_to_the_tickets_address_is_sent():
    assert _send(_resend_acknowledgement()) == Notification.Status.SENT
    assert [m.to for m in mail.outbox] == [[HELPER]]
