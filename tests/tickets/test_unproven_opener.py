"""A request sent from a customer's address by someone unproven: told of, its words not shown.

The web form without a login and an email our mail server could not authenticate both link
their ticket to the customer whose email on record they name (`customer_by_contact`). The
customer sees that a request was made from their address, never its sender's words, until
they confirm it is theirs (their session, or the status link mailed to that address).
"""

import json

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client

from helpdesk.exceptions import TransitionNotAllowed
from tests.factories import DomainFactory, TicketFactory, api_key_for, staff_reply
from tests.tickets.test_inbound import (
    payload,
    webhook_secret,  # noqa: F401
)
from tests.tickets.test_inbound import post as post_inbound
from tests.tickets.verification_helpers import anonymous_lookups, link_token, verification_mail
from tickets import services
from tickets.models import ActionLog, Attachment, FieldChange, Message, Ticket
from tickets.services.attachments import AttachmentUpload
from tickets.services.disclosure import customer_export

pytestmark = pytest.mark.django_db

ALICE = "alice@example.test"
SUBJECT = "Your account is suspended"
BODY = "Call +60 3 5555 0100 within the hour to keep it."
# What the customer is told instead of the subject.
TOLD = "sent from your address without signing in"


def forged_form(client: Client | None = None) -> Ticket:
    """The logged-out web form, with Alice's address typed in by someone else."""
    response = (client or Client()).post(
        "/requests/new/", {"subject": SUBJECT, "message": BODY, "email": ALICE}
    )
    assert response.status_code == 303
    return Ticket.objects.get(subject=SUBJECT)


def forged_mail(client: Client) -> Ticket:
    """A new email From Alice that our receiving server did not authenticate."""
    post_inbound(client, payload(sender=ALICE, subject=SUBJECT, text=BODY, authenticated=False))
    return Ticket.objects.get(subject=SUBJECT)


def words_in(text: str) -> bool:
    return "suspended" in text or "5555" in text


def customer_surfaces(client: Client, ticket: Ticket) -> dict[str, str]:
    """Everything Alice's session reads of the ticket: portal list and page, API, search."""
    pages = {
        "my tickets": client.get("/my/"),
        "my ticket": client.get(f"/my/tickets/{ticket.reference}/"),
        "api list": client.get("/api/v1/tickets/"),
        "api detail": client.get(f"/api/v1/tickets/{ticket.reference}/"),
    }
    assert all(response.status_code == 200 for response in pages.values())
    found = [
        client.get("/api/v1/tickets/", {"q": word}).json()["results"]
        for word in ("suspended", "5555")
    ]
    return {
        **{name: response.content.decode() for name, response in pages.items()},
        "search": json.dumps(found),
    }


@pytest.mark.parametrize("forge", ["form", "mail"])
def test_an_unproven_requests_words_never_reach_the_customers_pages(
    forge, client, alice, alice_client, agent_client
):
    # given a request made from Alice's address by someone who is not shown to be her
    ticket = forged_form(client) if forge == "form" else forged_mail(client)
    assert (ticket.customer, ticket.customer_by_contact) == (alice, True)

    # when Alice reads her pages, the API, and searches for its words
    seen = customer_surfaces(alice_client, ticket)

    # then she learns a request was made from her address, without a word of it
    assert not [name for name, text in seen.items() if words_in(text)]
    assert ticket.reference in seen["my tickets"] and TOLD in seen["my tickets"]
    assert "Yes, I sent this request" in seen["my ticket"]
    [item] = json.loads(seen["api list"])["results"]
    assert item["subject"] == f"General help ({TOLD})"
    assert json.loads(seen["search"]) == [[], []]
    # and staff read it all, marked as not confirmed
    page = agent_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
    assert SUBJECT in page and "identity was not confirmed" in page
    detail = agent_client.get(f"/api/v1/tickets/{ticket.reference}/").json()
    assert detail["subject"] == SUBJECT
    assert BODY in [m["body"] for m in detail["messages"]]


