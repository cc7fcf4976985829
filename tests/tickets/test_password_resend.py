import re
import time
from datetime import timedelta

import pytest
from anymail.message import AnymailRecipientStatus
from anymail.signals import pre_send
from celery.contrib.testing.worker import start_worker
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import Customer
from domains.models import Domain
from helpdesk.celery import app as celery_app
from tests.domains.test_opensrs import (
    DEEPLY_NESTED,
    answer_send_password_with,
    answer_with_status,
)
from tests.pages import comparable
from tests.tickets.resend_helpers import (
    API_URL,
    PORTAL_URL,
    TYPED,
    actions,
    calls,
    full_text,
    mails_to,
    send_outbox,
    tags_of,
)
from tickets import services
from tickets.models import ActionLog, Message, Notification, PasswordResend, Ticket
from tickets.services import password_resend, password_resend_steps
from tickets.tasks import password_resend_process as password_resend_task

pytestmark = pytest.mark.django_db

S = Ticket.Status


@pytest.fixture
def api():
    return APIClient()


def post_api(api, domain, contact_email=TYPED, **extra):
    body = {"domain": domain}
    if contact_email is not None:
        body["contact_email"] = contact_email
    return api.post(API_URL, body, format="json", **extra)


def ticket_for(response) -> Ticket:
    return Ticket.objects.get(reference=response.json()["reference"])


def process(ticket) -> str:
    return services.password_resend_process(ticket_id=ticket.pk)


def test_the_whole_flow_sends_the_reset_to_the_registration_address_only(
    api, fake_opensrs, alice_shop
):
    # given a request for a domain we hold, with a typed contact address
    response = post_api(api, "alice-shop.test")
    ticket = ticket_for(response)
    assert response.status_code == 202
    assert ticket.kind == "resend_password"
    assert ticket.subject == "Password resend for alice-shop.test"
    assert ticket.domain is None  # nothing is looked up while the requester waits
    assert ticket.resend.stage == "pending" and ticket.resend.domain_name == "alice-shop.test"

    # when the worker does the OpenSRS work and sends the outbox
    outcome = process(ticket)
    send_outbox()

    # then OpenSRS was asked once, for the owner contact of this domain
    assert outcome == "sent"
    sends = calls(fake_opensrs, "SEND_PASSWORD")
    assert len(sends) == 1
    assert sends[0]["attributes"]["domain_name"] == "alice-shop.test"
    assert sends[0]["attributes"]["send_to"] == "owner"
    assert [m["to"] for m in fake_opensrs.sent_mail] == ["alice@example.test"]
    # the reset mail and our notice both went to the registration address
    to_owner = mails_to("alice@example.test")
    assert len(to_owner) == 2
    notice = next(m for m in to_owner if "password-resend-notice" in tags_of(m))
    assert "alice-shop.test" in notice.subject
    assert ticket.reference in notice.body
    assert fake_opensrs.sent_mail[0]["link"] not in full_text(notice)
    # the typed address got only the acknowledgement
    assert [tags_of(m) for m in mails_to(TYPED)] == [["password-resend-received"]]
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED
    log = actions(ticket)
    for action in (
        "ticket.created",
        "opensrs.call",
        "resend.record_read",
        "opensrs.send_password",
        "resend.sent",
        "ticket.status_changed",
        "notification.sent",
    ):
        assert action in log
    opensrs_calls = ActionLog.objects.filter(ticket=ticket, action="opensrs.call")
    assert [(c.details["action"], c.details["outcome"]) for c in opensrs_calls] == [
        ("GET", "success"),
        ("SEND_PASSWORD", "success"),
    ]
    for call in opensrs_calls:
        assert call.details["domain"] == "alice-shop.test"
        assert call.details["response_code"] == 200
        assert call.details["duration_ms"] >= 0
        assert "attributes" not in call.details["response"]
    stages = [
        row.details["stage"]
        for row in ActionLog.objects.filter(ticket=ticket, action="opensrs.send_password")
    ]
    assert stages == ["started", "sent"]
    # and the flow's state is on its own row, not read back from the log
    assert ticket.domain == alice_shop
    resend = PasswordResend.objects.get(ticket=ticket)
    assert (resend.stage, resend.outcome, resend.attempts) == ("sent", "sent", 0)
    assert resend.asked_at is not None


def test_a_domain_unknown_locally_but_in_opensrs_is_cached_and_served(api, fake_opensrs):
    # given a domain OpenSRS holds that our cache has never seen
    fake_opensrs.add_domain("new-shop.test", "owner@new-shop.test")
    ticket = ticket_for(post_api(api, "new-shop.test"))
    assert ticket.domain is None

    # when the worker runs
    assert process(ticket) == "sent"

    # then the cache holds the record and the ticket points at it
    domain = Domain.objects.get(name="new-shop.test")
    assert domain.registrant_email == "owner@new-shop.test"
    assert domain.synced_at is not None
    ticket.refresh_from_db()
    assert ticket.domain == domain


