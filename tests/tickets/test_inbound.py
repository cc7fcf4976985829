"""Email in: Postmark inbound payloads posted to the webhook, as the ESP would."""

import base64
import importlib
import json

import pytest
from django.db import transaction

from accounts.models import Customer
from tests.factories import TicketFactory
from tickets import services
from tickets.emails import ticket_thread_id
from tickets.models import ActionLog, Attachment, Message, Notification, Ticket
from tickets.redaction import REDACTED

pytestmark = pytest.mark.django_db

S = Ticket.Status
HOOK = "/anymail/postmark/inbound/"
SECRET = "hookuser:hookpass"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}
CARD = "4111 1111 1111 1111"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}


def payload(
    *,
    sender="stranger@elsewhere.test",
    to="support@exabytes.example",
    subject="Question about hosting",
    text="Hello, how do I add a mailbox?",
    html="",
    message_id="73e6d360-66eb-11e1-8e72-a8904824019b",
    headers=(),
    attachments=(),
    authenticated=True,
):
    """A Postmark inbound payload; `authenticated`: our receiving server's SPF pass on top."""
    if authenticated:
        headers = [received_spf(sender), *headers]
    return {
        "From": sender,
        "FromName": "",
        "FromFull": {"Email": sender, "Name": ""},
        "To": to,
        "ToFull": [{"Email": to, "Name": ""}],
        "CcFull": [],
        "OriginalRecipient": to,
        "Subject": subject,
        "MessageID": message_id,
        "Date": "Fri, 1 Aug 2026 16:45:32 -0400",
        "TextBody": text,
        "HtmlBody": html,
        "StrippedTextReply": "",
        "MessageStream": "inbound",
        "Headers": [{"Name": name, "Value": value} for name, value in headers],
        "Attachments": [
            {
                "Name": name,
                "ContentType": content_type,
                "Content": base64.b64encode(content).decode(),
                "ContentLength": len(content),
            }
            for name, content_type, content in attachments
        ],
    }


def received_spf(sender, result="Pass", receiver="inbound.postmarkapp.com"):
    """The Received-SPF header Postmark's inbound server puts on top of a message."""
    return (
        "Received-SPF",
        f"{result} (sender SPF authorized) identity=mailfrom; client-ip=209.85.216.43; "
        f"helo=mail.example.test; envelope-from={sender}; "
        f"receiver=b935f619461421d03d1ebd76ec881044@{receiver}",
    )


def post(client, body, auth=True):
    data = body if isinstance(body, str) else json.dumps(body)
    extra = AUTH if auth else {}
    return client.post(HOOK, data, content_type="application/json", **extra)


def ignored_reasons():
    return [row.details["reason"] for row in ActionLog.objects.filter(action="inbound.ignored")]


# --- opt-out by email ---


def test_opt_out_email_from_the_address_on_record_is_applied_and_confirmed(client, alice):
    # given Alice receives product mailings
    # when she writes to support@ asking to unsubscribe
    response = post(client, payload(sender="alice@example.test", subject="Unsubscribe me"))
    # then the mailings stop, on a resolved opt_out ticket, confirmed to her address on record
    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.product_mailings is False
    ticket = Ticket.objects.get()
    assert (ticket.kind, ticket.status, ticket.channel) == ("opt_out", S.RESOLVED, "email")
    assert ticket.customer == alice
    confirmation = Notification.objects.get(template="opt_out_confirmed")
    assert confirmation.recipient == "alice@example.test"
    stored = ticket.messages.get(internal=False).email_message_id
    assert stored == f"alice@example.test {payload()['MessageID']}"


def test_opt_out_email_to_billing_stops_reseller_newsletters(client, bob):
    # given Bob, a reseller, receives both mailings
    # when he writes to billing@ asking to opt out
    post(
        client,
        payload(
            sender="bob@example.test",
            to="billing@exabytes.example",
            subject="Newsletter",
            text="Please opt out my account from these.",
        ),
    )
    # then only the newsletters stop
    bob.refresh_from_db()
    assert (bob.product_mailings, bob.reseller_newsletters) == (True, False)


