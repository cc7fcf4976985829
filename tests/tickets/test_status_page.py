"""Following a request without an account: /track/, the status link and the status page."""

import re
from datetime import timedelta

import pytest
import time_machine
from celery.exceptions import Retry
from django.core import mail
from django.db import OperationalError
from django.utils import timezone

from tests.factories import DomainFactory, TicketFactory
from tests.tickets.resend_helpers import TYPED
from tests.tickets.test_freeze import staff_reply
from tests.tickets.verification_helpers import anonymous_lookups
from tickets import services, tasks
from tickets.models import ActionLog, Message, Notification, Ticket, Verification
from tickets.services import TRACK_SENT, status_link

pytestmark = pytest.mark.django_db

S = Ticket.Status
CSRF_VALUE = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
STATUS_LINK = re.compile(r"https://help\.exabytes\.example(/track/[A-Za-z0-9_-]+/)")


@pytest.fixture
def queued(monkeypatch):
    """The status-link tasks the requests queued (their kwargs), instead of the broker."""
    found: list[dict] = []
    monkeypatch.setattr(
        tasks.status_link_send, "apply_async", lambda **kwargs: found.append(kwargs["kwargs"])
    )
    return found


def _send_outbox() -> None:
    for pk in Notification.objects.filter(status="pending").values_list("pk", flat=True):
        services.notification_send(notification_id=pk)


def _link_from(message) -> str:
    return STATUS_LINK.search(message.body).group(1)


def _run(queued: list[dict]) -> list[str]:
    outcomes = [services.status_link_send(**kwargs) for kwargs in queued]
    queued.clear()
    _send_outbox()
    return outcomes