def test_the_status_link_mailed_to_the_address_shows_no_words_until_confirmed(client, alice):
    # given the acknowledgement mailed to Alice's address for a forged request
    ticket = forged_form(client)
    link = services.status_link_issue(ticket=ticket, send_to=alice.email)
    path = link.split("example", 1)[1].split("/", 1)[1]

    # when she opens its status page
    page = client.get(f"/{path}").content.decode()

    # then it says what happened, not what was written, and offers the confirmation
    assert not words_in(page)
    assert TOLD in page and "Yes, I sent this request" in page
    # (a reply there would be held back from her as the opener's are: it waits for the answer)
    assert "Send reply" not in page

    # when she confirms by that link
    response = client.post(f"/{path}confirm/")

    # then the request is hers: the page, her portal and the API show its words
    assert response.status_code == 302
    page = client.get(f"/{path}").content.decode()
    assert SUBJECT in page and BODY in page and "Yes, I sent this request" not in page
    assert "Send reply" in page
    ticket.refresh_from_db()
    assert (ticket.opener_unproven, ticket.verified_by) == (False, "email_link")
    row = ActionLog.objects.get(ticket=ticket, action="ticket.opener_confirmed")
    assert row.actor == f"status-link:{alice.email}"


def test_a_customer_confirms_a_request_from_their_own_session(client, alice, alice_client):
    # given a forged request
    ticket = forged_form(client)
    version = ticket.version

    # when Alice, signed in, says it is hers
    response = alice_client.post(f"/my/tickets/{ticket.reference}/confirm/")

    # then every surface shows her its words, and the change is audited and versioned
    assert response.status_code == 302
    seen = customer_surfaces(alice_client, ticket)
    assert SUBJECT in seen["my tickets"] and BODY in seen["my ticket"]
    assert BODY in seen["api detail"]
    assert ticket.reference in seen["search"]
    ticket.refresh_from_db()
    assert (ticket.verified_by, ticket.version) == ("session", version + 1)
    assert ActionLog.objects.filter(ticket=ticket, action="ticket.opener_confirmed").count() == 1
    # and a second confirmation changes nothing
    alice_client.post(f"/my/tickets/{ticket.reference}/confirm/")
    ticket.refresh_from_db()
    assert ticket.version == version + 1


def test_another_customer_cannot_confirm_someone_elses_request(client, alice, bob):
    ticket = forged_form(client)
    bob_client = Client()
    bob_client.force_login(bob.user)

    response = bob_client.post(f"/my/tickets/{ticket.reference}/confirm/")

    assert response.status_code == 404
    ticket.refresh_from_db()
    assert ticket.opener_unproven


def test_a_request_of_hers_on_no_account_has_nothing_to_confirm(alice, alice_client):
    # given a resend of Alice's own domain sent from her address without signing in: among
    # her tickets, yet on no account
    domain = DomainFactory(customer=alice)
    ticket = TicketFactory(
        kind=Ticket.Kind.RESEND_PASSWORD, customer=None, contact_email=ALICE, domain=domain
    )
    assert alice_client.get(f"/my/tickets/{ticket.reference}/").status_code == 200

    # when she posts a confirmation for it anyway
    response = alice_client.post(f"/my/tickets/{ticket.reference}/confirm/", follow=True)

    # then she is told there is nothing to confirm, not thanked, and nothing is recorded
    page = response.content.decode()
    assert "There is nothing to confirm on this request." in page
    assert "marked as yours" not in page
    ticket.refresh_from_db()
    assert ticket.verified_at is None and ticket.customer_id is None
    assert not ActionLog.objects.filter(ticket=ticket, action="ticket.opener_confirmed").exists()


def test_a_status_link_mailed_to_another_address_confirms_nothing(client, alice):
    # given a forged request whose contact address was someone else's, later moved to Alice
    ticket = forged_form(client)
    Ticket.objects.filter(pk=ticket.pk).update(contact_email="typed@elsewhere.test")
    link = services.status_link_issue(ticket=ticket, send_to="typed@elsewhere.test")
    path = link.split("example", 1)[1].split("/", 1)[1]

    # when that link's holder tries to confirm it as Alice's
    response = client.post(f"/{path}confirm/")

    # then it is refused, and the words stay hidden
    assert response.status_code == 404
    ticket.refresh_from_db()
    assert ticket.opener_unproven


