"""Contact addresses and mailings: text that hides or reverses itself.

Django's email validator takes a right-to-left override in an address's domain, so one could
reach the staff queue as a ticket's contact address reading as another; and a mailing's
subject could hold one, read otherwise in every customer's mail program.
"""

import pytest
from django.utils.html import escape

from helpdesk.exceptions import ApplicationError
from helpdesk.validators import ADDRESS_INVALID
from tests.tickets.test_inbound import SECRET, payload, post
from tickets import services
from tickets.models import Ticket
from tickets.services.mailing import MAILING_HIDDEN_CHARACTERS

pytestmark = pytest.mark.django_db


def test_a_contact_address_with_an_override_is_refused(client):
    # Django's email validator takes an override in the domain part
    response = client.post(
        "/requests/new/",
        {"subject": "Hello", "message": "Hi", "email": "ecila@example.com\u202emoc.liam"},
    )

    # (refused by the one rule for addresses, which holds no control character anywhere)
    assert response.status_code == 400
    assert escape(ADDRESS_INVALID) in response.content.decode()
    assert not Ticket.objects.exists()


def test_mail_from_an_address_with_an_override_gets_no_contact_address(client, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}

    post(client, payload(sender="x@example.com\u202emoc.knab"))

    assert Ticket.objects.get().contact_email == ""


def test_a_mailing_whose_subject_reads_backwards_is_refused(alice):
    with pytest.raises(ApplicationError) as refused:
        services.mailing_send(
            list_name="product_mailings",
            subject="Your invoice \u202efdp.exe",
            body_text="Hello",
            actor="command:send_mailing",
        )

    assert refused.value.message == MAILING_HIDDEN_CHARACTERS