@pytest.fixture
def general_ticket(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        client.post(
            "/requests/new/",
            {"subject": "Site down", "message": "My site shows 500.", "email": "dan@example.test"},
        )
    return Ticket.objects.get(subject="Site down")


# --- the acknowledgement carries the link ----------------------------------------------------


def test_the_acknowledgement_of_a_general_request_carries_a_status_link(general_ticket):
    # when the acknowledgement is sent
    _send_outbox()

    # then both parts link the status page, from SITE_URL, and the link works
    [message] = mail.outbox
    assert message.to == ["dan@example.test"]
    link = _link_from(message)
    assert link in message.alternatives[0][0]
    assert "Follow your request" in message.alternatives[0][0]
    verification = Verification.objects.get(ticket=general_ticket, purpose="status")
    assert verification.sent_to == "dan@example.test"
    assert verification.expires_at > timezone.now() + timedelta(days=29)


def test_the_request_itself_writes_no_status_link_the_worker_issues_it_when_sending(
    general_ticket,
):
    # the request queued the acknowledgement without a link: no token row, no token in the row
    assert not Verification.objects.filter(ticket=general_ticket).exists()
    notification = Notification.objects.get(ticket=general_ticket, template="ticket_received")
    assert "status_link" not in notification.context

    # when the worker sends it, then the link is issued for the row's own recipient
    _send_outbox()
    [verification] = Verification.objects.filter(ticket=general_ticket, purpose="status")
    assert verification.sent_to == notification.recipient == "dan@example.test"


def test_a_retried_send_mails_the_link_issued_the_first_time(general_ticket):
    notification = Notification.objects.get(ticket=general_ticket, template="ticket_received")
    services.status_link_fill(notification)
    first = notification.context["status_link"]

    # when a second attempt loads the row again
    again = Notification.objects.get(pk=notification.pk)
    services.status_link_fill(again)

    # then no second link was issued and the stored one is used
    assert again.context["status_link"] == first
    assert Verification.objects.filter(ticket=general_ticket, purpose="status").count() == 1


def test_the_status_link_is_not_kept_in_the_outbox_or_audit_after_sending(general_ticket):
    _send_outbox()
    notification = Notification.objects.get(ticket=general_ticket, template="ticket_received")
    assert "status_link" not in notification.context
    logged = ActionLog.objects.filter(ticket=general_ticket).values_list("details", flat=True)
    assert "/track/" not in str(list(logged))


def test_the_password_resend_acknowledgement_carries_a_status_link(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):  # the OpenSRS work is not run here
        client.post(
            "/requests/password/",
            {"domain": "nobody-knows.test", "contact_email": "eve@example.test"},
        )
    _send_outbox()
    [ack] = [m for m in mail.outbox if m.to == ["eve@example.test"]]
    assert STATUS_LINK.search(ack.body)


def test_a_staff_reply_and_the_resolution_email_carry_a_status_link(alice, agent):
    ticket = TicketFactory(customer=alice, status=S.OPEN)
    services.ticket_reply_add(
        ticket=ticket, body="Fixed?", actor=agent, author="staff", channel="staff"
    )
    services.ticket_resolve(ticket=ticket, actor=agent)
    _send_outbox()
    assert len(mail.outbox) == 2
    assert all(STATUS_LINK.search(m.body) for m in mail.outbox)


# --- the status page -------------------------------------------------------------------------


def test_the_status_page_shows_timeline_expected_reply_and_public_messages_only(
    client, general_ticket
):
    # given a staff note and a public staff answer on the ticket
    Message.objects.create(ticket=general_ticket, author="staff", body="Secret note", internal=True)
    Message.objects.create(ticket=general_ticket, author="staff", body="Try clearing the cache")
    _send_outbox()

    # when the requester opens the link from the acknowledgement
    response = client.get(_link_from(mail.outbox[0]))

    # then they see where it stands, when to expect an answer and the public conversation
    body = response.content.decode()
    assert response.status_code == 200
    assert general_ticket.reference in body
    assert "We received your request" in body
    assert "Our team is on it" in body
    assert "We aim to answer by" in body
    assert "My site shows 500." in body
    assert "Try clearing the cache" in body
    assert "Secret note" not in body
    assert 'name="body"' in body  # the reply box
    assert response["Cache-Control"].startswith("max-age=0")


def test_a_reply_from_the_status_page_reaches_the_ticket_and_reopens_it(client, general_ticket):
    _send_outbox()
    link = _link_from(mail.outbox[0])
    Ticket.objects.filter(pk=general_ticket.pk).update(status=S.AWAITING_CUSTOMER)

    response = client.post(link + "reply/", {"body": "Still broken after clearing the cache."})

    assert response.status_code == 302
    assert response["Location"] == link
    general_ticket.refresh_from_db()
    assert general_ticket.status == S.OPEN
    reply = general_ticket.messages.order_by("-id").first()
    assert reply.body == "Still broken after clearing the cache."
    assert reply.author == "customer"
    assert "Your reply was added" in client.get(link).content.decode()


def test_an_empty_reply_is_refused_with_a_message(client, general_ticket):
    _send_outbox()
    link = _link_from(mail.outbox[0])
    response = client.post(link + "reply/", {"body": ""})
    assert response.status_code == 400
    assert general_ticket.messages.count() == 1


def test_a_reply_refused_by_the_limiter_is_a_429_that_keeps_the_draft(
    client, settings, general_ticket
):
    # given a live link, and the replies this client may send already used up
    _send_outbox()
    link = _link_from(mail.outbox[0])
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_client": (0, 600)}

    # when
    response = client.post(link + "reply/", {"body": "Any news on this?"})

    # then it says when to come back, and the draft is still in the box
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 600
    assert "Any news on this?" in response.content.decode()
    assert general_ticket.messages.count() == 1


def test_an_unknown_link_says_so_and_offers_a_new_one(client):
    response = client.get("/track/" + "x" * 43 + "/")
    body = response.content.decode()
    assert response.status_code == 404
    assert "We do not know this link" in body
    assert 'href="/track/"' in body
    assert client.post("/track/" + "x" * 43 + "/reply/", {"body": "hi"}).status_code == 404


def test_an_expired_link_says_so_and_offers_a_new_one_for_the_same_reference(
    client, general_ticket
):
    _send_outbox()
    link = _link_from(mail.outbox[0])
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        response = client.get(link)
        refused = client.post(link + "reply/", {"body": "late"})
    body = response.content.decode()
    assert response.status_code == 410
    assert "This link has expired" in body
    assert f"/track/?reference={general_ticket.reference}" in body
    assert refused.status_code == 410
    assert general_ticket.messages.count() == 1


def test_a_status_link_does_not_confirm_a_verification(client, alice):
    # given a change request waiting for its owner and a status link to the same ticket
    ticket = TicketFactory(customer=alice, kind="modify_info", status=S.AWAITING_VERIFICATION)
    link = services.status_link_issue(ticket=ticket, send_to=alice.email)
    token = link.rstrip("/").rsplit("/", 1)[1]

    # when the status token is posted to the verification page
    response = client.post(f"/verify/{token}/")

    # then nothing is confirmed
    assert response.status_code == 400
    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_VERIFICATION
    assert ticket.verified_at is None


def test_a_status_link_does_not_keep_an_unverified_request_from_expiring(alice):
    ticket = TicketFactory(customer=alice, kind="modify_info", status=S.AWAITING_VERIFICATION)
    services.status_link_issue(ticket=ticket, send_to=alice.email)
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        assert services.verifications_expire() == 1
    ticket.refresh_from_db()
    assert ticket.status == S.EXPIRED


# --- /track/ ---------------------------------------------------------------------------------


def test_track_answers_the_same_whether_or_not_reference_and_email_match(
    client, general_ticket, queued
):
    _send_outbox()
    mail.outbox.clear()

    # when a match, a wrong address and an unknown reference are asked for
    answers = [
        client.post("/track/", {"reference": ref, "email": email}, follow=True)
        for ref, email in [
            (general_ticket.reference.lower(), "DAN@example.test"),
            (general_ticket.reference, "mallory@example.test"),
            ("HD-ZZZZZZZZ", "dan@example.test"),
        ]
    ]

    # then every answer is the same page, and no link is ever shown
    bodies = {CSRF_VALUE.sub("", a.content.decode()) for a in answers}
    assert {a.status_code for a in answers} == {200}
    assert {a.redirect_chain[0] for a in answers} == {("/track/done/", 303)}
    assert len(bodies) == 1
    assert TRACK_SENT.split(",")[0] in bodies.pop()
    assert len(queued) == 3  # the same work each time: one task

    # and the worker mails only the match, to the address held on the ticket
    assert _run(queued) == ["sent", "no_match", "no_match"]
    [message] = mail.outbox
    assert message.to == ["dan@example.test"]
    assert client.get(_link_from(message)).status_code == 200


def test_track_mails_a_customers_ticket_to_the_email_on_record(client, alice, queued):
    ticket = TicketFactory(customer=alice, contact_email="", status=S.OPEN)
    client.post("/track/", {"reference": ticket.reference, "email": "Alice@Example.test"})
    assert _run(queued) == ["sent"]
    assert [m.to for m in mail.outbox] == [["alice@example.test"]]


def test_track_never_mails_the_typed_address_only_the_one_held(general_ticket):
    # given an address typed with a fullwidth d, which canonicalises to the contact address
    typed = "\uff44an@example.test"

    # when the worker handles the request
    outcome = services.status_link_send(
        reference=general_ticket.reference, email=typed, request_id="r-lookalike"
    )

    # then the link goes to the address stored on the ticket, never to the typed one
    assert outcome == "sent"
    [notification] = Notification.objects.filter(template="status_link")
    assert notification.recipient == "dan@example.test"


def test_track_is_rate_limited_per_client(client, settings, queued):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "track_per_client": (2, 3600)}
    data = {"reference": "HD-AAAAAAAA", "email": "x@example.test"}
    statuses = [client.post("/track/", data).status_code for _ in range(3)]
    assert statuses == [303, 303, 429]
    assert len(queued) == 2