def test_opt_out_email_from_another_address_changes_nothing_and_goes_to_staff(client, alice):
    # given Alice receives product mailings
    # when someone else writes to support@ asking to unsubscribe
    post(client, payload(sender="alice@evil.test", subject="unsubscribe alice@example.test"))
    # then nothing changes and an open opt_out ticket with a note waits for staff
    alice.refresh_from_db()
    assert alice.product_mailings is True
    ticket = Ticket.objects.get()
    assert (ticket.kind, ticket.status, ticket.customer) == ("opt_out", S.OPEN, None)
    note = ticket.messages.get(internal=True)
    assert "not the email address on record" in note.body
    assert not Notification.objects.exists()


# --- replies and new tickets ---


def test_reply_with_the_reference_in_the_subject_is_added_to_that_ticket(client, alice):
    # given Alice's ticket waiting for her answer
    ticket = TicketFactory(customer=alice, status=S.AWAITING_CUSTOMER)
    # when she replies with its reference in the subject
    post(
        client,
        payload(
            sender="alice@example.test",
            subject=f"Re: [{ticket.reference}] Your request",
            text="Here is the information.",
        ),
    )
    # then her message is on that ticket, which is open again, and no new ticket is made
    assert Ticket.objects.count() == 1
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN
    message = ticket.messages.get()
    assert (message.author, message.channel, message.body) == (
        "customer",
        "email",
        "Here is the information.",
    )


def test_a_reply_whose_ticket_is_closed_as_it_arrives_is_kept_as_a_new_ticket(
    client, alice, agent, monkeypatch
):
    # given Alice's ticket waiting for her answer
    ticket = TicketFactory(customer=alice, status=S.AWAITING_CUSTOMER, contact_email=alice.email)
    # and an agent closing it just after her reply found it
    inbound_email = importlib.import_module("tickets.services.inbound_email")
    thread = inbound_email._inbound_thread

    def found_then_closed(*args):
        found = thread(*args)
        services.ticket_close(ticket=ticket, actor=agent)
        return found

    monkeypatch.setattr(inbound_email, "_inbound_thread", found_then_closed)

    # when her reply arrives
    response = post(
        client,
        payload(
            sender="alice@example.test",
            subject=f"Re: [{ticket.reference}] Your request",
            text="Here is the information.",
        ),
    )

    # then it is not lost: a new ticket holds it, as a reply to a closed ticket gets
    assert response.status_code == 200
    kept = Message.objects.get(body="Here is the information.")
    assert kept.ticket_id != ticket.pk
    assert kept.ticket.customer_id == alice.pk


def test_reply_by_in_reply_to_our_notification_is_added_to_that_ticket(client, alice):
    # given a notification we sent about Alice's ticket
    ticket = TicketFactory(customer=alice, status=S.OPEN)
    with transaction.atomic():
        notification = services.notification_queue(
            ticket=ticket, template="ticket_reply", recipient=alice.email, context={}
        )
    # when she replies with a subject that has no reference
    post(
        client,
        payload(
            sender="Alice@Example.test",
            subject="thanks",
            text="Thank you!",
            headers=[("In-Reply-To", f"<{notification.uuid}@help.exabytes.example>")],
        ),
    )
    # then it threads onto that ticket
    assert Ticket.objects.count() == 1
    assert ticket.messages.get().body == "Thank you!"


def test_reply_by_references_to_the_ticket_thread_is_added_to_that_ticket(client, alice):
    # given Alice's ticket
    ticket = TicketFactory(customer=alice, status=S.OPEN)
    # when her mail client quotes the ticket's thread id in References
    post(
        client,
        payload(
            sender="alice@example.test",
            subject="more",
            headers=[("References", f"<x@y.test> {ticket_thread_id(ticket.reference)}")],
        ),
    )
    # then it threads onto that ticket
    assert Ticket.objects.count() == 1
    assert ticket.messages.count() == 1


def test_a_reference_from_someone_else_opens_a_new_ticket_instead(client, alice):
    # given Alice's ticket
    ticket = TicketFactory(customer=alice, status=S.OPEN)
    # when a stranger writes quoting its reference
    post(client, payload(subject=f"Re: [{ticket.reference}] hello", text="Let me in."))
    # then Alice's ticket is untouched and a new general ticket holds the message
    assert ticket.messages.count() == 0
    new = Ticket.objects.exclude(pk=ticket.pk).get()
    assert (new.kind, new.channel, new.contact_email) == (
        "general",
        "email",
        "stranger@elsewhere.test",
    )


