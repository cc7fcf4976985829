"""Messages and notes: text that hides or reverses itself.

A reply typed on the portal, the API or the staff page could hold a right-to-left override
that makes the other side read it otherwise ("refund to acc\u202e1234 5678"). Typed text is
refused on its field; mail is kept, less those characters.
"""

import pytest
from django.test import Client

from helpdesk.validators import INVALID_CHARACTERS
from tests.factories import TicketFactory, api_key_for
from tests.tickets.test_inbound import SECRET, payload, post
from tickets.models import Message, Ticket
from tickets.services.search import message_create

pytestmark = pytest.mark.django_db

REVERSED = "Please refund acc\u202e4321 to me"


def test_a_portal_reply_that_reads_backwards_is_refused_on_its_field(alice, alice_client):
    ticket = TicketFactory(customer=alice, status=Ticket.Status.OPEN)

    response = alice_client.post(f"/my/tickets/{ticket.reference}/reply/", {"body": REVERSED})

    assert response.status_code == 400
    assert response.context["reply_form"].errors["body"] == [INVALID_CHARACTERS]
    assert not Message.objects.exists()


def test_an_api_message_that_reads_backwards_is_a_400_naming_the_body(alice):
    ticket = TicketFactory(customer=alice, status=Ticket.Status.OPEN)
    client = Client(HTTP_AUTHORIZATION=f"Token {api_key_for(alice.user)}")

    response = client.post(
        f"/api/v1/tickets/{ticket.reference}/messages/",
        {"body": "Line one\n\u2067hidden"},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "body" in response.json()
    assert not Message.objects.exists()


@pytest.mark.parametrize("action", ["reply", "note"])
def test_a_staff_reply_or_note_that_reads_backwards_is_refused(agent_client, alice, action):
    ticket = TicketFactory(customer=alice, status=Ticket.Status.OPEN)

    response = agent_client.post(
        f"/staff/tickets/{ticket.reference}/{action}/", {"version": 1, "body": REVERSED}
    )

    assert response.status_code == 400
    assert INVALID_CHARACTERS in response.content.decode()
    assert not Message.objects.exists()


def test_a_change_requests_note_that_reads_backwards_is_refused_on_its_field(client):
    response = client.post(
        "/requests/modify/",
        {"email_on_record": "alice@example.test", "phone": "+60 3-1234 5678", "note": REVERSED},
    )

    assert response.status_code == 400
    assert response.context["form"].errors["note"] == [INVALID_CHARACTERS]
    assert not Ticket.objects.exists()


def test_mail_is_kept_without_the_characters_and_with_its_lines(client, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}

    post(client, payload(text="Hello\u202e,\nplease help.\ufeff"))

    assert Message.objects.get().body == "Hello,\nplease help."


def test_every_typed_path_shares_the_rule_and_joiners_stay(alice):
    ticket = TicketFactory(customer=alice)
    persian = (
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645\n\tthanks \U0001f469\u200d\U0001f4bb"
    )

    message = message_create(
        ticket=ticket, author="customer", body=persian, channel=Ticket.Channel.PORTAL
    )

    assert message.body == persian
