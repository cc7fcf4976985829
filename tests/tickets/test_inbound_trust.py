"""Inbound mail you can trust: threading before opt-outs, explicit opt-outs only, keys that a
stranger cannot take, no loops, and limits on tickets and acknowledgements per sender."""

import pytest

from tests.factories import TicketFactory
from tests.tickets.test_inbound import SECRET, payload, post
from tickets import emails
from tickets.models import ActionLog, Message, Notification, Ticket

pytestmark = pytest.mark.django_db

S = Ticket.Status
SPAM = "Cheap pills at spam.example"
FULL_WIDTH_HTM = "\uff45\uff56\uff49\uff4c.\uff48\uff54\uff4d"  # "evil.htm" in full width


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}


def ignored_reasons() -> list[str]:
    return [row.details["reason"] for row in ActionLog.objects.filter(action="inbound.ignored")]


def rendered(notification: Notification) -> str:
    message = emails.build_message(notification)
    return "\n".join([message.subject, message.body, message.alternatives[0][0]])


# --- a reply is a reply ---


def test_a_reply_that_mentions_unsubscribe_stays_on_its_ticket(client, alice):
    # given Alice's ticket
    ticket = TicketFactory(customer=alice, status=S.AWAITING_CUSTOMER)
    # when she replies to it, saying she does not want to unsubscribe
    post(
        client,
        payload(
            sender="alice@example.test",
            subject=f"Re: [{ticket.reference}] unsubscribe",
            text="I do NOT want to unsubscribe, I want the invoice resent.",
        ),
    )
    # then the reply is on her ticket and her mailings are untouched
    alice.refresh_from_db()
    assert alice.product_mailings is True
    assert Ticket.objects.count() == 1
    assert "invoice resent" in ticket.messages.get().body


def test_a_threaded_reply_saying_unsubscribe_is_still_a_reply(client, alice):
    ticket = TicketFactory(customer=alice, status=S.OPEN)
    post(
        client,
        payload(
            sender="alice@example.test",
            subject="Unsubscribe",
            text="Unsubscribe",
            headers=[("In-Reply-To", emails.ticket_thread_id(ticket.reference))],
        ),
    )

    alice.refresh_from_db()
    assert alice.product_mailings is True
    assert ticket.messages.get().body == "Unsubscribe"


def test_a_mention_of_unsubscribe_is_not_an_opt_out(client, alice):
    post(
        client,
        payload(
            sender="alice@example.test",
            subject="Question",
            text="I do NOT want to unsubscribe, but the mails come twice.",
        ),
    )

    alice.refresh_from_db()
    assert alice.product_mailings is True
    assert Ticket.objects.get().kind == "general"


def test_an_explicit_first_line_opts_out_and_is_confirmed_to_the_record(client, alice):
    post(
        client,
        payload(
            sender="alice@example.test",
            subject="Mailings",
            text="Please unsubscribe me.\n\nThanks, Alice",
        ),
    )

    alice.refresh_from_db()
    assert alice.product_mailings is False
    assert Notification.objects.get(template="opt_out_confirmed").recipient == alice.email


def test_our_list_unsubscribe_mailto_opts_out(client, alice):
    # The mailto in our List-Unsubscribe header sets subject=unsubscribe and no text.
    post(client, payload(sender="alice@example.test", subject="unsubscribe", text=""))

    alice.refresh_from_db()
    assert alice.product_mailings is False


# --- Message-ID and sender together ---


def test_a_message_id_sent_first_by_a_stranger_does_not_drop_the_real_mail(client, alice):
    # given a stranger's mail carrying the Message-ID Alice's mail will have
    ticket = TicketFactory(customer=alice, status=S.OPEN)
    post(client, payload(sender="mallory@evil.test", message_id="<real@alice-mail.test>"))
    # when Alice's real reply arrives with that id
    post(
        client,
        payload(
            sender="alice@example.test",
            subject=f"Re: [{ticket.reference}]",
            text="The real reply.",
            message_id="<real@alice-mail.test>",
        ),
    )
    # then it is stored on her ticket
    assert ticket.messages.get().body == "The real reply."


def test_the_same_message_from_the_same_sender_is_still_stored_once(client, db):
    post(client, payload(message_id="<once@elsewhere.test>"))
    post(client, payload(message_id="<once@elsewhere.test>"))

    assert Message.objects.count() == 1


# --- loops ---