def test_an_unknown_domain_answers_exactly_like_a_known_one(api, fake_opensrs, alice_shop):
    # given one request for a domain we hold and one for a domain nobody holds
    known = post_api(api, "alice-shop.test")
    unknown = post_api(api, "nobody-here.test")

    # then the answers are the same apart from the reference
    assert known.status_code == unknown.status_code == 202
    assert known.json().keys() == unknown.json().keys() == {"reference", "detail"}
    assert known.json()["detail"] == unknown.json()["detail"]
    assert sorted(known.headers.keys()) == sorted(unknown.headers.keys())

    # and the unknown one is resolved quietly, with nothing sent to anyone but the ack
    ticket = ticket_for(unknown)
    assert ticket.requested_domain == "nobody-here.test"
    assert ticket.domain is None
    assert process(ticket) == "unknown_domain"
    send_outbox()
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED
    assert "resend.unknown_domain" in actions(ticket)
    assert calls(fake_opensrs, "SEND_PASSWORD") == []
    assert [n.template for n in Notification.objects.filter(ticket=ticket)] == [
        "password_resend_received"
    ]


@pytest.mark.parametrize("domain", ["alice-shop.test", "nobody-here.test", "stale-mail.test"])
def test_no_email_to_the_typed_address_reveals_the_record(
    api, fake_opensrs, alice_shop, stale_mail, domain
):
    # given a request for a known, an unknown or a bouncing domain
    ticket = ticket_for(post_api(api, domain))

    # when everything runs
    process(ticket)
    send_outbox()

    # then the typed address got mail, but never the registration address or a reset link
    typed = mails_to(TYPED)
    assert typed
    secrets = ["alice@example.test", "carol@defunct.test", "password-reset/"]
    secrets += [sent["token"] for sent in fake_opensrs.sent_mail]
    for message in typed:
        text = full_text(message)
        for secret in secrets:
            assert secret not in text
    # and no reset link went anywhere but a registration address
    assert {sent["to"] for sent in fake_opensrs.sent_mail} <= {"alice@example.test"}


def test_links_in_emails_use_site_url_even_when_the_host_header_is_evil(
    api, client, settings, fake_opensrs, alice_shop
):
    # given a Host header the site accepts but that is not SITE_URL
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "evil.example"]

    # when requests arrive through it, from the API and the portal
    first = post_api(api, "alice-shop.test", HTTP_HOST="evil.example")
    second = client.post(
        PORTAL_URL,
        {"domain": "stale-mail.test", "contact_email": TYPED},
        HTTP_HOST="evil.example",
        follow=True,
    )
    Domain.objects.create(
        name="stale-mail.test",
        registrant_email="carol@defunct.test",
        registrant_email_status=Domain.EmailStatus.BOUNCING,
    )
    for ticket in Ticket.objects.all():
        process(ticket)
    send_outbox()

    # then every email links to SITE_URL only
    assert first.status_code == 202
    assert second.status_code == 200
    assert len(mail.outbox) >= 4
    for message in mail.outbox:
        text = full_text(message)
        assert "evil.example" not in text
    ours = [m for m in mail.outbox if tags_of(m)]
    assert all(settings.SITE_URL in full_text(m) for m in ours)


def test_a_request_with_a_host_we_do_not_serve_is_refused(api, client, fake_opensrs):
    response = post_api(api, "alice-shop.test", HTTP_HOST="attacker.example")
    page = client.post(PORTAL_URL, {"domain": "alice-shop.test"}, HTTP_HOST="attacker.example")

    assert response.status_code == 400
    assert page.status_code == 400
    assert not Ticket.objects.exists()


@pytest.mark.parametrize("raw", ["4111111111111111.com", "www.4111-1111-1111-1111.my"])
def test_a_card_number_typed_as_the_domain_is_refused_and_stored_nowhere(
    api, client, fake_opensrs, raw
):
    # when a card number is typed where the domain goes (a label of digits is a valid name)
    response = post_api(api, raw)
    page = client.post(PORTAL_URL, {"domain": raw, "contact_email": TYPED})

    # then both answer a field error saying so, and nothing holds the number
    assert response.status_code == 400
    assert response.json()["domain"] == [password_resend.RESEND_CARD_NUMBER]
    assert page.status_code == 400
    assert password_resend.RESEND_CARD_NUMBER in page.content.decode()
    assert not Ticket.objects.exists()
    assert not PasswordResend.objects.exists()
    assert not Notification.objects.exists()
    assert "4111" not in str(list(ActionLog.objects.values_list("details", flat=True)))
    assert calls(fake_opensrs, "GET") == []


@pytest.mark.parametrize("raw", ["not a domain", "ftp://", "me@alice-shop.test", "-bad-.test", "x"])
def test_a_malformed_domain_is_a_field_error(api, client, fake_opensrs, raw):
    response = post_api(api, raw)
    page = client.post(PORTAL_URL, {"domain": raw, "contact_email": TYPED})

    assert response.status_code == 400
    assert response.json()["domain"] == ["Enter a domain name such as example.com."]
    assert page.status_code == 400
    content = page.content.decode()
    assert "Enter a domain name such as example.com." in content
    assert f'value="{TYPED}"' in content  # what was typed is kept
    assert not Ticket.objects.exists()