def test_a_new_email_opens_a_general_ticket_and_acknowledges_it(client, db):
    # given no ticket yet
    # when someone writes to support@
    post(client, payload())
    # then a general ticket is open with the message, and the sender gets the usual receipt
    ticket = Ticket.objects.get()
    assert (ticket.kind, ticket.status, ticket.subject) == (
        "general",
        S.OPEN,
        "Question about hosting",
    )
    assert ticket.messages.get().body == "Hello, how do I add a mailbox?"
    assert Notification.objects.get().template == "ticket_received"


def test_a_duplicate_delivery_makes_one_ticket(client, db):
    # given an email already delivered once
    post(client, payload())
    # when the ESP delivers the same MessageID again
    response = post(client, payload())
    # then there is still one ticket and one message
    assert response.status_code == 200
    assert Ticket.objects.count() == 1
    assert Message.objects.count() == 1
    assert Notification.objects.count() == 1


# --- mail that must never make a ticket ---


@pytest.mark.parametrize(
    ("headers", "sender", "reason"),
    [
        ([("Auto-Submitted", "auto-replied")], "alice@example.test", "Auto-Submitted"),
        ([("X-Autoreply", "yes")], "alice@example.test", "x-autoreply"),
        ([("Precedence", "bulk")], "alice@example.test", "Precedence"),
        ([], "MAILER-DAEMON@mx.example.net", "mailer-daemon"),
        ([], "postmaster@mx.example.net", "mailer-daemon"),
    ],
)
def test_auto_replies_and_bounces_are_ignored(client, alice, headers, sender, reason):
    # given an auto-reply or a bounce (even one that says unsubscribe)
    body = payload(sender=sender, subject="Out of office: unsubscribe", headers=headers)
    # when it arrives
    response = post(client, body)
    # then it is accepted but makes no ticket, sends nothing, and the reason is logged
    assert response.status_code == 200
    assert not Ticket.objects.exists()
    assert not Notification.objects.exists()
    alice.refresh_from_db()
    assert alice.product_mailings is True
    assert reason in ignored_reasons()[0]


@pytest.mark.parametrize(
    ("headers", "subject"),
    [
        ([("X-Autoreply-From", "alice@example.test")], "Question"),
        ([("X-Mail-Autoreply", "yes")], "Question"),
        ([("Precedence", "auto-reply")], "Question"),
        # Exchange's out-of-office reply: no Auto-Submitted, only its subject says what it is
        ([("X-Auto-Response-Suppress", "All")], "Automatic reply: Re: [HD-00000000] Question"),
        ([], "Automatic reply: Question"),
        ([], "Auto-Reply: Question"),
        ([], "AutoReply: Question"),
        ([], "Out of Office: Question"),
        ([], "Out of Office AutoReply: Question"),
        ([], "Out-of-office: Question"),
        ([], "Balasan automatik: Soalan"),
        ([], "Balasan Otomatis: Pertanyaan"),
        ([], "自动回复\uff1a问题"),
    ],
)
def test_an_out_of_office_reply_makes_no_ticket_and_no_acknowledgement(
    client, alice, headers, subject
):
    # given an out-of-office reply to one of our mails, known by its header or its subject
    body = payload(sender="alice@example.test", subject=subject, headers=headers)
    # when it arrives
    post(client, body)
    # then it opens nothing and we answer nothing (an answer would loop with the responder)
    assert not Ticket.objects.exists()
    assert not Notification.objects.exists()
    assert len(ignored_reasons()) == 1


def test_an_out_of_office_reply_does_not_reopen_the_ticket_it_answers(client, alice):
    # given Alice's resolved ticket
    ticket = TicketFactory(customer=alice, status=S.RESOLVED)
    # when her mailbox answers our mail with an Exchange out-of-office reply
    post(
        client,
        payload(
            sender="alice@example.test",
            subject=f"Automatic reply: [{ticket.reference}] Your request is resolved",
            text="I am away until Monday.",
            headers=[("X-Auto-Response-Suppress", "All")],
        ),
    )
    # then the ticket stays resolved, with no message added
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED
    assert not ticket.messages.exists()
    assert ignored_reasons() == ["out-of-office subject"]


