"""An address another program reads otherwise is refused wherever an address enters.

`"victim@x.test,"@evil.example` passes Django's EmailValidator; an ESP or a mail client may
read it as two recipients, one of them the victim. The portal, the API, staff approval,
inbound mail and the outbox hold the one rule (`helpdesk.validators.address_normalised`);
the admin's is tested with the logins (tests/accounts/test_login_addresses.py).
"""

import pytest
from django.core import mail

from helpdesk.exceptions import ApplicationError
from tests.tickets.verification_helpers import link_token, owner_request, verification_mail
from tickets import services
from tickets.models import AnonymousRequest, FieldChange, Notification, Ticket, Verification
from tickets.services.modify_approval import MODIFY_EMAIL_NOT_PLAIN

pytestmark = pytest.mark.django_db

QUOTED = '"victim@x.test,"@evil.example'
TRICKS = [QUOTED, "victim@[192.0.2.1]", "victim(x)@x.test", "victim%evil.example@x.test"]


@pytest.mark.parametrize("address", TRICKS)
def test_the_portal_forms_refuse_the_address(client, address):
    # when each portal form is sent with the address
    general = client.post(
        "/requests/new/", {"subject": "Site down", "message": "It shows 500.", "email": address}
    )
    resend = client.post(
        "/requests/password/", {"domain": "alice-shop.test", "contact_email": address}
    )
    opt_out = client.post("/requests/opt-out/", {"email": address, "lists": ["product_mailings"]})
    change = client.post("/requests/modify/", {"email_on_record": address, "phone": "0123"})

    # then each says what is wrong with it, and no request is made
    for response in (general, resend, opt_out, change):
        assert response.status_code == 400
        assert "no quotes, spaces, comments" in response.content.decode()
    assert not Ticket.objects.exists() and not Notification.objects.exists()


def test_the_portal_refuses_it_as_a_new_email_address(alice_client, alice):
    # when Alice's form is sent as it stands, but for the new address
    form = {field: getattr(alice, field) for field in services.MODIFY_FIELDS}
    response = alice_client.post("/requests/modify/", {**form, "email": QUOTED})

    # then the new address is refused by the one rule, and nothing is asked for
    assert response.status_code == 400
    assert "no quotes, spaces, comments" in response.content.decode()
    assert not FieldChange.objects.exists()


@pytest.mark.parametrize("address", TRICKS)
def test_the_api_refuses_the_address(client, alice_client, address):
    # when each API request is sent with it
    resend = client.post(
        "/api/v1/requests/password-resend/",
        {"domain": "alice-shop.test", "contact_email": address},
        content_type="application/json",
    )
    change = client.post(
        "/api/v1/requests/modify/",
        {"email": address, "changes": {"phone": "0123"}},
        content_type="application/json",
    )
    opt_out = client.post(
        "/api/v1/requests/opt-out/",
        {"email": address, "lists": ["product_mailings"]},
        content_type="application/json",
    )
    new_email = alice_client.post(
        "/api/v1/requests/modify/",
        {"changes": {"email": address}},
        content_type="application/json",
    )

    # then each is a 400 naming the field, and nothing was made
    assert [r.status_code for r in (resend, change, opt_out, new_email)] == [400] * 4
    assert "contact_email" in resend.json()
    assert "email" in change.json() and "email" in opt_out.json()
    assert not Ticket.objects.exists() and not AnonymousRequest.objects.exists()


def test_staff_cannot_apply_a_new_address_stored_before_the_rule(alice, supervisor):
    # given Alice's confirmed change to a new address, rewritten before the rule held into one
    # read as two recipients (a row of before; no path stores it now)
    ticket = owner_request(alice, {"email": "alice.new@example.net"})
    token = link_token(verification_mail(ticket, "verify_new_email"))
    services.verification_confirm(token=token, client_key="10.0.0.3", actor="anonymous")
    FieldChange.objects.filter(ticket=ticket, field="email").update(new_value=QUOTED)
    Verification.objects.filter(ticket=ticket, purpose="new_email").update(sent_to=QUOTED)

    # when a supervisor approves it, then it is refused and the record keeps its address
    with pytest.raises(ApplicationError) as refused:
        services.ticket_approve(ticket=ticket, actor=supervisor)
    assert refused.value.message == MODIFY_EMAIL_NOT_PLAIN
    alice.refresh_from_db()
    assert alice.email == "alice@example.test"


def test_inbound_mail_from_the_address_gets_no_contact_and_no_answer(alice):
    # when mail comes from a quoted address naming Alice's
    ticket = services.inbound_email_receive(
        message_id="<q1@evil.example>",
        from_email='"alice@example.test,"@evil.example',
        to_emails=["support@exabytes.example"],
        subject="Please send my details",
        text="Hello",
        html="",
        headers=[],
        attachments=[],
        envelope_recipient="",
    )

    # then it is kept for staff, on no account, with no address to write to
    assert ticket is not None
    assert ticket.customer is None and ticket.contact_email == ""
    assert not Notification.objects.filter(ticket=ticket).exists()


def test_the_outbox_sends_nothing_to_an_address_stored_before_the_rule(alice):
    # given a reply queued to a contact address stored before the rule held
    ticket = services.request_general(
        subject="Hosting", body="A question.", contact_email="dan@example.test", actor="anonymous"
    )
    Notification.objects.filter(ticket=ticket).update(recipient=QUOTED)
    Ticket.objects.filter(pk=ticket.pk).update(contact_email=QUOTED)
    [row] = Notification.objects.filter(ticket=ticket)

    # when the worker gets to it, then it fails without reaching the ESP
    assert services.notification_send(notification_id=row.pk) == Notification.Status.FAILED
    assert mail.outbox == []