def test_a_sharp_s_domain_is_asked_for_as_itself_not_as_its_ss_look_alike(api, fake_opensrs):
    # given OpenSRS holds both faß.de and fass.de, for different owners
    fake_opensrs.add_domain("xn--fa-hia.de", "owner@fass-sharp.test")
    fake_opensrs.add_domain("fass.de", "someone-else@fass.test")

    # when a request names faß.de
    ticket = ticket_for(post_api(api, "Faß.de"))

    # then the IDNA 2008 name is the one asked about, and people read it in Unicode
    assert ticket.requested_domain == "xn--fa-hia.de"
    assert process(ticket) == "sent"
    assert calls(fake_opensrs, "SEND_PASSWORD")[0]["attributes"]["domain_name"] == ("xn--fa-hia.de")
    assert ticket.subject == "Password resend for faß.de"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("p\u0430ypal.test", "may not mix alphabets"),  # a Cyrillic a
        ("xn--pypal-4ve.test", "may not mix alphabets"),  # the same in its ASCII form
        ("xn--zz.test", "not a valid internationalised domain name"),
        ("bücher_name.test", "not a valid internationalised domain name"),
    ],
)
def test_a_name_idna_2008_refuses_is_a_400_saying_why(api, client, fake_opensrs, raw, message):
    response = post_api(api, raw)
    page = client.post(PORTAL_URL, {"domain": raw, "contact_email": TYPED})

    assert response.status_code == 400
    assert message in response.json()["domain"][0]
    assert page.status_code == 400
    assert message in page.content.decode()
    assert not Ticket.objects.exists()
    assert calls(fake_opensrs, "SEND_PASSWORD") == []


def test_an_empty_or_missing_domain_is_a_field_error(api, fake_opensrs):
    assert api.post(API_URL, {}, format="json").json().keys() == {"domain"}
    assert post_api(api, "").status_code == 400


def test_a_malformed_contact_email_is_a_field_error(api, fake_opensrs):
    response = post_api(api, "alice-shop.test", contact_email="not-an-address")

    assert response.status_code == 400
    assert "contact_email" in response.json()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ALICE-SHOP.TEST", "alice-shop.test"),
        ("alice-shop.test.", "alice-shop.test"),
        ("  Alice-Shop.Test  ", "alice-shop.test"),
        ("BÜCHER.test", "xn--bcher-kva.test"),
    ],
)
def test_domain_names_are_normalised(api, fake_opensrs, alice_shop, raw, expected):
    response = post_api(api, raw)

    assert response.status_code == 202
    ticket = ticket_for(response)
    assert ticket.requested_domain == expected
    process(ticket)
    ticket.refresh_from_db()
    assert (ticket.domain_id is not None) == (expected == "alice-shop.test")


def test_an_idn_domain_is_asked_of_opensrs_in_its_ascii_form(api, fake_opensrs):
    fake_opensrs.add_domain("xn--bcher-kva.test", "owner@buecher.test")
    ticket = ticket_for(post_api(api, "BÜCHER.test"))

    assert process(ticket) == "sent"
    assert calls(fake_opensrs, "SEND_PASSWORD")[0]["attributes"]["domain_name"] == (
        "xn--bcher-kva.test"
    )
    assert ticket.subject == "Password resend for bücher.test"


def test_requests_past_the_domain_limits_are_coalesced_never_refused(api, client, fake_opensrs):
    # given a reset was just sent for the domain
    first = ticket_for(post_api(api, "alice-shop.test"))
    assert process(first) == "sent"

    # when more requests come within 15 minutes, whatever the spelling, from API and portal
    response = post_api(api, "ALICE-SHOP.test.")
    page = client.post(PORTAL_URL, {"domain": "Alice-Shop.test", "contact_email": TYPED})
    later = [ticket_for(response), Ticket.objects.order_by("-pk").first()]
    outcomes = [process(ticket) for ticket in later]

    # then each gets the same 202 and a ticket linked to the last reset: no 429 (nobody can
    # lock the owner out) and no second OpenSRS reset mail to the registrant
    assert response.status_code == 202 and "Retry-After" not in response
    assert page.status_code == 303  # to the same "request received" page as any other
    assert outcomes == ["coalesced", "coalesced"]
    assert len(calls(fake_opensrs, "SEND_PASSWORD")) == 1
    for ticket in later:
        ticket.refresh_from_db()
        assert ticket.status == S.RESOLVED
        assert ticket.resend.outcome == "coalesced"
        assert ticket.resend.coalesced_with == first


def test_a_domain_gets_at_most_four_resets_a_day(api, fake_opensrs, time_machine):
    # given requests for one domain every 16 minutes, past the 15-minute limit each time
    time_machine.move_to("2026-12-01 09:00:00+00:00", tick=False)
    outcomes = []
    for _ in range(6):
        outcomes.append(process(ticket_for(post_api(api, "alice-shop.test"))))
        time_machine.shift(timedelta(minutes=16))

    # then four resets were sent that day, the later requests joined the fourth
    assert outcomes == ["sent"] * 4 + ["coalesced"] * 2
    assert len(calls(fake_opensrs, "SEND_PASSWORD")) == 4

    # and the next day resets are sent again
    time_machine.shift(timedelta(days=1))
    assert process(ticket_for(post_api(api, "alice-shop.test"))) == "sent"