@pytest.mark.parametrize(
    ("sender", "headers"),
    [
        ("support@exabytes.example", []),
        ("Billing+news@Exabytes.example", []),
        ("someone@elsewhere.test", [("X-Loop", "support@exabytes.example")]),
        ("someone@elsewhere.test", [("Return-Path", "<>")]),
        ("someone@elsewhere.test", [("Return-Path", "<MAILER-DAEMON@mx.elsewhere.test>")]),
        ("mailer-daemon+x@mx.elsewhere.test", []),
        ("MAILER-DAEMON@mx.elsewhere.test", []),
        ("Mailer_Daemon@mx.elsewhere.test", []),
        ("postmaster+bounces@mx.elsewhere.test", []),
    ],
)
def test_looping_mail_is_dropped_and_audited(client, alice, sender, headers):
    response = post(client, payload(sender=sender, subject="Hello", headers=headers))

    assert response.status_code == 200
    assert not Ticket.objects.exists()
    assert not Notification.objects.exists()
    assert len(ignored_reasons()) == 1


def test_our_outgoing_mail_carries_x_loop_and_is_dropped_when_it_comes_back(client, alice):
    # given an acknowledgement we send
    post(client, payload(sender="alice@example.test"))
    message = emails.build_message(Notification.objects.get(template="ticket_received"))
    assert message.extra_headers["X-Loop"] == "support@exabytes.example"
    # when it comes back to us from an address that forwards everything (no Auto-Submitted)
    headers = [("X-Loop", message.extra_headers["X-Loop"])]
    post(client, payload(sender="forwarder@elsewhere.test", headers=headers, message_id="<2@x>"))
    # then it makes nothing
    assert Ticket.objects.count() == 1
    assert "X-Loop names us" in ignored_reasons()


# --- limits per sender and per sender domain ---


def test_thirty_forged_mails_in_a_second_send_the_victim_three_acknowledgements(client, db):
    # when 30 mails with a forged sender arrive at once
    for n in range(30):
        post(client, payload(sender="victim@target.test", subject=SPAM, message_id=f"<{n}@x>"))
    # then the victim gets three acknowledgements, none carrying the forged subject
    acks = Notification.objects.filter(template="ticket_received")
    assert [ack.recipient for ack in acks] == ["victim@target.test"] * 3
    assert all("spam.example" not in rendered(ack) for ack in acks)
    # and past the per-sender limit the mail is dropped and audited
    assert Ticket.objects.count() == 10
    assert ignored_reasons() == ["rate limit"] * 20


def test_mail_from_many_addresses_of_one_domain_is_limited_per_domain(
    client, db, settings, rate_window_start
):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "inbound_per_sender_domain": (20, 3600),
        "ack_per_domain": (2, 3600),
        "ack_per_domain_all_clients": (4, 3600),
    }

    def acks() -> list[str]:
        rows = Notification.objects.filter(template="ticket_received").order_by("id")
        return [row.recipient for row in rows]

    # given forged mail (no verdict of our server) from many addresses of one domain
    for n in range(6):
        forged = payload(sender=f"user{n}@target.test", message_id=f"<f{n}@x>", authenticated=False)
        post(client, forged)
    # then it is one client: two acknowledgements for the lot
    assert Ticket.objects.count() == 6
    assert acks() == ["user0@target.test", "user1@target.test"]

    # when real customers there write, their mail authenticated
    for n in range(3):
        post(client, payload(sender=f"real{n}@target.test", message_id=f"<r{n}@x>"))
    # then each is a client of their own, the forged burst spent nothing of theirs, and the
    # ceiling for the domain from everyone still holds
    assert acks()[2:] == ["real0@target.test", "real1@target.test"]
    assert Ticket.objects.count() == 9


def test_forged_mail_is_one_client_when_authentication_is_not_required(client, db, settings):
    # given a server that lets unauthenticated mail act for its sender (a verdict "trusted"
    # with nothing authenticated) and a small allowance per domain
    settings.INBOUND_REQUIRE_AUTHENTICATION = False
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "inbound_per_sender_domain": (20, 3600),
        "ack_per_domain": (2, 3600),
    }
    # when someone forges mail From: six addresses of one domain
    for n in range(6):
        forged = payload(sender=f"user{n}@target.test", message_id=f"<f{n}@x>", authenticated=False)
        post(client, forged)
    # then the forger is still one client: two acknowledgements for the lot, not one each
    # (only an authenticated From is a client of its own)
    assert Ticket.objects.count() == 6
    acks = Notification.objects.filter(template="ticket_received").order_by("id")
    assert [n.recipient for n in acks] == ["user0@target.test", "user1@target.test"]


