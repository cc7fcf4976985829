"""Links to confirm a new email address: a stranger's mailbox gets only so many, whoever asks."""

import pytest
from django.conf import settings as django_settings

from tests.tickets.verification_helpers import owner_request
from tickets.audit import audit_verify
from tickets.models import ActionLog, Notification, Ticket, Verification
from tickets.selectors.tickets import ticket_events_visible

pytestmark = pytest.mark.django_db

VICTIM = "victim@elsewhere.test"


def _links_to(address: str) -> int:
    mails = Notification.objects.filter(template="verify_new_email", recipient__iexact=address)
    return mails.count()


def test_the_default_limit_of_new_email_links_per_address_is_a_few_a_day():
    assert django_settings.RATE_LIMITS["new_email_link_per_address"] == (3, 86400)


def test_one_address_gets_a_few_new_email_links_a_day_whoever_asks(
    alice, bob, settings, rate_window_start
):
    # given two signed-in customers who each ask, again and again, to move their email on
    # record to a stranger's address (each link mails that stranger)
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "new_email_link_per_address": (3, 86400)}
    tickets = [owner_request(alice, {"email": VICTIM}) for _ in range(2)]

    # when more ask than the address's share
    tickets += [owner_request(bob, {"email": "Victim@Elsewhere.test"}) for _ in range(2)]
    tickets.append(owner_request(alice, {"email": VICTIM}))

    # then the stranger is mailed three links, however the address was written; every request
    # was taken as before (the same answer: a ticket waiting for the new address)
    assert _links_to(VICTIM) == 3
    assert all(ticket.status == Ticket.Status.OPEN for ticket in tickets)
    assert Verification.objects.filter(purpose=Verification.Purpose.NEW_EMAIL).count() == 3


def test_another_address_still_gets_its_link(alice, settings, rate_window_start):
    # given the stranger's share used up
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "new_email_link_per_address": (1, 86400)}
    owner_request(alice, {"email": VICTIM})
    owner_request(alice, {"email": VICTIM})

    # when Alice asks for her real new address
    owner_request(alice, {"email": "alice.new@example.net"})

    # then it gets its link
    assert _links_to(VICTIM) == 1
    assert _links_to("alice.new@example.net") == 1


HELD = {
    "en": "No link to confirm the new email address was sent: that address has had as many "
    "links as it may get for now, whoever asked.",
    "ms": "Tiada pautan untuk mengesahkan alamat e-mel baharu dihantar: alamat itu telah "
    "menerima seberapa banyak pautan yang dibenarkan buat masa ini, tidak kira siapa yang "
    "meminta.",
}


@pytest.mark.parametrize("language", ["en", "ms"])
def test_a_held_link_is_on_the_chain_and_in_the_staff_ticket_history(
    alice, settings, rate_window_start, supervisor_client, language
):
    # given the stranger's share of links used up
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "new_email_link_per_address": (1, 86400)}
    mailed = owner_request(alice, {"email": VICTIM})

    # when Alice asks again for the same new address
    held = owner_request(alice, {"email": VICTIM})

    # then the ticket records why no link went out, as the link it would have been recorded
    # (the address as verification.sent writes it), on an intact chain; the first has no such row
    row = ActionLog.objects.get(ticket=held, action="verification.held")
    assert row.actor == "system"
    assert row.details == {
        "purpose": "new_email",
        "to": VICTIM,
        "limit": "new_email_link_per_address",
    }
    assert not ActionLog.objects.filter(ticket=mailed, action="verification.held").exists()
    assert audit_verify().ok
    # and the staff ticket page's history says so in the page's language
    supervisor_client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    page = supervisor_client.get(f"/staff/tickets/{held.reference}/").content.decode()
    assert HELD[language] in page


def test_the_customer_does_not_read_that_a_link_was_held(alice, settings, rate_window_start):
    # given a held link on Alice's ticket
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "new_email_link_per_address": (1, 86400)}
    owner_request(alice, {"email": VICTIM})
    held = owner_request(alice, {"email": VICTIM})

    # then her own view of the ticket's events does not show it (how often others asked)
    events = ticket_events_visible(user=alice.user, ticket=held)
    assert "verification.held" not in {event.action for event in events}