def test_the_acknowledgement_reads_the_same_for_ours_unknown_and_bouncing_domains(
    api, settings, fake_opensrs, alice_shop, stale_mail
):
    # given requests with a typed contact address for a domain of ours, one not ours, and
    # one of ours whose registration address bounces
    settings.OPENSRS_DIRECT_REQUEST_URL = "https://opensrs.example/direct"
    tickets = [ticket_for(post_api(api, name)) for name in ("alice-shop.test", "nobody-x.test")]
    tickets.append(ticket_for(post_api(api, "stale-mail.test")))

    # when the worker does the OpenSRS work and every email is sent
    assert [process(ticket) for ticket in tickets] == ["sent", "unknown_domain", "referred"]
    send_outbox()
    send_outbox()

    # then the typed address got one acknowledgement each, the same words whatever the
    # domain (but its name and the reference), with the route when no mail arrives
    received = mails_to(TYPED)
    assert [tags_of(m) for m in received] == [["password-resend-received"]] * 3
    texts = []
    for message, ticket in zip(received, tickets, strict=True):
        text = full_text(message)
        assert "https://opensrs.example/direct" in text and "photo ID" in text
        assert "alice@example.test" not in text and "carol@defunct.test" not in text
        name = ticket.requested_domain
        text = re.sub(r"/track/[A-Za-z0-9_-]+/", "/track/LINK/", text)  # each has its own link
        texts.append(comparable(text.replace(ticket.reference, "REF").replace(name, "DOMAIN")))
    assert texts[0] == texts[1] == texts[2]


def test_acknowledgements_to_one_typed_address_are_limited_like_any_other(api, fake_opensrs):
    # given someone typing a stranger's address on resets asked from many client addresses,
    # with a domain name that reads as a message
    victim, name = "victim@target.test", "your-account-is-locked-call-us-now.test"

    # when they ask five times within the hour
    responses = [
        post_api(api, name, contact_email=victim, REMOTE_ADDR=f"198.51.100.{n}") for n in range(5)
    ]

    # then every request is answered the same, but the stranger gets only as many
    # acknowledgements as any web form or email sends one address ("ack_per_address")
    assert [r.status_code for r in responses] == [202] * 5
    acks = Notification.objects.filter(template="password_resend_received")
    assert [ack.recipient for ack in acks] == [victim] * 3
    assert Ticket.objects.filter(kind=Ticket.Kind.RESEND_PASSWORD).count() == 5


def test_spellings_of_one_typed_address_share_its_acknowledgement_limit(api, fake_opensrs):
    # given someone typing a stranger's address spelled five ways the mail system reads as one
    # (case, and fullwidth letters in the domain, which IDNA maps to the same name)
    spellings = [
        "victim@target.test",
        "VICTIM@target.test",
        "victim@\uff54arget.test",
        "victim@t\uff41rget.test",
        "Victim@TARGE\uff54.test",
    ]

    # when each is asked for once, from as many client addresses
    for n, typed in enumerate(spellings):
        post_api(api, "example-shop.test", contact_email=typed, REMOTE_ADDR=f"198.51.100.{n}")

    # then the one mailbox gets no more acknowledgements than one spelling would
    acks = Notification.objects.filter(template="password_resend_received")
    assert acks.count() == 3


def test_subaddresses_of_one_typed_address_share_its_acknowledgement_limit(api, fake_opensrs):
    # given someone typing a stranger's address with a different +tag each time, which the
    # stranger's mail system delivers to the one mailbox (as inbound mail is counted)
    tagged = [f"victim+{n}@target.test" for n in range(5)]

    # when each is asked for once, from as many client addresses
    for n, typed in enumerate(tagged):
        post_api(api, "example-shop.test", contact_email=typed, REMOTE_ADDR=f"198.51.100.{n}")

    # then the one mailbox gets no more acknowledgements than one address would
    acks = Notification.objects.filter(template="password_resend_received")
    assert acks.count() == 3


def test_one_client_cannot_spend_a_mail_domains_acknowledgements_for_everyone(
    api, settings, fake_opensrs
):
    # given a per-domain allowance of two acknowledgements an hour from one client, ten in all
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "ack_per_domain": (2, 3600),
        "ack_per_domain_all_clients": (10, 3600),
    }

    # when one client types five addresses of a large mail domain, and then a person at
    # another client asks with their own address there
    for n in range(5):
        post_api(api, "shop.test", contact_email=f"u{n}@mail.test", REMOTE_ADDR="198.51.100.7")
    post_api(api, "shop.test", contact_email="siti@mail.test", REMOTE_ADDR="203.0.113.9")

    # then the first client spent its own allowance only, and the other person got theirs
    acks = Notification.objects.filter(template="password_resend_received").order_by("id")
    assert [ack.recipient for ack in acks] == ["u0@mail.test", "u1@mail.test", "siti@mail.test"]

    # and many clients together still stop at the domain's ceiling
    for n in range(12):
        post_api(api, "shop.test", contact_email=f"v{n}@mail.test", REMOTE_ADDR=f"192.0.2.{n}")
    assert Notification.objects.filter(template="password_resend_received").count() == 10


def test_too_many_requests_from_one_client_get_429(api, settings, fake_opensrs):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_client": (2, 3600)}
    assert post_api(api, "one.test").status_code == 202
    assert post_api(api, "two.test").status_code == 202

    response = post_api(api, "three.test")

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_the_portal_form_and_result_page(client, fake_opensrs, alice_shop):
    # given the form
    form = client.get(PORTAL_URL)
    assert form.status_code == 200
    assert "registration record" in form.content.decode()
    assert "csrfmiddlewaretoken" in form.content.decode()

    # when it is sent for a known and an unknown domain
    known = client.post(
        PORTAL_URL, {"domain": "alice-shop.test", "contact_email": TYPED}, follow=True
    )
    unknown = client.post(PORTAL_URL, {"domain": "nobody-here.test"}, follow=True)

    # then both result pages show the reference and the same next steps
    assert known.status_code == unknown.status_code == 200
    tickets = list(Ticket.objects.order_by("created_at", "pk"))
    assert tickets[0].reference in known.content.decode()
    assert tickets[1].reference in unknown.content.decode()
    strip = [(known, tickets[0]), (unknown, tickets[1])]
    bodies = [comparable(r.content.decode()) for r, _t in strip]
    assert bodies[0] == bodies[1]
    assert "https://opensrs.com/contact/compliance/" in bodies[0]
    assert "alice@example.test" not in bodies[0]
    assert tickets[0].channel == "portal"