def test_track_coalesces_links_per_ticket_without_telling(client, general_ticket, queued):
    _send_outbox()
    mail.outbox.clear()
    data = {"reference": general_ticket.reference, "email": "dan@example.test"}
    for _ in range(5):
        assert client.post("/track/", data).status_code == 303
    assert _run(queued) == ["sent", "sent", "sent", "coalesced", "coalesced"]
    assert len(mail.outbox) == 3


def test_track_coalesces_links_per_address_across_its_tickets(client, queued, settings):
    # given a stranger's address typed into many general requests by someone else, each of
    # which acknowledged at most a few times (ack_per_address) but all of which it now holds
    victim = "victim@example.test"
    tickets = [
        TicketFactory(kind="general", customer=None, contact_email=victim, status=S.OPEN)
        for _ in range(6)
    ]

    # when a status link is asked for each of them, from /track/, as often as a ticket allows
    for ticket in tickets:
        for _ in range(3):
            data = {"reference": ticket.reference, "email": victim}
            assert (
                client.post("/track/", data, REMOTE_ADDR=f"10.9.{ticket.pk}.1").status_code == 303
            )
    outcomes = _run(queued)

    # then that address gets no more links in the hour than its own limit, whoever asks and
    # for whichever of its tickets; the rest are coalesced without telling anyone
    limit = settings.RATE_LIMITS["track_per_address"][0]
    assert outcomes.count("sent") == limit
    assert outcomes.count("coalesced") == len(outcomes) - limit
    assert len([m for m in mail.outbox if m.to == [victim]]) == limit