@pytest.mark.parametrize(
    "subject",
    ["Auto-reply not working on my mailbox", "How do I set an out of office reply?"],
)
def test_a_question_about_auto_replies_is_a_ticket(client, db, subject):
    # given a person asking about their own auto-reply (the words, without a reply's prefix)
    # when it arrives
    post(client, payload(subject=subject))
    # then it is a ticket like any other, acknowledged
    assert Ticket.objects.get().subject == subject
    assert Notification.objects.get().template == "ticket_received"


@pytest.mark.parametrize("value", ["All", "OOF, AutoReply", "DR; OOF"])
def test_a_request_for_no_automatic_answer_is_kept_but_not_acknowledged(client, db, value):
    # given a person's mail on which Exchange asks for no automatic answer (it also marks mail
    # sent through distribution lists this way, so the words are a person's)
    body = payload(headers=[("X-Auto-Response-Suppress", value)])
    # when it arrives
    post(client, body)
    # then the ticket is opened with the message, and no acknowledgement is sent
    assert Ticket.objects.get().messages.get().body == "Hello, how do I add a mailbox?"
    assert not Notification.objects.exists()


def test_a_forged_suppress_header_does_not_silence_the_acknowledgement_to_the_owner(client, alice):
    # given mail in Alice's name that our server could not authenticate (anyone can write her
    # address in From), asking for no automatic answer
    body = payload(
        sender="alice@example.test",
        headers=[("X-Auto-Response-Suppress", "All")],
        authenticated=False,
    )
    # when it arrives
    post(client, body)
    # then the ticket is opened, and Alice is still told of it: the header, which its writer
    # chooses, cannot keep the owner of the address from learning of a request in her name
    ticket = Ticket.objects.get()
    notice = Notification.objects.get()
    assert (notice.template, notice.recipient) == ("ticket_received", "alice@example.test")
    assert notice.ticket_id == ticket.pk


def test_a_suppress_header_asking_only_for_no_receipts_still_gets_an_acknowledgement(client, db):
    # given mail that only asks for no delivery or read receipts
    post(client, payload(headers=[("X-Auto-Response-Suppress", "DR, RN, NRN")]))
    # then our acknowledgement (not a receipt) is sent as usual
    assert Notification.objects.get().template == "ticket_received"


def test_a_delivery_status_report_is_ignored(client, db):
    # given a DSN carrying a message/delivery-status part
    body = payload(
        sender="bounces@mx.example.net",
        subject="Undelivered Mail Returned to Sender",
        attachments=[("status", "message/delivery-status", b"Status: 5.1.1")],
    )
    # when it arrives
    post(client, body)
    # then no ticket is made
    assert not Ticket.objects.exists()
    assert ignored_reasons() == ["delivery or read report part"]


# --- content: attachments, card numbers, HTML ---


def test_allowed_attachments_are_stored_with_the_message(client, db):
    # given an email with a PDF and a PNG
    body = payload(
        attachments=[
            ("invoice.pdf", "application/pdf", b"%PDF-1.4 test"),
            ("screen.png", "image/png", PNG),
        ]
    )
    # when it arrives
    post(client, body)
    # then both are kept on the message
    message = Message.objects.get(internal=False)
    kept = {(a.filename, a.content_type, bytes(a.content)) for a in message.attachments.all()}
    assert kept == {
        ("invoice.pdf", "application/pdf", b"%PDF-1.4 test"),
        ("screen.png", "image/png", PNG),
    }


def test_an_oversized_attachment_is_refused_and_noted(client, db):
    # given an attachment one byte over 10 MB
    big = b"a" * (10 * 1024 * 1024 + 1)
    body = payload(attachments=[("big.pdf", "application/pdf", big)])
    # when it arrives
    response = post(client, body)
    # then the email is stored without it, and staff see why
    assert response.status_code == 200
    assert not Attachment.objects.exists()
    note = Message.objects.get(internal=True)
    assert "big.pdf (larger than 10 MB)" in note.body


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("invoice.pdf.exe", "application/pdf"),
        ("page.html", "text/plain"),
        ("logo.svg", "image/png"),
        ("run.js", "text/plain"),
    ],
)
def test_a_dangerous_attachment_name_is_refused_and_noted(client, db, name, content_type):
    # given an attachment whose name a computer would run or render
    body = payload(attachments=[(name, content_type, b"<script>alert(1)</script>")])
    # when it arrives
    post(client, body)
    # then it is not stored, and staff see why
    assert not Attachment.objects.exists()
    note = Message.objects.get(internal=True)
    assert f"{name} (file type not accepted)" in note.body