@pytest.mark.parametrize("status", ["suspended", "closed"])
def test_a_resend_for_a_domain_of_a_frozen_or_closed_account_is_referred_to_staff(
    api, fake_opensrs, alice_shop, status
):
    # given Alice's account frozen after she reported a takeover (whoever took it may have
    # moved the registration address to their own)
    Customer.objects.filter(pk=alice_shop.customer_id).update(account_status=status)
    ticket = ticket_for(post_api(api, "alice-shop.test"))

    # when the worker takes the request
    assert process(ticket) == "referred"
    send_outbox()

    # then OpenSRS sends nothing and staff hold the ticket
    ticket.refresh_from_db()
    assert ticket.status == S.REFERRED
    assert calls(fake_opensrs, "SEND_PASSWORD") == []
    assert ticket.resend.outcome == "referred"
    assert mails_to("alice@example.test") == []


def test_a_bouncing_registration_address_refers_the_ticket(api, settings, fake_opensrs, stale_mail):
    settings.OPENSRS_DIRECT_REQUEST_URL = "https://opensrs.example/direct"
    ticket = ticket_for(post_api(api, "stale-mail.test"))

    assert process(ticket) == "referred"
    send_outbox()

    ticket.refresh_from_db()
    assert ticket.status == S.REFERRED
    assert calls(fake_opensrs, "SEND_PASSWORD") == []
    assert "resend.referred" in actions(ticket)
    stale_mail.refresh_from_db()
    assert stale_mail.registrant_email_status == "bouncing"  # unchanged address stays bouncing
    assert ticket.resend.outcome == "referred"
    # the typed address learns nothing more than its acknowledgement said
    assert [tags_of(m) for m in mails_to(TYPED)] == [["password-resend-received"]]
    assert mails_to("carol@defunct.test") == []


def test_a_changed_registration_address_is_no_longer_treated_as_bouncing(
    api, fake_opensrs, stale_mail
):
    # given OpenSRS now holds a new address for the bouncing domain
    fake_opensrs.add_domain("stale-mail.test", "carol@new-mail.test")
    ticket = ticket_for(post_api(api, "stale-mail.test"))

    assert process(ticket) == "sent"

    stale_mail.refresh_from_db()
    assert stale_mail.registrant_email == "carol@new-mail.test"
    assert stale_mail.registrant_email_status == "unknown"
    assert [m["to"] for m in fake_opensrs.sent_mail] == ["carol@new-mail.test"]


def test_an_empty_registration_address_refers_the_ticket(api, fake_opensrs):
    fake_opensrs.add_domain("no-mail.test", "")
    ticket = ticket_for(post_api(api, "no-mail.test"))

    assert process(ticket) == "referred"
    assert calls(fake_opensrs, "SEND_PASSWORD") == []


def test_a_send_time_refusal_of_the_notice_refers_the_ticket(api, fake_opensrs, alice_shop):
    # given the ESP refuses the registration address when our notice is sent
    def refuse(sender, message, esp_name, **kwargs):
        if "alice@example.test" in message.to:
            message.anymail_test_response = {
                "recipient_status": {"alice@example.test": AnymailRecipientStatus(None, "rejected")}
            }

    pre_send.connect(refuse, weak=False)
    try:
        ticket = ticket_for(post_api(api, "alice-shop.test"))
        assert process(ticket) == "sent"
        statuses = send_outbox()
        send_outbox()  # nothing more: the acknowledgement already told the requester
    finally:
        pre_send.disconnect(refuse)

    # then the address is marked dead and the ticket referred, for staff; the typed address
    # got its acknowledgement only, and no word of the bounce
    assert "bounced" in statuses
    ticket.refresh_from_db()
    assert ticket.status == S.REFERRED
    alice_shop.refresh_from_db()
    assert alice_shop.registrant_email_status == "bouncing"
    assert [tags_of(m) for m in mails_to(TYPED)] == [["password-resend-received"]]


def test_opensrs_down_is_retried_and_the_ticket_shows_the_error(api, fake_opensrs, alice_shop):
    # given OpenSRS answers HTTP 500 to the first four requests (one task try of GET)
    fake_opensrs.set_fault("http500", count=4)
    ticket = ticket_for(post_api(api, "alice-shop.test"))

    # when the worker tries
    with pytest.raises(services.PasswordResendRetry) as retry:
        process(ticket)

    # then nothing was sent, the ticket still waits, and staff can see why
    assert 0 < retry.value.countdown <= 600
    ticket.refresh_from_db()
    assert ticket.status == S.NEW
    note = Message.objects.get(ticket=ticket, internal=True)
    assert note.body.startswith("OpenSRS unreachable, retrying")
    assert "HTTP 500" in note.body
    failed = ActionLog.objects.filter(ticket=ticket, action="opensrs.call")
    assert [c.details["outcome"] for c in failed] == ["transient"] * 4
    assert "resend.opensrs_error" in actions(ticket)
    assert calls(fake_opensrs, "SEND_PASSWORD") == []

    # and the next try goes through
    assert process(ticket) == "sent"
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED


