"""Inbound mail acts for its sender only when our receiving server authenticated the From address.

Every message is posted to the real webhook as Postmark would post it, with its "Headers" list
in the order the message carries them (the receiving server's own on top).
"""

import pytest
from django.test import Client

from tests.factories import TicketFactory
from tests.tickets.test_inbound import payload, post, received_spf, webhook_secret  # noqa: F401
from tests.tickets.verification_helpers import owner_request
from tickets import services
from tickets.models import ActionLog, Attachment, Message, Notification, Ticket

pytestmark = pytest.mark.django_db

S = Ticket.Status
ALICE = "alice@example.test"
OURS = "inbound.postmarkapp.com"


def results(value):
    return ("Authentication-Results", value)


def unsubscribe(client, *, sender=ALICE, headers=(), authenticated=False, **fields):
    body = payload(
        sender=sender,
        subject="Unsubscribe",
        text="",
        headers=headers,
        authenticated=authenticated,
        **fields,
    )
    return post(client, body)


def verdict_stored():
    """The sender check kept on the customer's message and in its inbound.received audit row."""
    message = Message.objects.get(author=Message.Author.CUSTOMER, channel="email")
    row = ActionLog.objects.get(action="inbound.received")
    assert row.details["sender_authentication"] == message.sender_authentication
    return message.sender_authentication


def resolved_name_change(alice, agent):
    """Alice's verified change of name, waiting for a supervisor, then resolved by an agent."""
    ticket = owner_request(alice, {"full_name": "Alice Tan Mei Ling"})
    assert ticket in services.modify_awaiting_supervisor()
    services.ticket_resolve(ticket=ticket, actor=agent)
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED
    return ticket


def reply(client, ticket, *, authenticated):
    return post(
        client,
        payload(
            sender=ALICE,
            subject=f"Re: [{ticket.reference}] Change of personal information",
            text="Please go ahead with it.",
            message_id="reply-1@example.test",
            authenticated=authenticated,
        ),
    )


# --- the forged opt-out ---


@pytest.mark.parametrize(
    ("to", "mailing"),
    [
        ("support@exabytes.example", "product_mailings"),
        # our List-Unsubscribe mailto for newsletters
        ("billing@exabytes.example", "reseller_newsletters"),
    ],
)
def test_a_forged_unsubscribe_changes_nothing_and_mails_the_owner_a_one_click_link(
    client, settings, bob, to, mailing
):
    # given an email "from" Bob's address on record that no server authenticated
    response = unsubscribe(client, sender="bob@example.test", to=to)

    # then his mailings are untouched and nothing says they stopped
    assert response.status_code == 200
    bob.refresh_from_db()
    assert getattr(bob, mailing) is True
    assert not Notification.objects.filter(template="opt_out_confirmed").exists()
    assert not ActionLog.objects.filter(action="customer.mailing_preferences_changed").exists()
    # the address on record gets a one-click link for the list asked about, on SITE_URL
    mail = Notification.objects.get(template="opt_out_link")
    assert mail.recipient == "bob@example.test"
    [link] = mail.context["unsubscribe_links"]
    assert link["list"] == mailing
    assert link["url"].startswith(f"{settings.SITE_URL}/unsubscribe/")
    # the request is recorded, the verdict with it, and staff are told why nothing changed
    ticket = Ticket.objects.get()
    assert (ticket.kind, ticket.status, ticket.customer) == ("opt_out", S.RESOLVED, bob)
    assert verdict_stored()["authenticated"] is False
    assert ActionLog.objects.get(action="inbound.received").details["outcome"] == (
        "opt_out_link_sent"
    )
    assert "could not confirm" in ticket.messages.get(internal=True).body

    # when the owner follows the link and presses the button
    path = link["url"].removeprefix(settings.SITE_URL)
    assert client.get(path).status_code == 200
    client.post(path)

    # then that mailing stops
    bob.refresh_from_db()
    assert getattr(bob, mailing) is False