def test_mail_to_the_address_on_record_never_carries_the_unproven_words(client, alice, agent):
    # given a forged request, acknowledged, and answered by an agent
    ticket = forged_form(client)
    staff_reply(ticket, agent, "Which account do you mean?")
    services.status_link_send(reference=ticket.reference, email=ALICE, request_id="r1")

    # when every queued email is sent
    for row in ticket.notifications.all():
        services.notification_send(notification_id=row.pk)

    # then none of them, to Alice's address, carries a word of the request
    assert len(mail.outbox) == 3
    for sent in mail.outbox:
        assert sent.to == [ALICE]
        parts = [sent.subject, sent.body, *(str(c) for c, _type in sent.alternatives)]
        assert not [part for part in parts if words_in(part)]


def test_the_export_marks_an_unproven_request(client, alice, supervisor):
    forged_form(client)
    own = TicketFactory(customer=alice, subject="Mine")

    data = customer_export(customer=alice, actor=supervisor)

    marks = {t["subject"]: t["sent_without_sign_in_unconfirmed"] for t in data["tickets"]}
    assert marks == {SUBJECT: True, own.subject: False}
    [forged] = [t for t in data["tickets"] if t["subject"] == SUBJECT]
    assert [m["sent_without_sign_in_unconfirmed"] for m in forged["messages"]] == [True]


@pytest.mark.parametrize(
    ("by_contact", "verified", "unproven"),
    [(True, False, True), (True, True, False), (False, False, False), (False, True, False)],
)
def test_the_predicate_and_the_row_agree(alice, by_contact, verified, unproven):
    from tickets.selectors.messages import ticket_opener_unproven

    ticket = TicketFactory(customer=alice, customer_by_contact=by_contact)
    if verified:
        Ticket.objects.filter(pk=ticket.pk).update(verified_at=ticket.created_at)
    ticket.refresh_from_db()

    assert ticket.opener_unproven is unproven
    assert Ticket.objects.filter(ticket_opener_unproven(), pk=ticket.pk).exists() is unproven


OWN_SUBJECT = "Invoice for March"
OWN_BODY = "Where is my invoice?"


def signed_in_request(alice_client: Client) -> Ticket:
    """Alice's own request, typed in the portal while signed in."""
    response = alice_client.post(
        "/requests/new/", {"subject": OWN_SUBJECT, "message": OWN_BODY, "email": ""}
    )
    assert response.status_code == 303
    return Ticket.objects.get(subject=OWN_SUBJECT)


def every_surface(alice_client: Client, ticket: Ticket, status_path: str) -> dict[str, str]:
    """All Alice reads of `ticket`: portal, API, search for both requests' words, status page."""
    seen = customer_surfaces(alice_client, ticket)
    found = [
        alice_client.get("/api/v1/tickets/", {"q": word}).json()["results"]
        for word in ("invoice", "March")
    ]
    status = Client().get(f"/{status_path}").content.decode()
    return {**seen, "own search": json.dumps(found), "status page": status}


def status_path_of(ticket: Ticket, alice) -> str:
    link = services.status_link_issue(ticket=ticket, send_to=alice.email)
    return link.split("example", 1)[1].split("/", 1)[1]


@pytest.mark.parametrize("confirmed_first", [False, True])
def test_an_unproven_request_merged_into_her_own_one_leaves_hers_readable_and_its_words_hidden(
    client, alice, alice_client, agent, confirmed_first
):
    # given Alice's own request (typed signed in, or sent logged out and confirmed since)
    if confirmed_first:
        Client().post(
            "/requests/new/", {"subject": OWN_SUBJECT, "message": OWN_BODY, "email": ALICE}
        )
        own = Ticket.objects.get(subject=OWN_SUBJECT)
        alice_client.post(f"/my/tickets/{own.reference}/confirm/")
    else:
        own = signed_in_request(alice_client)
    # and a later one from her address that nobody proved hers
    forged = forged_form(client)
    verified_at = Ticket.objects.get(pk=own.pk).verified_at

    # when an agent merges the forged one into hers
    services.ticket_merge(ticket=forged, into=own, actor=agent)

    # then her request stays as she made it: its subject and her message on every surface
    own.refresh_from_db()
    assert not own.opener_unproven and own.verified_at == verified_at
    seen = every_surface(alice_client, own, status_path_of(own, alice))
    for name in ("my tickets", "my ticket", "api list", "api detail", "status page"):
        assert OWN_SUBJECT in seen[name], name
    for name in ("my ticket", "api detail", "status page"):
        assert OWN_BODY in seen[name], name
    assert own.reference in seen["own search"]
    # and the forged words reach none of them, while she is asked whether they are hers
    assert not [name for name, text in seen.items() if words_in(text)]
    page = alice_client.get(f"/my/tickets/{own.reference}/").content.decode()
    assert "Yes, I sent this request" in page

    # when she confirms the survivor
    alice_client.post(f"/my/tickets/{own.reference}/confirm/")

    # then the words it took in are shown to her too
    page = alice_client.get(f"/my/tickets/{own.reference}/").content.decode()
    assert BODY in page and "Yes, I sent this request" not in page