@pytest.mark.parametrize(
    ("name", "content_type", "reason"),
    [
        ("invoice.url", "text/plain", "file type not accepted"),
        ("letter.rtf", "text/plain", "file type not accepted"),
        ("readme.scf", "text/csv", "file type not accepted"),
        ("statement.pdf", "image/png", "name does not match its content"),
    ],
)
def test_text_named_as_a_shortcut_or_another_type_is_refused_and_noted(
    client, db, name, content_type, reason
):
    # given text (or an image) whose bytes are what the sender says, under a name a desktop
    # opens as something else: a shortcut to a program on another host, say
    content = PNG if content_type == "image/png" else b"[InternetShortcut]\r\nURL=file://x/y\r\n"
    body = payload(attachments=[(name, content_type, content)])
    # when it arrives
    post(client, body)
    # then it is not stored, and staff see why
    assert not Attachment.objects.exists()
    assert f"{name} ({reason})" in Message.objects.get(internal=True).body


def test_an_attachment_of_a_type_not_allowed_is_refused(client, db):
    # given a ZIP archive
    body = payload(attachments=[("files.zip", "application/zip", b"PK\x03\x04")])
    # when it arrives
    post(client, body)
    # then it is refused
    assert not Attachment.objects.exists()
    assert "type application/zip not accepted" in Message.objects.get(internal=True).body


def test_an_email_with_many_files_keeps_the_first_few_and_notes_the_rest(client, db):
    # given an email from anyone with 30 small files: a few hundred kilobytes of them would
    # be a hundred thousand rows, written while every other audited action waits
    attachments = [(f"files{i}.zip", "application/zip", b"PK\x03\x04") for i in range(2)]
    attachments += [(f"shot{i}.png", "image/png", PNG) for i in range(28)]
    body = payload(authenticated=False, attachments=attachments)
    # when it arrives
    response = post(client, body)
    # then the first 20 are looked at (18 kept, 2 refused), the other 10 not, and staff see it
    assert response.status_code == 200
    kept = sorted(Attachment.objects.values_list("filename", flat=True))
    assert kept == sorted(f"shot{i}.png" for i in range(18))
    note = Message.objects.get(internal=True).body
    assert "files1.zip (type application/zip not accepted)" in note
    assert "shot18.png" not in note
    assert "10 more files (only the first 20 files of an email are looked at)" in note


def test_card_numbers_are_redacted_in_subject_and_body(client, db):
    # given an email with a card number in the subject and the text
    body = payload(subject=f"Pay with {CARD}", text=f"My card is {CARD}, expiry 12/29.")
    # when it arrives
    post(client, body)
    # then the number is stored nowhere
    ticket = Ticket.objects.get()
    message = ticket.messages.get(internal=False)
    assert CARD not in ticket.subject
    assert REDACTED in ticket.subject
    assert message.body == f"My card is {REDACTED}, expiry 12/29."
    assert "4111" not in json.dumps(list(ActionLog.objects.values_list("details", flat=True)))


def test_a_subject_keeps_no_bidi_override(client, db):
    # given a subject that a right-to-left override makes read "Invoice exe.pdf" on the queue
    # when it arrives
    post(client, payload(subject="Invoice \u202efdp.exe"))
    # then the override is gone, so the subject reads as what it is
    assert Ticket.objects.get().subject == "Invoice fdp.exe"


def test_html_only_mail_is_stored_as_sanitised_text(client, db):
    # given an email with only an HTML part
    html = (
        "<p>Hello &amp; welcome</p><script>alert('x')</script>"
        "<style>p{color:red}</style><p onclick='x()'>Second <b>line</b></p>"
    )
    # when it arrives
    post(client, payload(text="", html=html))
    # then its text is kept, without markup, script or style
    body = Message.objects.get().body
    assert body == "Hello & welcome\nSecond line"


# --- the webhook itself ---