def test_a_forged_unsubscribe_for_mailings_already_off_mails_nothing(client, alice):
    alice.product_mailings = False
    alice.save(update_fields=["product_mailings"])

    unsubscribe(client)

    assert not Notification.objects.filter(template__startswith="opt_out").exists()
    assert Ticket.objects.get().status == S.RESOLVED


def test_an_authenticated_unsubscribe_still_stops_the_mailings_at_once(client, alice):
    unsubscribe(client, authenticated=True)

    alice.refresh_from_db()
    assert alice.product_mailings is False
    assert Notification.objects.get(template="opt_out_confirmed").recipient == ALICE
    assert not Notification.objects.filter(template="opt_out_link").exists()
    assert verdict_stored() == {
        "authenticated": True,
        "trusted": True,
        "by": "spf",
        "source": received_spf(ALICE)[1],
        "results": {"spf": ["pass"]},
    }


# --- the forged reopen ---


def test_a_forged_reply_leaves_a_resolved_change_request_out_of_the_approvals(
    client, alice, agent, supervisor_client
):
    # given Alice's verified change of name, resolved
    ticket = resolved_name_change(alice, agent)

    # when a reply "from" her address arrives that no server authenticated
    response = reply(client, ticket, authenticated=False)

    # then it is added to the ticket, which stays resolved and out of the supervisors' queue
    assert response.status_code == 200
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED
    assert ticket not in services.modify_awaiting_supervisor()
    assert "Please go ahead" in ticket.messages.get(author="customer", channel="email").body
    assert verdict_stored()["authenticated"] is False
    assert ActionLog.objects.get(action="inbound.received").details["outcome"] == (
        "reply_not_reopened"
    )
    assert not ActionLog.objects.filter(action="ticket.status_changed", details__to=S.OPEN)
    # and staff see the email, marked, with a note saying why the ticket did not reopen
    page = supervisor_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
    assert "Please go ahead with it." in page
    assert "Sender not authenticated" in page
    assert "did not reopen the ticket" in ticket.messages.get(internal=True).body


def test_an_authenticated_reply_still_reopens_a_resolved_change_request(
    client, alice, agent, supervisor_client
):
    ticket = resolved_name_change(alice, agent)

    reply(client, ticket, authenticated=True)

    ticket.refresh_from_db()
    assert ticket.status == S.OPEN
    assert ticket in services.modify_awaiting_supervisor()
    assert verdict_stored()["authenticated"] is True
    page = supervisor_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
    assert "Sender not authenticated" not in page


def test_a_forged_reply_does_not_take_a_ticket_off_awaiting_customer(client, alice, agent):
    # given a general question staff answered (awaiting the customer, its SLA clock stopped)
    ticket = services.request_general(
        subject="Mailbox", body="How?", contact_email=ALICE, customer=alice, actor=alice
    )
    services.ticket_reply_add(
        ticket=ticket, body="Which domain?", actor=agent, author="staff", channel="portal"
    )
    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_CUSTOMER

    reply(client, ticket, authenticated=False)

    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_CUSTOMER
    assert ticket.messages.filter(author="customer", channel="email").count() == 1


# --- new mail from an address on record ---


def test_unauthenticated_new_mail_is_acknowledged_without_the_senders_words(client, alice):
    post(
        client,
        payload(sender=ALICE, subject="Click http://evil.test now", authenticated=False),
    )

    ticket = Ticket.objects.get()
    assert (ticket.kind, ticket.customer, ticket.customer_by_contact) == ("general", alice, True)
    ack = Notification.objects.get(template="ticket_received")
    assert ack.recipient == ALICE
    assert "subject" not in ack.context
    assert verdict_stored()["authenticated"] is False


def test_authenticated_new_mail_is_acknowledged_with_its_subject(client, alice):
    post(client, payload(sender=ALICE, subject="My mailbox is full"))

    ticket = Ticket.objects.get()
    assert (ticket.customer, ticket.customer_by_contact) == (alice, False)
    ack = Notification.objects.get(template="ticket_received")
    assert ack.context["subject"] == "My mailbox is full"