def test_a_redelivered_track_task_mails_once(general_ticket):
    kwargs = {"reference": general_ticket.reference, "email": "dan@example.test"}
    assert services.status_link_send(**kwargs, request_id="r1") == "sent"
    assert services.status_link_send(**kwargs, request_id="r1") == "already_sent"
    assert Notification.objects.filter(template="status_link").count() == 1


def test_a_track_task_whose_transaction_failed_is_tried_again_and_mails_once(
    general_ticket, monkeypatch
):
    # given the first try's transaction rolled back as a lost lock race
    queue = status_link.notification_queue
    failures = [OperationalError("deadlock detected")]

    def queue_once_failing(**kwargs):
        if failures:
            raise failures.pop()
        return queue(**kwargs)

    monkeypatch.setattr(status_link, "notification_queue", queue_once_failing)
    kwargs = {
        "reference": general_ticket.reference,
        "email": "dan@example.test",
        "request_id": "r2",
    }

    # when the worker runs the task
    with pytest.raises(Retry):
        tasks.status_link_send.apply(kwargs=kwargs, throw=True)
    again = tasks.status_link_send.apply(kwargs=kwargs, throw=True)

    # then it is retried, nothing of the first try stays, and the link goes out once
    assert again.result == "sent"
    assert Notification.objects.filter(template="status_link").count() == 1


def test_track_refuses_malformed_input_with_a_message(client, queued):
    response = client.post("/track/", {"reference": "", "email": "not-an-address"})
    assert response.status_code == 400
    assert "Enter a valid email address" in response.content.decode()
    assert queued == []


def test_the_confirmation_email_to_the_owner_carries_a_status_link(client, alice):
    client.post("/requests/modify/", {"email_on_record": alice.email, "phone": "+60 12-111 2222"})
    anonymous_lookups()  # the worker looks the record up and mails the owner
    _send_outbox()
    [message] = [m for m in mail.outbox if m.to == [alice.email]]
    assert "/verify/" in message.body
    assert client.get(_link_from(message)).status_code == 200


def test_the_status_page_of_a_resend_does_not_say_whether_the_domain_is_ours(client, alice):
    # given a resend ticket for a domain we hold (its domain is set only when it is ours)
    domain = DomainFactory(name="alice-shop.test", customer=alice)
    ticket = TicketFactory(
        kind="resend_password", customer=None, domain=domain, contact_email="eve@example.test"
    )
    link = services.status_link_issue(ticket=ticket, send_to="eve@example.test")

    # when the contact opens the status page
    body = client.get(STATUS_LINK.search(link).group(1)).content.decode()

    # then no "Domain" line tells ours from not ours
    assert "alice-shop.test" not in body


def test_the_status_page_of_a_resend_says_its_times_to_the_minute(client, notice):
    # given the status page of a resend done end to end, as the address typed on the form reads it
    [received] = [m for m in mail.outbox if TYPED in m.to]
    page = client.get(_link_from(received)).content.decode()

    # then its times (opened, done, last update) are to the minute, as they read: to the
    # microsecond, the gap between "Opened" and "Done" is how long the worker took, two OpenSRS
    # calls for a domain of ours and one for a domain that is not
    stamps = re.findall(r'<time datetime="([^"]+)"', page)
    assert len(stamps) >= 3
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d[+-]\d{4}", s) for s in stamps), stamps