def test_malformed_json_is_a_400(client, db):
    # given a body that is not JSON
    # when it is posted with the right secret
    response = post(client, "{not json")
    # then it is a 400 and nothing is stored
    assert response.status_code == 400
    assert not Ticket.objects.exists()


@pytest.mark.parametrize("body", ["[]", '"text"', '{"Attachments": [{"Name": "x"}]}'])
def test_json_of_the_wrong_shape_is_a_400(client, db, body):
    # given JSON that is not a Postmark inbound message
    # when it is posted with the right secret
    response = post(client, body)
    # then it is a 400
    assert response.status_code == 400


@pytest.mark.parametrize(
    "field", ["message_id", "sender", "subject", "text", "html", "header", "attachment"]
)
def test_a_lone_surrogate_anywhere_in_an_email_is_read_as_a_replacement_character(
    client, db, field
):
    # given an email whose sender's software wrote an unpaired UTF-16 surrogate, which the
    # ESP's JSON escapes (\udc80) but no UTF-8 text (a MIME part, a database column) can hold
    values = {"message_id": "<m1@elsewhere.test>", "text": "Hello", "html": ""}
    if field == "header":
        values["headers"] = [("X-Mailer", "Mailer MARK")]
    elif field == "attachment":
        values["attachments"] = [("scanMARK.png", "image/png", PNG)]
    elif field == "sender":
        values["sender"] = "straMARKnger@elsewhere.test"
    else:
        values[field] = f"{values.get(field) or 'Question'} MARK"
    body = json.dumps(payload(**values)).replace("MARK", "\\udc80")

    # when it is posted
    response = post(client, body)

    # then it is taken, not refused (the ESP would drop it) nor failed (it would retry for
    # hours): the character reads as U+FFFD, as a mail client shows it
    assert response.status_code == 200
    assert Ticket.objects.count() == 1
    stored = Message.objects.get()
    assert "\udc80" not in stored.body
    if field == "text":
        assert stored.body == "Hello \ufffd"


@pytest.mark.parametrize(
    ("header", "ignored"),
    [("From: alice@example.test@attacker.test", True), ("To: <>", False)],
)
def test_raw_mime_with_an_address_anymail_cannot_read_is_taken_not_a_500(
    client, db, header, ignored
):
    # given Postmark's payload with the raw message, whose From or To the sender wrote unreadable
    raw = {"From": "From: alice@example.test", "To": "To: support@exabytes.example"}
    raw[header.split(":")[0]] = header
    body = payload()
    body["RawEmail"] = f"{raw['From']}\r\n{raw['To']}\r\nSubject: Hello\r\n\r\nHi there\r\n"
    # when it is posted
    response = post(client, body)
    # then it is accepted, not failed for the ESP to retry: a From that is no address is an empty
    # From (ignored and audited), a To that is none leaves the envelope recipient
    assert response.status_code == 200
    assert (ignored_reasons() == ["empty From"]) is ignored
    assert Ticket.objects.exists() is not ignored


def test_a_request_without_the_secret_is_a_400(client, alice):
    # given a valid opt-out payload
    body = payload(sender="alice@example.test", subject="unsubscribe")
    # when it is posted without basic auth, or with the wrong one
    without = post(client, body, auth=False)
    wrong = client.post(
        HOOK,
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"hookuser:nope").decode(),
    )
    # then both are refused and nothing changes
    assert (without.status_code, wrong.status_code) == (400, 400)
    alice.refresh_from_db()
    assert alice.product_mailings is True
    assert not Ticket.objects.exists()


def test_a_reply_from_a_ticket_address_the_freeze_took_back_is_not_added_to_it(client, alice):
    # given Alice's resolved ticket, written to another address (one that took her account
    # over), and her account frozen since she reported it: her tickets answer only her record
    ticket = TicketFactory(customer=alice, status=S.RESOLVED, contact_email="taker@evil.test")
    Customer.objects.filter(pk=alice.pk).update(account_status=Customer.AccountStatus.SUSPENDED)

    # when that address replies with the ticket's reference (its own server vouching for it)
    post(
        client,
        payload(
            sender="taker@evil.test",
            subject=f"Re: [{ticket.reference}] Your request",
            text="Please change my email back.",
        ),
    )

    # then Alice's ticket is untouched: neither reopened nor given the message
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED
    assert ticket.messages.count() == 0