def test_a_forged_mail_sent_first_with_her_message_id_does_not_swallow_hers(client, alice):
    # given a stranger who learnt the Message-ID of Alice's mail and sent a forged copy first
    unsubscribe(client, message_id="her-unsubscribe@example.test")
    alice.refresh_from_db()
    assert alice.product_mailings is True

    # when her own, authenticated mail with that Message-ID arrives
    unsubscribe(client, message_id="her-unsubscribe@example.test", authenticated=True)

    # then it is not taken for a second delivery of the forgery: her mailings stop
    alice.refresh_from_db()
    assert alice.product_mailings is False
    assert Notification.objects.filter(template="opt_out_confirmed").count() == 1
    # and each of the two, delivered again, is still stored once
    unsubscribe(client, message_id="her-unsubscribe@example.test")
    unsubscribe(client, message_id="her-unsubscribe@example.test", authenticated=True)
    assert Message.objects.filter(author=Message.Author.CUSTOMER).count() == 2


# --- which verdicts count ---


FORGED = {
    "Authentication-Results of a foreign authserv-id": [
        results(
            "attacker.test; dmarc=pass header.from=example.test; dkim=pass header.d=example.test"
        )
    ],
    "another real provider's id, copied by the sender": [
        results(f"mx.google.com; spf=pass smtp.mailfrom={ALICE}; dmarc=pass")
    ],
    "our id as the start of another name": [
        results(f"{OURS}.attacker.test; dmarc=pass header.from=example.test")
    ],
    "Received-SPF naming another receiver": [received_spf(ALICE, receiver="attacker.test")],
    "a copy claiming our id below our own verdict": [
        received_spf(ALICE, result="Fail"),
        results(f"{OURS}; dmarc=pass header.from=example.test"),
    ],
    "a pass claiming our id below our own fail": [
        results(f"{OURS}; dmarc=fail header.from=example.test"),
        results(f"{OURS}; dmarc=pass header.from=example.test"),
    ],
    "DKIM pass for an unaligned d=": [
        results(f"{OURS}; dkim=pass header.d=attacker.test; spf=fail smtp.mailfrom={ALICE}")
    ],
    "DKIM pass for a bare top-level domain": [
        results(f"{OURS}; dkim=pass header.d=test; dmarc=none")
    ],
    "DKIM pass for a domain that only ends like the From domain": [
        results(f"{OURS}; dkim=pass header.d=notexample.test")
    ],
    "SPF pass for an unaligned envelope sender": [
        results(f"{OURS}; spf=pass smtp.mailfrom=bounce@attacker.test")
    ],
    "DMARC pass naming no From domain": [results(f"{OURS}; dmarc=pass (p=reject)")],
    "DMARC pass for another From domain": [
        results(f"{OURS}; dmarc=pass header.from=attacker.test")
    ],
    "our own fail": [
        results(f"{OURS}; dmarc=fail header.from=example.test; dkim=fail header.d=example.test")
    ],
    "pass only inside a comment": [
        results(f"{OURS}; spf=softfail smtp.mailfrom={ALICE} (spf=pass header.d=example.test)")
    ],
    "pass only inside a quoted reason": [
        results(f'{OURS}; spf=fail reason="spf=pass" smtp.mailfrom={ALICE}')
    ],
    "a pass only inside a quoted reason with spaces": [
        results(f'{OURS}; dkim=pass header.d=attacker.test reason="see header.d=example.test"')
    ],
    "our Received-SPF softfail": [received_spf(ALICE, result="Softfail")],
    "SPF pass for the HELO name only": [
        ("Received-SPF", f"Pass identity=helo; helo=example.test; receiver=x@{OURS}")
    ],
    # A sender's MAIL FROM is theirs to choose: a quoted local part holding an escaped quote
    # and "; key=value" is one address, not more keys or results of our server.
    "Received-SPF: an escaped quote in the envelope sender, then its second envelope-from": [
        (
            "Received-SPF",
            "Pass (sender SPF authorized) identity=mailfrom; client-ip=192.0.2.1; helo=h; "
            f'envelope-from="x\\"; envelope-from={ALICE}; y\\""@attacker.test; receiver=x@{OURS}',
        )
    ],
    "Authentication-Results: an escaped quote in smtp.mailfrom, then a DKIM pass": [
        results(
            f'{OURS}; spf=pass smtp.mailfrom="x\\"; dkim=pass header.d=example.test; '
            'y\\""@attacker.test'
        )
    ],
    "Received-SPF naming envelope-from twice (a writer that drops the quotes)": [
        (
            "Received-SPF",
            "Pass identity=mailfrom; client-ip=192.0.2.1; helo=h; "
            f"envelope-from=x; envelope-from={ALICE}; y@attacker.test; receiver=x@{OURS}",
        )
    ],
    "Received-SPF claiming our id as its second receiver, above our own fail": [
        (
            "Received-SPF",
            f"Pass identity=mailfrom; envelope-from=x; receiver=evil.test; y@attacker.test; "
            f"receiver=x@{OURS}",
        ),
        received_spf(ALICE, result="Fail"),
    ],
    "DKIM pass naming header.d twice": [
        results(f"{OURS}; dkim=pass header.d=attacker.test header.s=s1 header.d=example.test")
    ],
    "our server found nothing to check": [results(f"{OURS}; none")],
    "no verdict at all": [],
}