SPAM = "Claim your prize at prize.example now"


@pytest.mark.django_db
def test_a_typed_address_never_gets_the_requesters_own_words_by_mail(client, queued, agent):
    # given requests whose subject was written by whoever typed a stranger's address: on the
    # web form without a login, and on it by a customer who gave another address
    client.post(
        "/requests/new/", {"subject": SPAM, "message": "Hi.", "email": "victim@target.test"}
    )
    _send_outbox()
    typed = Ticket.objects.get(subject=SPAM)
    mail.outbox.clear()

    # when the status link is asked for by /track/, and staff resolve and reject the tickets
    client.post("/track/", {"reference": typed.reference, "email": "victim@target.test"})
    assert _run(queued) == ["sent"]
    services.ticket_resolve(ticket=typed, actor=agent)
    resend = TicketFactory(
        kind=Ticket.Kind.RESEND_PASSWORD, customer=None, contact_email="victim@target.test"
    )
    general = TicketFactory(customer=None, subject=SPAM, contact_email="victim@target.test")
    services.ticket_reject(ticket=resend, actor=agent, reason="Not ours.")
    services.ticket_resolve(ticket=general, actor=agent)
    _send_outbox()

    # then the stranger got each email, with the reference and our words only
    assert len(mail.outbox) == 4
    for message in mail.outbox:
        assert message.to == ["victim@target.test"]
        text = "\n".join([message.subject, message.body, message.alternatives[0][0]])
        assert "prize" not in text
        assert re.search(r"HD-[0-9A-Z]{8}", message.subject)


def _staff_reply(ticket, agent):
    staff_reply(ticket, agent, "Thanks for writing in.")
    _send_outbox()
    [message] = mail.outbox
    return "\n".join([message.subject, message.body, message.alternatives[0][0]])


@pytest.mark.django_db
@pytest.mark.parametrize("on_record", [False, True], ids=["a-strangers-address", "alices-address"])
def test_a_staff_reply_to_a_typed_address_quotes_none_of_the_requesters_words(
    client, alice, agent, on_record
):
    # given a request made without a login, with an address typed in: a stranger's, or one on
    # record (Alice's), which links it to her by that address only
    address = alice.email if on_record else "victim@target.test"
    client.post("/requests/new/", {"subject": SPAM, "message": f"{SPAM}!", "email": address})
    ticket = Ticket.objects.get(subject=SPAM)
    assert ticket.customer_by_contact is on_record
    _send_outbox()
    mail.outbox.clear()

    # when staff reply
    text = _staff_reply(ticket, agent)

    # then the email to that address holds the staff's words and the reference, none of the
    # requester's: no subject, no quote
    assert "Thanks for writing in." in text
    assert ticket.reference in text
    assert "prize" not in text


@pytest.mark.django_db
def test_a_staff_reply_to_the_customer_who_asked_quotes_them(alice_client, alice, agent):
    alice_client.post("/requests/new/", {"subject": "DNS for my shop", "message": "How?"})
    ticket = Ticket.objects.get(subject="DNS for my shop")
    _send_outbox()
    mail.outbox.clear()

    text = _staff_reply(ticket, agent)

    assert "DNS for my shop" in text
    assert "> How?" in text


@pytest.mark.django_db
def test_the_email_on_record_gets_its_own_requests_subject(client, alice, queued, agent):
    ticket = TicketFactory(customer=alice, contact_email="", subject="DNS for my shop")
    client.post("/track/", {"reference": ticket.reference, "email": "alice@example.test"})
    assert _run(queued) == ["sent"]
    services.ticket_resolve(ticket=TicketFactory(customer=alice, subject="Slow site"), actor=agent)
    _send_outbox()

    subjects = [m.subject for m in mail.outbox]
    assert any("DNS for my shop" in s for s in subjects)
    assert any("Slow site" in s for s in subjects)