def test_a_send_password_refused_for_now_is_retried_not_coalesced_with_itself(
    api, fake_opensrs, alice_shop
):
    # given OpenSRS that answers the owner's GET but refuses SEND_PASSWORD for now (rate limit)
    fake_opensrs.set_fault("rate_limit", action="send_password")
    ticket = ticket_for(post_api(api, "alice-shop.test"))
    with pytest.raises(services.PasswordResendRetry):
        process(ticket)
    ticket.refresh_from_db()
    assert ticket.status == S.NEW and ticket.resend.stage == "not_sent"

    # when the retry runs within the domain's limit window, OpenSRS answering again
    fake_opensrs.clear_fault()
    outcome = process(ticket)

    # then the reset is sent now: the failed try sent nothing, so it spends no reset
    assert outcome == "sent"
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED
    assert ticket.resend.outcome == "sent"
    assert "resend.coalesced" not in actions(ticket)


def test_the_task_retries_a_dropped_connection_by_itself(api, fake_opensrs, alice_shop):
    fake_opensrs.set_fault("drop", count=4)
    ticket = ticket_for(post_api(api, "alice-shop.test"))

    # eager apply() runs the retry in line, ignoring the countdown
    result = password_resend_task.apply(kwargs={"ticket_id": ticket.pk}, throw=False)

    assert result.get() == "sent"
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED
    assert len(calls(fake_opensrs, "SEND_PASSWORD")) == 1
    assert ActionLog.objects.filter(ticket=ticket, action="resend.opensrs_error").count() == 1


def test_opensrs_down_for_good_hands_the_ticket_to_staff(api, fake_opensrs, alice_shop):
    fake_opensrs.set_fault("http500")
    ticket = ticket_for(post_api(api, "alice-shop.test"))

    for _ in range(services.PASSWORD_RESEND_MAX_TRIES - 1):
        with pytest.raises(services.PasswordResendRetry):
            process(ticket)
    assert process(ticket) == "to_staff"

    ticket.refresh_from_db()
    assert ticket.status == S.OPEN
    assert "resend.gave_up" in actions(ticket)
    notes = list(Message.objects.filter(ticket=ticket, internal=True).order_by("pk"))
    assert "No reset was sent" in notes[-1].body
    assert calls(fake_opensrs, "SEND_PASSWORD") == []
    assert process(ticket) == "skipped"


def stall_after_get(server, delay: float) -> None:
    """Make OpenSRS answer the GET, then stall on the next request (SEND_PASSWORD)."""
    original = server._get_domain

    def get_then_stall(*args, **kwargs):
        reply = original(*args, **kwargs)
        server.set_fault("stall", count=1, delay=delay)
        return reply

    server._get_domain = get_then_stall


def test_a_stall_on_send_password_is_an_unknown_outcome_never_retried(
    api, settings, fake_opensrs, alice_shop
):
    # given OpenSRS stalls past our read timeout on SEND_PASSWORD, then acts anyway
    settings.OPENSRS_READ_TIMEOUT = 0.5
    stall_after_get(fake_opensrs, delay=1.0)
    ticket = ticket_for(post_api(api, "alice-shop.test"))

    # when the worker runs, and the task is delivered again
    assert process(ticket) == "to_staff"
    assert fake_opensrs.wait_idle(5)
    assert process(ticket) == "skipped"

    # then SEND_PASSWORD went out exactly once and the ticket waits for staff
    assert len(calls(fake_opensrs, "SEND_PASSWORD")) == 1
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN
    assert "resend.outcome_unknown" in actions(ticket)
    note = Message.objects.get(ticket=ticket, internal=True)
    assert "may or may not have sent" in note.body
    outcomes = ActionLog.objects.filter(ticket=ticket, action="opensrs.call")
    assert [c.details["outcome"] for c in outcomes] == ["success", "unknown"]
    assert not Notification.objects.filter(ticket=ticket, template="password_resend_notice")


def test_the_task_does_not_retry_an_unknown_outcome(api, settings, fake_opensrs, alice_shop):
    settings.OPENSRS_READ_TIMEOUT = 0.5
    stall_after_get(fake_opensrs, delay=1.0)
    ticket = ticket_for(post_api(api, "alice-shop.test"))

    assert password_resend_task.apply(kwargs={"ticket_id": ticket.pk}).get() == "to_staff"
    assert fake_opensrs.wait_idle(5)

    assert len(calls(fake_opensrs, "SEND_PASSWORD")) == 1