@pytest.mark.parametrize("headers", FORGED.values(), ids=FORGED.keys())
def test_a_verdict_that_does_not_count_leaves_the_mailings_on(client, alice, headers):
    unsubscribe(client, headers=headers)

    alice.refresh_from_db()
    assert alice.product_mailings is True
    assert verdict_stored()["authenticated"] is False
    assert Notification.objects.filter(template="opt_out_link").exists()


GENUINE = {
    "DMARC pass": ([results(f"{OURS}; dmarc=pass (p=REJECT) header.from=example.test")], "dmarc"),
    "DKIM pass, d= the From domain": (
        [results(f"{OURS}; dkim=pass header.d=example.test header.s=s1")],
        "dkim",
    ),
    "DKIM pass, a subdomain of the From domain (relaxed alignment)": (
        [results(f"{OURS}; dkim=pass header.i=@mail.example.test")],
        "dkim",
    ),
    "SPF pass, aligned envelope sender": (
        [results(f"{OURS}; spf=pass smtp.mailfrom=bounces+x@example.test")],
        "spf",
    ),
    "SPF pass, the older smtp.mail property": (
        [results(f"{OURS}; spf=pass smtp.mail={ALICE}")],
        "spf",
    ),
    "upper case, tabs, spaces around =, nested comment, quoted value": (
        [
            results(
                f"{OURS.upper()}.;  SPF=Fail smtp.mailfrom=x@attacker.test;"
                f'\tDKIM = Pass (good (nested) signature) header.D="Example.TEST."'
            )
        ],
        "dkim",
    ),
    "a version after the id and after the method": (
        [results(f"{OURS} 1; auth=pass smtp.auth=alice; dmarc/1=pass header.from=example.test")],
        "dmarc",
    ),
    "Received-SPF, its name and value in other cases": (
        [("received-spf", received_spf(ALICE)[1].upper())],
        "spf",
    ),
    "SPF pass, a quoted local part with an escaped quote and a semicolon": (
        [results(f'{OURS}; spf=pass smtp.mailfrom="b\\"; x"@example.test')],
        "spf",
    ),
    "two DKIM passes, one aligned": (
        [results(f"{OURS}; dkim=pass header.d=esp.test; dkim=pass header.d=example.test")],
        "dkim",
    ),
    "the topmost of our verdicts": (
        [
            results(f"{OURS}; dkim=pass header.d=example.test"),
            results(f"{OURS}; dkim=fail header.d=example.test"),
        ],
        "dkim",
    ),
    "a foreign header above ours is skipped": (
        [
            results("attacker.test; dmarc=fail header.from=example.test"),
            received_spf(ALICE),
        ],
        "spf",
    ),
}


