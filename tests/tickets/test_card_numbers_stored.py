"""A card number typed into any field is stored nowhere: not on the row, the audit chain or the
outbox. Messages, notes and reasons are covered where they are written; these are the rest."""

import re

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import ApiToken, Customer
from tests.tickets.test_attachments import PNG
from tests.tickets.test_inbound import SECRET, payload, post
from tickets.audit import audit_record
from tickets.models import ActionLog, Attachment, Disclosure, Message, SavedView, Ticket
from tickets.redaction import REDACTED

CARD = "4111 1111 1111 1111"
CARD_DIGITS = "4111111111111111"


def _texts(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, bytes | memoryview):
        yield bytes(value).decode("latin-1")
    elif value is not None:
        yield str(value)


def stored_with_the_card() -> list[str]:
    """Every stored value (row, audit details, outbox context, ...) holding the card's digits.

    Each text is read with its separators taken out, so the number is found however it was
    typed (spaces, dashes).
    """
    found = []
    for model in apps.get_models():
        for row in model._base_manager.values():
            for field, value in row.items():
                if any(CARD_DIGITS in re.sub(r"\D", "", text) for text in _texts(value)):
                    found.append(f"{model._meta.label}.{field}")
    return found


def test_the_check_finds_a_card_number_wherever_it_is_stored(db):
    audit_record(
        actor="system", action="test", details={"files": [{"name": "4111-1111-1111-1111"}]}
    )

    assert stored_with_the_card() == ["tickets.ActionLog.details"]


# --- attachment file names ---


def test_a_file_name_with_a_card_number_is_stored_without_it(client, db):
    upload = SimpleUploadedFile(f"card {CARD}.png", PNG, content_type="image/png")

    response = client.post(
        "/requests/new/",
        {
            "subject": "Site down",
            "message": "See the screenshot.",
            "email": "x@example.test",
            "attachments": [upload],
        },
    )

    assert response.status_code == 303
    assert Attachment.objects.get().filename == f"card {REDACTED}.png"
    assert stored_with_the_card() == []


def test_an_emailed_file_name_with_a_card_number_is_stored_without_it_kept_or_refused(
    client, db, settings
):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    body = payload(
        attachments=[
            (f"receipt {CARD}.png", "image/png", PNG),
            (f"{CARD}.exe", "application/octet-stream", b"MZ"),
        ]
    )

    response = post(client, body)

    assert response.status_code == 200
    assert Attachment.objects.get().filename == f"receipt {REDACTED}.png"
    note = Message.objects.get(internal=True)
    assert f"{REDACTED}.exe (file type not accepted)" in note.body
    assert stored_with_the_card() == []


# --- inbound mail headers ---


def _inbound_with_cards_in_headers(*, reply_to=None, auto=False):
    """Mail whose headers carry a card number where the sender writes: names, HELO, MAIL FROM's
    comment, Message-ID; our receiving server copies the HELO and MAIL FROM into its verdict."""
    sender = "stranger@elsewhere.test"
    body = payload(sender=sender, authenticated=False, message_id=f"{CARD_DIGITS}@mail.test")
    body["FromName"] = f"Card {CARD}"
    body["FromFull"] = {"Email": sender, "Name": f"Card {CARD}"}
    body["ToFull"] = [{"Email": "support@exabytes.example", "Name": f"Pay {CARD}"}]
    body["CcFull"] = [{"Email": "friend@elsewhere.test", "Name": f"Cc {CARD}"}]
    body["Headers"] = [
        {
            "Name": "Received-SPF",
            "Value": "Pass (sender SPF authorized) identity=mailfrom; client-ip=209.85.216.43; "
            f"helo={CARD.replace(' ', '-')}.mail.test; envelope-from={sender}; "
            "receiver=b935f619461421d03d1ebd76ec881044@inbound.postmarkapp.com",
        },
        {"Name": "Message-ID", "Value": f"<{CARD_DIGITS}@mail.test>"},
    ]
    if auto:
        body["Headers"].append({"Name": "Auto-Submitted", "Value": "auto-replied"})
    if reply_to is not None:
        body["Subject"] = f"Re: [{reply_to.reference}] Question"
    return body


@pytest.mark.parametrize("kind", ["new", "reply", "ignored"])
def test_card_numbers_in_inbound_mail_headers_are_stored_nowhere(client, db, settings, kind):
    # given mail to support@ whose header fields hold a card number: a new request, a reply on
    # the sender's ticket, or an auto-reply that is only audited
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    ticket = None
    if kind == "reply":
        post(client, payload(sender="stranger@elsewhere.test", message_id="first@mail.test"))
        ticket = Message.objects.get(internal=False).ticket

    # when it arrives
    response = post(client, _inbound_with_cards_in_headers(reply_to=ticket, auto=kind == "ignored"))

    # then it is taken as usual, and no row, audit entry or outbox row holds the number
    assert response.status_code == 200
    outcomes = [
        row.details.get("outcome") for row in ActionLog.objects.filter(action="inbound.received")
    ]
    expected = {"new": ["new_ticket"], "reply": ["new_ticket", "reply"], "ignored": []}[kind]
    assert outcomes == expected
    if kind == "ignored":
        assert ActionLog.objects.filter(action="inbound.ignored").count() == 1
    assert stored_with_the_card() == []