def test_mail_from_one_authenticated_sender_spends_its_own_domain_allowance(client, db, settings):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "ack_per_address": (10, 3600),
        "ack_per_domain": (2, 3600),
    }
    for n in range(4):
        post(client, payload(sender="Real@target.test", message_id=f"<r{n}@x>"))
    post(client, payload(sender="other@target.test", message_id="<o@x>"))

    recipients = [n.recipient for n in Notification.objects.filter(template="ticket_received")]
    assert sorted(recipients) == ["Real@target.test"] * 2 + ["other@target.test"]


def test_a_reply_on_a_ticket_is_not_counted_as_a_new_ticket(client, alice, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "inbound_per_sender": (1, 3600)}
    ticket = TicketFactory(customer=alice, status=S.OPEN)
    for n in range(3):
        subject = f"Re: [{ticket.reference}]"
        post(client, payload(sender=alice.email, subject=subject, message_id=f"<{n}@x>"))

    assert ticket.messages.count() == 3


# --- what an acknowledgement says ---


def test_the_acknowledgement_to_an_address_not_on_record_has_no_requester_text(client, db):
    post(client, payload(sender="someone@elsewhere.test", subject=SPAM))

    ack = Notification.objects.get(template="ticket_received")
    text = rendered(ack)
    assert ack.recipient == "someone@elsewhere.test"
    assert Ticket.objects.get().reference in text
    assert "spam.example" not in text
    assert "Cheap pills" not in text


def test_the_acknowledgement_to_the_address_on_record_names_the_subject(client, alice):
    post(client, payload(sender="alice@example.test", subject="My invoice"))

    assert "My invoice" in rendered(Notification.objects.get(template="ticket_received"))


def test_the_web_forms_acknowledgement_to_a_typed_address_has_no_requester_text(client, db):
    response = client.post(
        "/requests/new/",
        {"subject": SPAM, "message": "Visit spam.example now", "email": "victim@target.test"},
    )

    assert response.status_code == 303
    ack = Notification.objects.get(template="ticket_received")
    assert ack.recipient == "victim@target.test"
    assert "spam.example" not in rendered(ack)


def test_the_web_forms_acknowledgements_are_limited_per_address(client, db):
    for n in range(5):
        client.post(
            "/requests/new/",
            {"subject": "Hi", "message": "Hello", "email": "victim@target.test"},
            REMOTE_ADDR=f"10.60.0.{n}",
        )

    assert Ticket.objects.count() == 5
    assert Notification.objects.filter(template="ticket_received").count() == 3


# --- attachments: the bytes decide the type, the name is normalised ---


def _attachment_outcome(client, name, content_type, content):
    from tickets.models import Attachment

    post(client, payload(attachments=[(name, content_type, content)]))
    note = Message.objects.filter(internal=True).first()
    return list(
        Attachment.objects.values_list("filename", "content_type")
    ), note.body if note else ""


@pytest.mark.parametrize(
    ("name", "content_type", "content", "reason"),
    [
        ("evil.htm\u200b", "text/plain", b"hello", "file type not accepted"),
        ("evil\u202ephp.txt", "text/plain", b"hello", ""),
        (
            "\uff45\uff56\uff49\uff4c.\uff48\uff54\uff4d",
            "text/plain",
            b"hi",
            "file type not accepted",
        ),
        ("photo.png", "image/png", b"<html><script>alert(1)</script></html>", "content is not"),
        ("notes.txt", "text/plain", b"<!DOCTYPE html><body onload=x()>", "content is not"),
        ("scan.pdf", "application/pdf", b"MZ\x90\x00 a Windows program", "content is not"),
    ],
)
def test_attachments_are_judged_by_their_bytes_and_normalised_name(
    client, db, name, content_type, content, reason
):
    kept, note = _attachment_outcome(client, name, content_type, content)

    if reason:
        assert kept == []
        assert reason in note
    else:
        # the bidi override is gone, so the name reads as what it is
        assert kept == [("evilphp.txt", "text/plain")]


def test_an_attachment_name_is_stored_nfc_and_without_folders(client, db):
    kept, _ = _attachment_outcome(
        client, "..\\..\\docs/Re\u0301sume\u0301.pdf", "application/pdf", b"%PDF-1.7\n"
    )

    assert kept == [("R\u00e9sum\u00e9.pdf", "application/pdf")]