@pytest.mark.parametrize(("headers", "by"), GENUINE.values(), ids=GENUINE.keys())
def test_a_verdict_of_our_server_authenticates_the_sender(client, alice, headers, by):
    unsubscribe(client, headers=headers)

    alice.refresh_from_db()
    assert alice.product_mailings is False
    verdict = verdict_stored()
    assert (verdict["authenticated"], verdict["by"]) == (True, by)


def test_the_authserv_ids_are_a_setting(client, settings, alice):
    settings.INBOUND_AUTHSERV_IDS = ["mx.our-relay.example"]

    unsubscribe(client, headers=[received_spf(ALICE)])
    alice.refresh_from_db()
    assert alice.product_mailings is True

    unsubscribe(
        client,
        headers=[results("mx.our-relay.example; dmarc=pass header.from=example.test")],
        message_id="second@example.test",
    )
    alice.refresh_from_db()
    assert alice.product_mailings is False


def test_an_authserv_id_can_be_our_servers_whole_receiver_address(client, settings, alice):
    # given our server named by its whole receiver address, as Postmark writes it for us
    settings.INBOUND_AUTHSERV_IDS = [f"b935f619461421d03d1ebd76ec881044@{OURS}"]
    forged = [
        ("Received-SPF", received_spf(ALICE)[1].replace("b935f6", "000000")),
        results(f"b935f619461421d03d1ebd76ec881044@{OURS}; dmarc=pass header.from=example.test"),
    ]

    # when: another receiver at the same server, and an Authentication-Results naming the address
    for number, header in enumerate(forged):
        unsubscribe(client, headers=[header], message_id=f"forged-{number}@example.test")

    # then neither is believed; our own receiver is
    alice.refresh_from_db()
    assert alice.product_mailings is True
    unsubscribe(client, headers=[received_spf(ALICE)], message_id="ours@example.test")
    alice.refresh_from_db()
    assert alice.product_mailings is False


def test_with_the_requirement_off_every_sender_is_believed_and_the_verdict_still_kept(
    client, settings, alice
):
    settings.INBOUND_REQUIRE_AUTHENTICATION = False

    unsubscribe(client)

    alice.refresh_from_db()
    assert alice.product_mailings is False
    verdict = verdict_stored()
    assert (verdict["authenticated"], verdict["trusted"]) == (False, True)


# Postmark's JSON carries each header unfolded (anymail refuses a line break in a value); mail
# read from raw MIME (other ESPs) keeps the folding, which the check reads through.


@pytest.mark.parametrize(
    ("value", "authenticated"),
    [
        (f"{OURS};\r\n\tdkim=pass\r\n header.d=example.test", True),
        (f"{OURS};\n dmarc=pass (p=none\n\t dis=none) header.from=example.test", True),
        (f"attacker.test;\r\n\t{OURS}; dmarc=pass header.from=example.test", False),
        (f"{OURS}; spf=fail smtp.mailfrom={ALICE}\r\n\t(dkim=pass header.d=example.test)", False),
    ],
)
def test_folded_authentication_results_are_read_as_one_line(value, authenticated):
    from tickets.services.inbound_auth import inbound_sender_authentication

    verdict = inbound_sender_authentication(
        from_email=ALICE, headers=[("AUTHENTICATION-RESULTS", value)]
    )

    assert verdict.authenticated is authenticated


# --- the forged opt-out as a mail bomb ---


def spellings(local, count):
    """`count` spellings of `local` that compare as it: letters in ASCII or fullwidth forms."""
    found = []
    for mask in range(count):
        found.append(
            "".join(
                chr(ord(char) + 0xFEE0) if mask >> index & 1 else char
                for index, char in enumerate(local)
            )
        )
    return found