def test_her_own_request_merged_into_an_unproven_one_stays_readable_there(
    client, alice, alice_client, agent
):
    # given a forged request from Alice's address, and her own request typed signed in
    forged = forged_form(client)
    own = signed_in_request(alice_client)

    # when an agent merges hers into the forged one
    services.ticket_merge(ticket=own, into=forged, actor=agent)

    # then the survivor is still unproven: its subject and its opener's words hidden
    forged.refresh_from_db()
    assert forged.opener_unproven
    seen = every_surface(alice_client, forged, status_path_of(forged, alice))
    assert not [name for name, text in seen.items() if words_in(text)]
    # and what she wrote herself is shown to her wherever she reads it
    for name in ("my ticket", "api detail", "status page"):
        assert OWN_BODY in seen[name], name
    assert forged.reference in seen["own search"]


def test_a_request_the_command_links_later_shows_her_no_words_until_she_confirms(
    alice, alice_client
):
    # given a request from Alice's address made before requests were linked, and linked now
    ticket = TicketFactory(customer=None, contact_email=ALICE, subject=SUBJECT)
    Message.objects.create(
        ticket=ticket, author=Message.Author.CUSTOMER, body=BODY, channel=Ticket.Channel.PORTAL
    )
    call_command("link_tickets_to_customers")

    # then she is told of it without a word of it, as of one linked when it was made
    seen = customer_surfaces(alice_client, ticket)
    assert not [name for name, text in seen.items() if words_in(text)]
    alice_client.post(f"/my/tickets/{ticket.reference}/confirm/")
    assert BODY in alice_client.get(f"/my/tickets/{ticket.reference}/").content.decode()


def test_a_file_sent_with_an_unproven_request_is_not_handed_to_the_customer(alice, alice_client):
    # given a forged request carrying a file, scanned clean
    ticket = services.request_general(
        subject=SUBJECT,
        body=BODY,
        contact_email=ALICE,
        actor="anonymous",
        attachments=[AttachmentUpload("invoice.txt", b"Call +60 3 5555 0100")],
    )
    [attachment] = Attachment.objects.filter(message__ticket=ticket)
    Attachment.objects.filter(pk=attachment.pk).update(scan_status=Attachment.ScanStatus.CLEAN)
    url = f"/my/tickets/{ticket.reference}/attachments/{attachment.pk}/"

    # when Alice asks for it, then it is not hers to read until she confirms the request
    assert alice_client.get(url).status_code == 404
    alice_client.post(f"/my/tickets/{ticket.reference}/confirm/")
    assert alice_client.get(url).status_code == 200


# --- confirming through the API ---


def confirm_api(client: Client, ticket: Ticket):
    return client.post(
        f"/api/v1/tickets/{ticket.reference}/confirm/", content_type="application/json"
    )


def test_a_customer_confirms_a_request_through_the_api(client, alice):
    # given a forged request, and Alice's API token
    ticket = forged_form(client)
    api = Client(HTTP_AUTHORIZATION=f"Token {api_key_for(alice.user)}")
    assert api.get(f"/api/v1/tickets/{ticket.reference}/").json()["subject"] != SUBJECT

    # when she confirms it through the API
    response = confirm_api(api, ticket)

    # then it answers with the ticket as she now reads it, as the portal's confirmation does
    assert response.status_code == 200
    assert response.json()["subject"] == SUBJECT
    assert response["ETag"] == f'"{Ticket.objects.get(pk=ticket.pk).requester_version}"'
    detail = api.get(f"/api/v1/tickets/{ticket.reference}/").json()
    assert BODY in [m["body"] for m in detail["messages"]]
    ticket.refresh_from_db()
    assert (ticket.opener_unproven, ticket.verified_by) == (False, "session")
    # and confirming again changes nothing
    version = ticket.version
    assert confirm_api(api, ticket).status_code == 200
    ticket.refresh_from_db()
    assert ticket.version == version
    assert ActionLog.objects.filter(ticket=ticket, action="ticket.opener_confirmed").count() == 1