def test_the_same_mail_with_a_card_in_its_message_id_is_still_stored_once(client, db, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}

    first = post(client, _inbound_with_cards_in_headers())
    again = post(client, _inbound_with_cards_in_headers())

    assert first.status_code == again.status_code == 200
    assert Message.objects.filter(internal=False).count() == 1
    assert stored_with_the_card() == []


# --- API token names ---


def test_an_api_token_named_with_a_card_number_is_stored_without_it(alice):
    response = Client().post(
        "/api/v1/auth/token/",
        {"username": "alice@example.test", "password": "alice-demo-pass", "name": f"pay {CARD}"},
        content_type="application/json",
    )

    assert response.status_code == 200
    assert response.json()["name"] == f"pay {REDACTED}"
    assert ApiToken.objects.get().name == f"pay {REDACTED}"
    assert stored_with_the_card() == []


# --- saved views of the staff queue ---


def test_a_saved_view_named_with_a_card_number_is_stored_without_it(agent_client, agent):
    response = agent_client.post(
        "/staff/views/", {"name": f"Card {CARD}", "query": f"view=all&q={CARD}"}
    )

    assert response.status_code == 302
    saved = SavedView.objects.get(owner=agent)
    assert saved.name == f"Card {REDACTED}"
    assert saved.query == "view=all&q=%5Bcard+number+removed%5D&sort=urgency&size=25"
    assert stored_with_the_card() == []


# --- the supervisor's records: disclosures, lifting a freeze ---


def test_a_disclosure_with_a_card_number_is_recorded_without_it(supervisor_client, alice):
    # the longest name the form takes, ending in the number: longer once it is redacted
    disclosed_to = "B" * 184 + CARD_DIGITS

    response = supervisor_client.post(
        f"/staff/customers/{alice.number}/disclosures/new/",
        {
            "disclosed_to": disclosed_to,
            "information": f"Name and the card {CARD} she named",
            "legal_basis": f"Order on card {CARD}",
            "reference": CARD,
        },
    )

    assert response.status_code == 302
    disclosure = Disclosure.objects.get()
    assert disclosure.disclosed_to == ("B" * 184 + REDACTED)[:200]
    assert disclosure.information == f"Name and the card {REDACTED} she named"
    assert disclosure.reference == REDACTED
    assert stored_with_the_card() == []


def test_a_freeze_lifted_with_a_card_number_in_its_reason_is_audited_without_it(
    supervisor_client, alice
):
    Customer.objects.filter(pk=alice.pk).update(account_status=Customer.AccountStatus.SUSPENDED)

    response = supervisor_client.post(
        f"/staff/customers/{alice.number}/unfreeze/",
        {"reason": f"She read back the card on file, {CARD}, on a call.", "freeze_version": 0},
    )

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.account_status == Customer.AccountStatus.ACTIVE
    row = ActionLog.objects.get(action="account.unfrozen")
    assert row.details == {
        "reason": f"She read back the card on file, {REDACTED}, on a call.",
        "freeze_version": 0,
    }
    assert stored_with_the_card() == []


# --- however the number is written ---


@pytest.mark.parametrize(
    "written",
    [
        "4111\u00a01111\u00a01111\u00a01111",  # no-break spaces, as pasted from a web page
        "4111\u202f1111\u202f1111\u202f1111",  # narrow no-break spaces
        "4111  1111  1111  1111",  # two spaces
        "4111\t1111\t1111\t1111",
        "4111.1111.1111.1111",
        "4111 - 1111 - 1111 - 1111",
        "4111\u20111111\u20111111\u20111111",  # non-breaking hyphens
        "4111\u20131111\u20131111\u20131111",  # en dashes
    ],
)
def test_a_card_number_grouped_by_other_separators_is_stored_without_it(client, db, written):
    response = client.post(
        "/requests/new/",
        {
            "subject": "Billing",
            "message": f"Charge my card {written} please.",
            "email": "x@example.test",
        },
    )

    assert response.status_code == 303
    assert Message.objects.get().body == f"Charge my card {REDACTED} please."
    assert stored_with_the_card() == []


def test_a_long_number_that_fails_luhn_is_kept_however_it_is_grouped(client, db):
    response = client.post(
        "/requests/new/",
        {
            "subject": "Order",
            "message": "Order 4111.1111.1111.1112 is late.",
            "email": "x@example.test",
        },
    )

    assert response.status_code == 303
    assert Message.objects.get().body == "Order 4111.1111.1111.1112 is late."