def test_forged_unsubscribes_in_many_spellings_mail_the_owner_a_few_links_only(
    client, settings, alice
):
    limit = settings.RATE_LIMITS["request_per_email"][0]
    senders = [f"{local}@example.test" for local in spellings("alice", 12)]

    # when a stranger sends twelve "Unsubscribe" mails as Alice, each From spelled another way
    for number, sender in enumerate(senders):
        unsubscribe(client, sender=sender, message_id=f"bomb-{number}@attacker.test")

    # then of those read, the plain spelling alone asks her record (the full-width ones are no
    # plain address, by the one rule for addresses, and are filed as from no one on record)...
    read = settings.RATE_LIMITS["inbound_per_sender"][0]
    requests = Ticket.objects.filter(kind="opt_out", customer=alice)
    assert requests.count() == 1
    assert Ticket.objects.filter(kind="opt_out").count() == read
    # ...past the per-sender limit, counted once for all the spellings, the rest are dropped
    assert (
        ActionLog.objects.filter(action="inbound.ignored", details__reason="rate limit").count()
        == len(senders) - read
    )
    # and her mailbox gets no more links than an anonymous opt-out request could send her
    assert Notification.objects.filter(template="opt_out_link").count() <= limit
    assert set(Notification.objects.values_list("recipient", flat=True)) == {ALICE}
    assert requests.filter(status=S.RESOLVED).count() == requests.count()
    alice.refresh_from_db()
    assert alice.product_mailings is True


# --- the cost of reading verdicts ---


def test_verdicts_are_read_only_from_the_top_of_the_message():
    from tickets.services.inbound_auth import (
        VERDICT_HEADER_MAX_CHARS,
        VERDICT_HEADERS_READ,
        inbound_sender_authentication,
    )

    ours = received_spf(ALICE)
    nested = "(" * VERDICT_HEADER_MAX_CHARS + ")" * VERDICT_HEADER_MAX_CHARS
    foreign = results(f"attacker.test; dkim=pass header.d=attacker.test {nested[:1000]}")
    cases = {
        # our verdict on top is read, whatever the sender wrote below it
        "ours on top": ([ours, *[results(f"attacker.test; none {nested}")] * 100], True),
        # megabytes of a sender's nested comments are not read through, one header or many
        "one header longer than any server writes": (
            [results(f"attacker.test; none {nested}"), ours],
            False,
        ),
        "more verdict headers than any path of servers writes": (
            [*[foreign] * VERDICT_HEADERS_READ, ours],
            False,
        ),
        "as many as may be read": ([*[foreign] * (VERDICT_HEADERS_READ - 1), ours], True),
    }
    for name, (headers, authenticated) in cases.items():
        verdict = inbound_sender_authentication(from_email=ALICE, headers=headers)
        assert verdict.authenticated is authenticated, name


# --- what the customer is shown of mail whose sender was not authenticated ---

PHISH = "Your account is locked. Call +60 3-9999 0000 now to keep your domains."


@pytest.fixture
def forged_reply(client, alice, agent):
    """Alice's open ticket with her own portal message, then a forged email "from" her."""
    ticket = TicketFactory(customer=alice, status=S.OPEN, subject="Invoice")
    Message.objects.create(ticket=ticket, author="customer", body="My own words", channel="portal")
    response = post(
        client,
        payload(
            sender=ALICE,
            subject=f"Re: [{ticket.reference}]",
            text=PHISH,
            message_id="<forged@x>",
            authenticated=False,
            attachments=[("steps.txt", "text/plain", b"Dial the number above.")],
        ),
    )
    assert response.status_code == 200
    message = ticket.messages.get(channel="email")
    assert message.sender_authentication["authenticated"] is False
    message.attachments.update(scan_status=Attachment.ScanStatus.CLEAN)
    return ticket


