"""What the requester reads as "updated" moves only with what they are shown.

An internal note or a reply held back from them (an email our mail server could not
authenticate) moves the ticket's version for staff, whose stale edits it still refuses, but not
the customer's ETag, the version they send back, nor their "Last update".
"""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from accounts.models import Customer
from tests.factories import TicketFactory, freeze_shown, staff_reply
from tests.tickets.test_freeze import email_change_applied, freeze_token
from tests.tickets.test_inbound import (
    payload,
    webhook_secret,  # noqa: F401
)
from tests.tickets.test_inbound import post as post_inbound
from tests.tickets.test_unproven_opener import anonymous_change_with_note, forged_form
from tickets import services
from tickets.models import Message, Ticket
from tickets.services.freeze import account_unfreeze

pytestmark = pytest.mark.django_db

S = Ticket.Status


@pytest.fixture
def ticket(alice):
    return TicketFactory(customer=alice, subject="Mailbox full", status=S.AWAITING_CUSTOMER)


def note(ticket: Ticket, agent) -> None:
    staff_reply(ticket, agent, "The customer called; wait for the invoice.", internal=True)


def forged_reply(ticket: Ticket, agent) -> None:
    body = payload(
        sender="alice@example.test",
        subject=f"Re: [{ticket.reference}] Mailbox full",
        text="Call me on +60 3 5555 0100.",
        message_id="forged-1@example.test",
        authenticated=False,
    )
    assert post_inbound(Client(), body).status_code == 200


def polled(client: Client, ticket: Ticket) -> tuple[str, str, str]:
    """What a poller of the ticket reads: its ETag, its updated_at, its portal "Last update"."""
    detail = client.get(f"/api/v1/tickets/{ticket.reference}/")
    [item] = client.get("/api/v1/tickets/").json()["results"]
    page = client.get(f"/my/tickets/{ticket.reference}/").content.decode()
    last_update = page.split("Last update", 1)[1].split("</time>", 1)[0]
    assert detail.json()["updated_at"] == item["updated_at"]
    return detail["ETag"], item["updated_at"], last_update


@pytest.mark.parametrize("hidden", [note, forged_reply], ids=["internal note", "forged reply"])
def test_what_the_requester_is_not_shown_does_not_move_what_they_poll(
    hidden, ticket, agent, alice_client
):
    # given Alice polling her ticket
    before = polled(alice_client, ticket)

    # when, a minute later, something she is not shown is added to it
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        hidden(ticket, agent)
        after = polled(alice_client, ticket)

    # then her ETag, her updated_at and her "Last update" stand still
    assert ticket.messages.exists()
    assert after == before