def test_the_api_confirmation_refuses_as_the_portal_does(client, alice, bob, agent_client):
    # given a forged request from Alice's address, and a resend of her domain on no account
    ticket = forged_form(client)
    domain = DomainFactory(customer=alice)
    resend = TicketFactory(
        kind=Ticket.Kind.RESEND_PASSWORD, customer=None, contact_email=ALICE, domain=domain
    )
    alice_api = Client(HTTP_AUTHORIZATION=f"Token {api_key_for(alice.user)}")
    bob_api = Client()
    bob_api.force_login(bob.user)

    # then another customer gets the answer an unknown reference gets: no enumeration
    refused = confirm_api(bob_api, ticket)
    unknown = bob_api.post("/api/v1/tickets/HD-00000000/confirm/")
    assert (refused.status_code, refused.json()) == (unknown.status_code, unknown.json())
    assert refused.status_code == 404
    # and nobody signed out, nor staff, confirms for her
    assert confirm_api(Client(), ticket).status_code == 401
    assert confirm_api(agent_client, ticket).status_code == 403
    # and a request of hers on no account has nothing to confirm
    response = confirm_api(alice_api, resend)
    assert response.status_code == 409
    assert response.json()["detail"] == "There is nothing to confirm on this request."
    ticket.refresh_from_db()
    resend.refresh_from_db()
    assert ticket.opener_unproven and resend.verified_at is None
    assert not ActionLog.objects.filter(action="ticket.opener_confirmed").exists()


# --- a change request made without a login ---

NOTE = "Urgent: call +60 3 5555 0100 to keep your domain suspended-free."


def anonymous_change_with_note(alice) -> Ticket:
    """A change of Alice's details asked for by someone who typed her address, with a note."""
    ticket = services.request_modify(
        email=ALICE,
        customer=None,
        changes={"city": "Ipoh"},
        note=NOTE,
        client_key="10.0.0.9",
        actor="anonymous",
        channel=Ticket.Channel.API,
        attachments=[AttachmentUpload("proof.txt", b"Call +60 3 5555 0100")],
    )
    assert anonymous_lookups() == ["link_sent"]
    ticket.refresh_from_db()
    assert ticket.customer == alice and ticket.verified_at is None
    return ticket


def test_an_anonymous_change_requests_note_is_hidden_and_confirming_it_verifies_nothing(
    alice, alice_client
):
    # given a change of Alice's details asked for without a login, with a note and a file
    ticket = anonymous_change_with_note(alice)
    Attachment.objects.filter(message__ticket=ticket).update(
        scan_status=Attachment.ScanStatus.CLEAN
    )
    [attachment] = Attachment.objects.filter(message__ticket=ticket)
    url = f"/my/tickets/{ticket.reference}/attachments/{attachment.pk}/"

    # when Alice reads her pages, the API, and searches for the note's words
    seen = customer_surfaces(alice_client, ticket)

    # then its requester's words and file reach none of them, and she is asked about it
    assert not [name for name, text in seen.items() if words_in(text)]
    assert "Yes, I sent this request" in seen["my ticket"]
    assert "only through the link we emailed" in seen["my ticket"]
    assert alice_client.get(url).status_code == 404

    # when she confirms it from her session
    alice_client.post(f"/my/tickets/{ticket.reference}/confirm/")

    # then she reads the note and the file
    assert NOTE in alice_client.get(f"/my/tickets/{ticket.reference}/").content.decode()
    assert alice_client.get(url).status_code == 200
    # and the change still waits for the link mailed to her address: nothing is verified
    ticket.refresh_from_db()
    alice.refresh_from_db()
    assert ticket.verified_at is None and ticket.status == Ticket.Status.AWAITING_VERIFICATION
    assert alice.city == "Kuala Lumpur"
    assert not FieldChange.objects.filter(ticket=ticket, applied_at__isnull=False).exists()