@pytest.mark.parametrize("answer", ["cut_short", "empty", "http500", "http503"])
def test_a_send_password_answered_cut_short_empty_or_failed_is_an_unknown_outcome_never_retried(
    api, fake_opensrs, alice_shop, answer
):
    # given OpenSRS mails the owner on SEND_PASSWORD and its answer arrives cut short, as
    # HTTP 200 with no body at all, or as a server error (HTTP 500 or 503)
    if answer == "empty":
        answer_send_password_with(fake_opensrs, b"")
    elif answer.startswith("http"):
        answer_with_status(fake_opensrs, int(answer.removeprefix("http")))
    else:
        fake_opensrs.set_fault("truncated", count=1, action="SEND_PASSWORD")
    ticket = ticket_for(post_api(api, "alice-shop.test"))

    # when the worker runs, and the task is delivered again
    assert process(ticket) == "to_staff"
    assert process(ticket) == "skipped"

    # then the owner was asked once (no retry mailed them again), and staff are not told that
    # nothing was sent
    assert len(calls(fake_opensrs, "SEND_PASSWORD")) == 1
    assert len(fake_opensrs.sent_mail) == 1
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN
    assert "resend.outcome_unknown" in actions(ticket)
    assert "resend.opensrs_error" not in actions(ticket)
    note = Message.objects.get(ticket=ticket, internal=True)
    assert "may or may not have sent" in note.body


def test_a_send_password_answered_nested_too_deep_is_audited_as_an_unknown_outcome(
    api, fake_opensrs, alice_shop
):
    # given OpenSRS mails the owner on SEND_PASSWORD and answers with containers nested
    # past Python's recursion limit
    answer_send_password_with(fake_opensrs, DEEPLY_NESTED)
    ticket = ticket_for(post_api(api, "alice-shop.test"))

    # when the worker runs
    assert process(ticket) == "to_staff"

    # then the call is on the audit chain, and staff are not told that nothing was sent
    assert len(fake_opensrs.sent_mail) == 1
    outcomes = ActionLog.objects.filter(ticket=ticket, action="opensrs.call")
    assert [c.details["outcome"] for c in outcomes] == ["success", "unknown"]
    assert "resend.outcome_unknown" in actions(ticket)


def test_a_redelivered_task_calls_send_password_once(api, fake_opensrs, alice_shop):
    ticket = ticket_for(post_api(api, "alice-shop.test"))

    assert password_resend_task(ticket_id=ticket.pk) == "sent"
    assert password_resend_task(ticket_id=ticket.pk) == "skipped"

    assert len(calls(fake_opensrs, "SEND_PASSWORD")) == 1
    assert len(fake_opensrs.sent_mail) == 1
    notices = Notification.objects.filter(ticket=ticket, template="password_resend_notice")
    assert notices.count() == 1