def test_staff_still_see_the_version_move_and_a_stale_edit_is_refused(ticket, agent, agent_client):
    # given an agent who read the ticket
    read = agent_client.get(f"/api/v1/tickets/{ticket.reference}/")["ETag"].strip('"')

    # when another agent writes a note, then the first one's resolve is refused as stale
    note(ticket, agent)
    response = agent_client.post(
        f"/api/v1/tickets/{ticket.reference}/resolve/",
        {"version": int(read)},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert agent_client.get(f"/api/v1/tickets/{ticket.reference}/")["ETag"] != f'"{read}"'


def test_a_customer_sending_back_their_version_is_not_refused_for_a_note(
    ticket, agent, alice_client
):
    # given Alice's ETag, read before an agent's note
    etag = alice_client.get(f"/api/v1/tickets/{ticket.reference}/")["ETag"].strip('"')
    note(ticket, agent)

    # when she replies with it, then it is taken (nothing she reads changed)
    response = alice_client.post(
        f"/api/v1/tickets/{ticket.reference}/messages/",
        {"body": "Any news?", "version": int(etag)},
        content_type="application/json",
    )
    assert response.status_code == 201
    # and her reply, which she is shown, moves her ETag on
    moved = alice_client.get(f"/api/v1/tickets/{ticket.reference}/")["ETag"]
    assert moved != f'"{etag}"'


def test_the_portal_close_form_is_not_stale_after_a_note(ticket, agent, alice_client):
    page = alice_client.get(f"/my/tickets/{ticket.reference}/").content.decode()
    version = page.split('name="version" value="', 1)[1].split('"', 1)[0]
    note(ticket, agent)

    alice_client.post(f"/my/tickets/{ticket.reference}/close/", {"version": version})

    ticket.refresh_from_db()
    assert ticket.status == S.CLOSED


def test_a_staff_reply_the_requester_is_shown_moves_what_they_poll(ticket, agent, alice_client):
    before = polled(alice_client, ticket)

    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        staff_reply(ticket, agent, "Your mailbox has room again.")
        after = polled(alice_client, ticket)

    assert [a != b for a, b in zip(after, before, strict=True)] == [True, True, True]


# --- words held from her until she confirms the request is hers ---


def _status_reply(ticket: Ticket, send_to: str, body: str) -> None:
    """A reply by the status link mailed to `send_to` (its holder is not shown to be her)."""
    token = services.status_link_issue(ticket=ticket, send_to=send_to).rstrip("/").split("/")[-1]
    services.status_reply_add(token=token, body=body, client_key="10.0.0.7")


def _sent_from_her_address(alice) -> Ticket:
    return forged_form(Client())


@pytest.mark.parametrize(
    "held_request",
    [_sent_from_her_address, anonymous_change_with_note],
    ids=["sent from her address", "change asked for without a login"],
)
def test_a_reply_held_from_her_moves_her_etag_with_the_count_she_is_told(
    held_request, alice, alice_client
):
    # given a request of Alice's whose words are held from her, polled with her ETag
    ticket = held_request(alice)
    detail = f"/api/v1/tickets/{ticket.reference}/"
    first = alice_client.get(detail)
    held = first.json()["held_messages"]
    assert held >= 1

    # when its requester replies by the status link, unproven (held from her too)
    _status_reply(ticket, alice.email, "Any news? Call +60 3 5555 0100.")
    assert Message.objects.filter(ticket=ticket, unproven=True).count() == held + 1

    # then her ETag moves, and revalidating with the old one gets the new count
    again = alice_client.get(detail, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 200
    assert again["ETag"] != first["ETag"]
    assert again.json()["held_messages"] == held + 1
    assert "5555 0100" not in again.content.decode()


def test_the_freeze_moves_the_etag_of_the_ticket_it_hands_to_a_supervisor(
    client, alice, agent, supervisor
):
    # given Alice's email change, reopened by her reply and taken by an agent; she polls it
    ticket = email_change_applied(alice, supervisor)
    services.ticket_reply_add(
        ticket=ticket,
        body="Thank you.",
        actor=Customer.objects.get(pk=alice.pk),
        author=Message.Author.CUSTOMER,
        channel=Ticket.Channel.API,
        author_user=alice.user,
    )
    services.ticket_assign(ticket=ticket, assignee=agent, actor=supervisor)
    detail = f"/api/v1/tickets/{ticket.reference}/"
    before = _signed_in(alice).get(detail)
    assert (before.json()["status"], before.json()["assignee"]) == (S.OPEN, "agent")

    # when her old address freezes the account, and a supervisor lifts the freeze
    assert client.post(f"/not-me/{freeze_token(ticket)}/").status_code == 303
    account_unfreeze(
        customer=Customer.objects.get(pk=alice.pk),
        freeze_version=freeze_shown(Customer.objects.get(pk=alice.pk)),
        actor=supervisor,
        reason="Checked her ID.",
    )

    # then what she reads of the ticket (nobody holds it, due sooner) came with a new ETag
    after = _signed_in(alice).get(detail, HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.json()["assignee"] is None
    assert after.json()["due_at"] != before.json()["due_at"]
    assert after["ETag"] != before["ETag"]


def _signed_in(customer) -> Client:
    reader = Client()
    reader.force_login(User.objects.get(pk=customer.user_id))
    return reader