def test_a_real_png_declared_as_png_is_kept(client, db):
    kept, _ = _attachment_outcome(client, "a.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * 8)

    assert kept == [("a.png", "image/png")]


# --- forged replies on a known reference ---


def forged_replies(client, ticket, count, *, sender, authenticated=False, first=0):
    """`count` replies naming `ticket`'s reference from `sender`; the webhook's statuses."""
    return [
        post(
            client,
            payload(
                sender=sender,
                subject=f"Re: [{ticket.reference}] Your question",
                text=f"Reply number {n}",
                message_id=f"<reply-{n}@x>",
                authenticated=authenticated,
            ),
        ).status_code
        for n in range(first, first + count)
    ]


def test_forged_replies_on_a_known_reference_are_limited_per_sender(client, alice, settings):
    limit = settings.RATE_LIMITS["inbound_reply_unverified_per_sender"][0]
    ticket = TicketFactory(customer=alice, contact_email=alice.email, status=S.AWAITING_CUSTOMER)

    # when a stranger sends many replies as Alice, her address spelled two ways, none of them
    # authenticated by our mail server
    statuses = forged_replies(client, ticket, limit, sender=alice.email)
    statuses += forged_replies(client, ticket, 5, sender="ALICE@Example.test", first=limit)

    # then the ESP is answered 2xx for each (it does not retry), the first `limit` are kept as
    # replies that reopen nothing, and the rest are dropped and audited on the ticket
    assert set(statuses) == {200}
    assert ticket.messages.filter(author=Message.Author.CUSTOMER).count() == limit
    dropped = ActionLog.objects.filter(action="inbound.ignored", ticket=ticket)
    assert [row.details["reason"] for row in dropped] == ["reply rate limit"] * 5
    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_CUSTOMER


def test_forged_replies_on_a_known_reference_are_limited_per_ticket(client, alice, settings):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "inbound_reply_unverified_per_ticket": (3, 3600),
    }
    # given a ticket read at two addresses, its contact's and its customer's
    ticket = TicketFactory(customer=alice, contact_email="alice.work@example.test", status=S.OPEN)

    forged_replies(client, ticket, 2, sender=alice.email)
    forged_replies(client, ticket, 2, sender="alice.work@example.test", first=2)

    assert ticket.messages.filter(author=Message.Author.CUSTOMER).count() == 3
    assert ignored_reasons() == ["reply rate limit"]


def test_authenticated_replies_are_never_limited(client, alice, settings):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "inbound_reply_unverified_per_sender": (1, 3600),
        "inbound_reply_unverified_per_ticket": (1, 3600),
    }
    ticket = TicketFactory(customer=alice, contact_email=alice.email, status=S.OPEN)

    forged_replies(client, ticket, 1, sender=alice.email)
    forged_replies(client, ticket, 5, sender=alice.email, authenticated=True, first=1)

    assert ticket.messages.filter(author=Message.Author.CUSTOMER).count() == 6
    assert ignored_reasons() == []


def test_a_forger_spends_one_addresss_share_on_one_ticket_only(client, alice, settings):
    # given a ticket read at Alice's work address and her email on record, and another of hers
    ticket = TicketFactory(customer=alice, contact_email="alice.work@example.test", status=S.OPEN)
    other = TicketFactory(customer=alice, contact_email=alice.email, status=S.OPEN)
    per_sender = settings.RATE_LIMITS["inbound_reply_unverified_per_sender"][0]
    ceiling = settings.RATE_LIMITS["inbound_reply_unverified_per_ticket"][0]

    # when a stranger who knows the reference sends more than the ticket's ceiling as Alice
    forged_replies(client, ticket, ceiling + 5, sender=alice.email)

    # then only her address's share on that ticket is spent: her unauthenticated replies from
    # the work address on it, and from her own address on her other ticket, are still kept
    forged_replies(client, ticket, 1, sender="alice.work@example.test", first=100)
    forged_replies(client, other, 1, sender=alice.email, first=200)
    kept = Message.objects.filter(author=Message.Author.CUSTOMER)
    assert kept.filter(ticket=ticket).count() == per_sender + 1
    assert kept.filter(ticket=other).count() == 1
    assert ignored_reasons() == ["reply rate limit"] * (ceiling + 5 - per_sender)