def test_a_forged_reply_is_not_shown_to_the_customer_on_any_page_or_the_api(
    alice_client, forged_reply, agent_client, alice
):
    ticket = forged_reply
    forged = ticket.messages.get(channel="email").attachments.get()
    # the portal ticket page
    page = alice_client.get(f"/my/tickets/{ticket.reference}/").content.decode()
    assert "My own words" in page
    assert PHISH not in page
    assert "steps.txt" not in page
    download = f"/my/tickets/{ticket.reference}/attachments/{forged.pk}/"
    assert alice_client.get(download).status_code == 404
    # the status page of a link mailed to her
    link = services.status_link_issue(ticket=ticket, send_to=alice.email)
    path = link[link.index("/track/") :]
    status = alice_client.get(path).content.decode()
    assert "My own words" in status
    assert PHISH not in status
    assert Client().get(f"{path}attachments/{forged.pk}/").status_code == 404
    # the API, for her
    api = alice_client.get(f"/api/v1/tickets/{ticket.reference}/").json()
    assert [m["body"] for m in api["messages"]] == ["My own words"]
    # her search of her tickets
    assert alice_client.get("/api/v1/tickets/", {"q": "9999"}).json()["results"] == []
    # while staff see it, marked
    staff = agent_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
    assert PHISH in staff
    assert "Sender not authenticated" in staff
    staff_api = agent_client.get(f"/api/v1/tickets/{ticket.reference}/").json()
    assert PHISH in [m["body"] for m in staff_api["messages"]]


def test_a_staff_reply_does_not_quote_a_forged_reply_to_the_customer(forged_reply, agent):
    services.ticket_reply_add(
        ticket=forged_reply, body="Hello Alice", actor=agent, author="staff", channel="staff"
    )

    reply_mail = Notification.objects.get(template="ticket_reply")
    assert PHISH not in str(reply_mail.context)
    assert "My own words" in str(reply_mail.context)


def test_an_authenticated_reply_is_shown_to_the_customer(client, alice, alice_client):
    ticket = TicketFactory(customer=alice, status=S.OPEN)
    post(
        client,
        payload(sender=ALICE, subject=f"Re: [{ticket.reference}]", text="Thanks, it works now."),
    )

    page = alice_client.get(f"/my/tickets/{ticket.reference}/").content.decode()
    assert "Thanks, it works now." in page


def test_with_authentication_not_required_every_reply_is_shown_to_the_customer(
    client, alice, alice_client, settings
):
    settings.INBOUND_REQUIRE_AUTHENTICATION = False
    ticket = TicketFactory(customer=alice, status=S.OPEN)
    post(
        client,
        payload(
            sender=ALICE,
            subject=f"Re: [{ticket.reference}]",
            text="Thanks, it works now.",
            authenticated=False,
        ),
    )

    page = alice_client.get(f"/my/tickets/{ticket.reference}/").content.decode()
    assert "Thanks, it works now." in page


def test_a_forged_reply_leaves_no_trace_in_the_history_the_customer_reads(
    client, alice, alice_client, agent_client
):
    # given Alice's ticket, a reply of hers our server authenticated, then a forged one
    ticket = TicketFactory(customer=alice, status=S.OPEN)
    for message_id, authenticated in (("<real@x>", True), ("<forged@x>", False)):
        mail = payload(
            sender=ALICE,
            subject=f"Re: [{ticket.reference}]",
            text=PHISH,
            message_id=message_id,
            authenticated=authenticated,
        )
        assert post(client, mail).status_code == 200

    def added(api: dict) -> list[str]:
        return [e["created_at"] for e in api["events"] if e["action"] == "ticket.message_added"]

    # then her history through the API shows one message added, as her messages show one
    api = alice_client.get(f"/api/v1/tickets/{ticket.reference}/").json()
    assert len(api["messages"]) == 1
    assert len(added(api)) == 1
    # while staff read both
    staff = agent_client.get(f"/api/v1/tickets/{ticket.reference}/").json()
    assert len(added(staff)) == 2


def test_the_customer_export_marks_a_forged_reply_as_not_the_customers(
    forged_reply, supervisor_client, alice
):
    # when a supervisor exports what is held on Alice, for her
    response = supervisor_client.post(f"/staff/customers/{alice.number}/export.json")

    # then the forged email is there (it is held) but marked as not shown to her as hers:
    # its sender was not authenticated, unlike her own portal message's nothing to check
    [ticket] = response.json()["tickets"]
    messages = {m["body"]: m for m in ticket["messages"]}
    assert messages[PHISH]["author"] == "customer"
    assert messages[PHISH]["sender_authenticated"] is False
    assert messages["My own words"]["sender_authenticated"] is None