@pytest.mark.parametrize(
    ("message", "stored"),
    [
        (f"Paid with ref-{CARD_DIGITS} today.", f"Paid with ref-{REDACTED} today."),
        (f"Card {CARD_DIGITS}.5 was charged.", f"Card {REDACTED}.5 was charged."),
        (f"Card {CARD}. 5 tries failed.", f"Card {REDACTED}. 5 tries failed."),
        ("Order ref-1234567890123 is late.", "Order ref-1234567890123 is late."),
        ("Call +60 3-2171 9999 or +60 12-345 6789.", "Call +60 3-2171 9999 or +60 12-345 6789."),
    ],
)
def test_a_number_after_a_hyphen_or_before_a_dot_is_read_as_any_other(client, db, message, stored):
    response = client.post(
        "/requests/new/",
        {"subject": "Billing", "message": message, "email": "x@example.test"},
    )

    assert response.status_code == 303
    assert Message.objects.get().body == stored
    assert stored_with_the_card() == []


# --- a card number as the sender's address ---


def test_mail_from_an_address_that_is_a_card_number_is_dropped_and_audited_without_it(
    client, db, settings, caplog
):
    # given mail to support@ whose sender's address is a card number
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    sender = f"{CARD_DIGITS}@example.test"

    # when it arrives
    response = post(client, payload(sender=sender, message_id="card-sender@mail.test"))

    # then the ESP is answered, no ticket holds the address, and the audit says why
    assert response.status_code == 200
    assert not Ticket.objects.exists()
    row = ActionLog.objects.get(action="inbound.ignored")
    assert row.details["reason"] == "a card number in the From address"
    assert row.details["from"] == f"{REDACTED}@example.test"
    assert stored_with_the_card() == []
    assert CARD_DIGITS not in caplog.text


def test_a_request_whose_reply_address_is_a_card_number_is_refused_and_stores_nothing(client, db):
    response = client.post(
        "/requests/new/",
        {"subject": "Help", "message": "Hello.", "email": f"{CARD_DIGITS}@example.test"},
    )

    assert response.status_code == 400
    assert "looks like a card number" in response.content.decode()
    assert not Ticket.objects.exists()
    assert stored_with_the_card() == []


# --- an address typed as the one on record, or for a password reset ---

TYPED_CARD = f"{CARD_DIGITS}@example.test"


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/accounts/password-reset/", {"email": TYPED_CARD}),
        ("/requests/modify/", {"email_on_record": TYPED_CARD, "city": "Ipoh"}),
        ("/requests/opt-out/", {"email": TYPED_CARD, "lists": ["product_mailings"]}),
    ],
)
def test_an_address_typed_as_a_card_number_is_refused_and_stores_nothing(client, db, path, data):
    # when a card number is typed as the address on a form that keeps it for the worker (the
    # reset's outbox row, the anonymous request's row)
    response = client.post(path, data)

    # then the form says why, and nothing holds the number, before the worker or after it
    assert response.status_code == 400
    assert "looks like a card number" in response.content.decode()
    assert stored_with_the_card() == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/requests/modify/", {"email": TYPED_CARD, "changes": {"city": "Ipoh"}}),
        ("/api/v1/requests/opt-out/", {"email": TYPED_CARD, "lists": ["product_mailings"]}),
    ],
)
def test_an_address_on_record_sent_as_a_card_number_is_a_400_and_stores_nothing(db, path, body):
    from rest_framework.test import APIClient

    response = APIClient().post(path, body, format="json")

    assert response.status_code == 400
    assert "looks like a card number" in response.json()["email"][0]
    assert stored_with_the_card() == []


def test_a_status_link_asked_for_a_card_number_address_is_refused_before_the_broker(
    client, db, monkeypatch
):
    from tickets import tasks

    queued: list[dict] = []
    monkeypatch.setattr(
        tasks.status_link_send, "apply_async", lambda **kwargs: queued.append(kwargs["kwargs"])
    )
    # given a ticket whose contact address was written around the rule to hold the number, and
    # one that does not: the answer must not say which is on record
    held = Ticket.objects.create(kind="general", subject="Help", contact_email="a@example.test")
    Ticket.objects.filter(pk=held.pk).update(contact_email=TYPED_CARD)
    other = Ticket.objects.create(kind="general", subject="Help", contact_email="b@example.test")

    # when a status link is asked for either, with the card number typed as the address
    answers = [
        client.post("/track/", {"reference": ticket.reference, "email": TYPED_CARD})
        for ticket in (held, other)
    ]

    # then each is the same 400 saying why, and no task carries the number through the broker
    assert {answer.status_code for answer in answers} == {400}
    assert "looks like a card number" in answers[0].content.decode()
    bodies = {
        re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", answer.content.decode()).replace(
            ticket.reference, "HD-TYPED"
        )
        for answer, ticket in zip(answers, (held, other), strict=True)
    }
    assert len(bodies) == 1
    assert queued == []