def test_an_anonymous_change_requests_note_is_shown_once_the_mailed_link_verified_it(
    alice, alice_client
):
    ticket = anonymous_change_with_note(alice)

    services.verification_confirm(
        token=link_token(verification_mail(ticket)), client_key="10.0.0.3", actor="link"
    )

    page = alice_client.get(f"/my/tickets/{ticket.reference}/").content.decode()
    assert NOTE in page and "Yes, I sent this request" not in page


def test_confirming_a_request_merged_into_a_change_request_never_verifies_the_change(
    client, alice, alice_client, agent, supervisor
):
    # given a change of Alice's details asked for by someone who typed her address, and a
    # forged general request from her address that an agent merges into it
    change = anonymous_change_with_note(alice)
    forged = forged_form(client)
    services.ticket_merge(ticket=forged, into=change, actor=agent)

    # when Alice, signed in, says the survivor is hers
    alice_client.post(f"/my/tickets/{change.reference}/confirm/")

    # then the change is still unverified: no staff path opens or applies it
    change.refresh_from_db()
    assert change.verified_at is None and change.verified_by == ""
    with pytest.raises(TransitionNotAllowed):
        services.ticket_reopen(ticket=change, actor=supervisor)
    with pytest.raises(TransitionNotAllowed):
        services.ticket_approve(ticket=change, actor=supervisor)
    alice.refresh_from_db()
    assert alice.city == "Kuala Lumpur"


# --- what the API tells a client of held words ---


def held_of(client: Client, ticket: Ticket) -> tuple[int, bool, str | None]:
    detail = client.get(f"/api/v1/tickets/{ticket.reference}/").json()
    return detail["held_messages"], detail["can_confirm"], detail["confirm_url"]


def test_the_api_detail_counts_the_held_messages_and_offers_the_confirmation(
    client, alice, agent_client
):
    # given a forged request from Alice's address, read with her API token
    ticket = forged_form(client)
    api = Client(HTTP_AUTHORIZATION=f"Token {api_key_for(alice.user)}")

    # then its detail says one message is held and where to confirm it, without its words
    response = api.get(f"/api/v1/tickets/{ticket.reference}/")
    assert not words_in(response.content.decode())
    confirm_url = f"/api/v1/tickets/{ticket.reference}/confirm/"
    assert held_of(api, ticket) == (1, True, confirm_url)
    # and staff, who read the message, are told it is held but cannot confirm it for her
    assert held_of(agent_client, ticket) == (1, False, None)

    # when she posts to the URL it gave
    assert api.post(confirm_url).status_code == 200

    # then nothing is held any more, and there is nothing left to confirm
    assert held_of(api, ticket) == (0, False, None)


def test_the_api_detail_counts_words_merged_into_her_own_request(
    client, alice, alice_client, agent
):
    # given her own request, typed signed in, with a forged one merged into it
    api = Client(HTTP_AUTHORIZATION=f"Token {api_key_for(alice.user)}")
    own = signed_in_request(alice_client)
    services.ticket_merge(ticket=forged_form(client), into=own, actor=agent)

    # then her subject is shown, the forged words are not, and she is offered to confirm them
    response = api.get(f"/api/v1/tickets/{own.reference}/")
    assert response.json()["subject"] == OWN_SUBJECT
    assert not words_in(response.content.decode())
    assert held_of(api, own) == (1, True, f"/api/v1/tickets/{own.reference}/confirm/")


def test_a_ticket_with_nothing_held_offers_no_confirmation(client, alice, alice_client):
    # given her own request, and a reply to it our mail server could not authenticate (held
    # from her, but no confirmation of hers shows it)
    own = signed_in_request(alice_client)
    post_inbound(
        client,
        payload(
            sender=ALICE,
            subject=f"Re: [{own.reference}] {OWN_SUBJECT}",
            text=BODY,
            authenticated=False,
        ),
    )
    assert own.messages.count() == 2

    # then nothing is held for her to confirm
    assert held_of(alice_client, own) == (0, False, None)