def test_a_task_redelivered_after_a_crash_mid_call_does_not_call_again(
    api, monkeypatch, fake_opensrs, alice_shop
):
    # given a worker that died after SEND_PASSWORD but before recording its answer
    ticket = ticket_for(post_api(api, "alice-shop.test"))

    def crash(*args, **kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(password_resend_steps, "resend_finish", crash)
    with pytest.raises(SystemExit):
        process(ticket)
    monkeypatch.undo()

    # when the task is delivered again
    assert process(ticket) == "to_staff"

    # then OpenSRS was not asked again and staff decide
    assert len(calls(fake_opensrs, "SEND_PASSWORD")) == 1
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN
    assert "resend.outcome_unknown" in actions(ticket)


def test_wrong_reseller_credentials_leave_the_ticket_to_staff(
    api, settings, fake_opensrs, alice_shop
):
    settings.OPENSRS_KEY = "wrong-key"
    ticket = ticket_for(post_api(api, "alice-shop.test"))

    assert process(ticket) == "to_staff"

    ticket.refresh_from_db()
    assert ticket.status == S.OPEN
    assert "resend.opensrs_auth_error" in actions(ticket)
    assert "credentials" in Message.objects.get(ticket=ticket, internal=True).body
    assert calls(fake_opensrs, "SEND_PASSWORD") == []


def test_the_request_queues_the_task_after_commit(
    api, monkeypatch, fake_opensrs, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(
        password_resend_task, "apply_async", lambda **kwargs: queued.append(kwargs["kwargs"])
    )

    with django_capture_on_commit_callbacks(execute=True):
        ticket = services.request_password_resend(
            domain="alice-shop.test",
            client_key="203.0.113.9",
            actor="anonymous",
            channel=Ticket.Channel.API,
        )

    assert {"ticket_id": ticket.pk} in queued
    assert ticket.status == S.NEW
    assert not Notification.objects.filter(ticket=ticket).exists()  # no address, no ack


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_resend_end_to_end(fake_opensrs):
    # given a domain we hold, and a real worker consuming the real broker
    Domain.objects.create(
        name="alice-shop.test",
        registrant_email="alice@example.test",
        registrant_email_status=Domain.EmailStatus.VALID,
    )
    celery_app.control.purge()
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        # when a request comes in through the API
        response = post_api(APIClient(), "ALICE-SHOP.test")
        ticket = ticket_for(response)

        # then the worker reads the record, asks OpenSRS, and mails our notice
        notice_sent = Notification.objects.filter(
            ticket=ticket, template="password_resend_notice", status="sent"
        )
        assert wait_for(notice_sent.exists)
        assert wait_for(
            lambda: Notification.objects.filter(ticket=ticket, status="pending").count() == 0
        )

    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED
    sends = calls(fake_opensrs, "SEND_PASSWORD")
    assert [(s["domain"], s["attributes"]["send_to"]) for s in sends] == [
        ("alice-shop.test", "owner")
    ]
    assert len(mails_to("alice@example.test")) == 2  # OpenSRS's reset mail and our notice
    assert [tags_of(m) for m in mails_to(TYPED)] == [["password-resend-received"]]
    assert ActionLog.objects.filter(ticket=ticket, action="opensrs.call").count() == 2


def test_the_sweep_queues_a_resend_whose_task_was_lost(
    api, fake_opensrs, alice_shop, settings, monkeypatch
):
    # given: a request committed while the broker was down, so its task never ran
    settings.NOTIFICATION_SWEEP_AFTER = timedelta(seconds=0)
    queued: list[int] = []
    monkeypatch.setattr(
        password_resend,
        "tasks_publish_each",
        lambda task, ids, **_: queued.extend(ids),
    )
    ticket = ticket_for(post_api(api, "alice-shop.test"))
    queued.clear()

    # when
    swept = services.password_resend_requeue_due()

    # then: it is queued once; once OpenSRS was called it is never swept again
    assert swept == 1
    assert queued == [ticket.pk]
    process(ticket)
    assert services.password_resend_requeue_due() == 0


def _statements(api, domain) -> list[str]:
    """The SQL an anonymous request runs, with its values masked."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert post_api(api, domain).status_code == 202
    masked = []
    for query in captured.captured_queries:
        sql = re.sub(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b", "?", query["sql"])
        masked.append(re.sub(r'"s\w+_x\d+"', "SAVEPOINT", sql))
    return masked


def test_the_anonymous_request_writes_its_four_rows_and_looks_nothing_up(
    api, fake_opensrs, alice_shop
):
    post_api(api, "first.test")  # the audit chain's head exists, as it always does but once
    # when a domain of ours and an unknown one are asked for, with a typed address
    ours, unknown = _statements(api, "alice-shop.test"), _statements(api, "nobody-y.test")

    # then both run the same statements: the ticket, its audit row (under the chain head's
    # lock), its count in the dashboard's daily and monthly figures, the resend state and the
    # acknowledgement's outbox row; no link, no lookup
    assert ours == unknown
    inserts = [re.search(r'INSERT INTO "(\w+)"', sql).group(1) for sql in ours if "INSERT" in sql]
    assert inserts == [
        "tickets_ticket",
        "tickets_actionlog",
        "tickets_ticketdailystat",
        "tickets_ticketmonthlystat",
        "tickets_passwordresend",
        "tickets_notification",
    ]
    reads = [sql for sql in ours if sql.startswith("SELECT")]
    assert len(reads) == 1 and '"tickets_auditchainhead"' in reads[0]


def test_a_customer_cannot_learn_from_their_tickets_which_domains_are_ours(
    api, fake_opensrs, alice_shop, bob, client
):
    # given Bob, logged out, asks for resets of Alice's domain, of a domain nobody holds and of
    # his own, giving his email on record as the contact address
    Domain.objects.create(
        name="bob-reseller.test", customer=bob, registrant_email="dns-admin@bob-reseller.test"
    )
    alices, nobodys, his = (
        ticket_for(post_api(api, name, contact_email=bob.email))
        for name in ("alice-shop.test", "nobody-here.test", "bob-reseller.test")
    )
    assert [process(t) for t in (alices, nobodys, his)] == ["sent", "unknown_domain", "sent"]

    # when he signs in and reads his requests, on the portal and through the API
    client.force_login(bob.user)
    listed = {row["reference"] for row in client.get("/api/v1/tickets/").json()["results"]}

    # then the two that are not about his domains read alike: neither is his to read
    assert listed == {his.reference}
    for other in (alices, nobodys):
        assert client.get(f"/api/v1/tickets/{other.reference}/").status_code == 404
        assert client.get(f"/my/tickets/{other.reference}/").status_code == 404
    assert client.get(f"/api/v1/tickets/{his.reference}/").json()["domain"] == ("bob-reseller.test")


def _status_page_text(client, path: str, ticket: Ticket) -> str:
    """The status page as its reader sees it, less what differs by request (link, times, name)."""
    html = comparable(client.get(path).content.decode())
    html = html.replace(path, "/track/LINK/").replace(ticket.requested_domain, "DOMAIN")
    return re.sub(r"<time[^>]*>[^<]*</time>", "<time>", html)


def test_the_status_page_reads_the_same_for_ours_unknown_and_bouncing_domains(
    api, client, fake_opensrs, alice_shop, stale_mail
):
    # given requests with a typed contact address for a domain of ours, one not ours, and
    # one of ours whose registration address bounces, done by the worker
    names = ("alice-shop.test", "nobody-x.test", "stale-mail.test")
    tickets = [ticket_for(post_api(api, name)) for name in names]
    assert [process(ticket) for ticket in tickets] == ["sent", "unknown_domain", "referred"]
    send_outbox()
    links = [
        re.search(r"https?://[^/\s]+(/track/[A-Za-z0-9_-]+/)", message.body).group(1)
        for message in mails_to(TYPED)
    ]
    assert len(links) == 3

    # when the typed address opens each status page, and then writes back on it
    pages, replied = [], []
    for link, ticket in zip(links, tickets, strict=True):
        pages.append(_status_page_text(client, link, ticket))
        assert client.post(f"{link}reply/", {"body": "Nothing arrived."}).status_code == 302
        replied.append(_status_page_text(client, link, ticket))

    # then nothing tells the bouncing domain of ours from the others, before or after
    assert pages[0] == pages[1] == pages[2]
    assert replied[0] == replied[1] == replied[2]
    # and the reply reached staff alike: each request is back in the queue
    assert {ticket.status for ticket in Ticket.objects.filter(pk__in=[t.pk for t in tickets])} == {
        S.OPEN
    }
