"""A signed-in customer's own writes are limited per customer: replies and preference changes.

Each reply mails staff and is audited, each preference change makes a ticket or a confirmation
email and an audit row; a logged-in script must not write thousands of them.
"""

import pytest

from tests.factories import TicketFactory
from tickets import services
from tickets.models import ActionLog, Message, Notification, Ticket

pytestmark = pytest.mark.django_db

S = Ticket.Status


@pytest.fixture
def limits(settings):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "reply_per_customer": (2, 3600),
        "preferences_per_customer": (2, 3600),
    }


@pytest.mark.usefixtures("rate_window_start")
def test_portal_replies_past_the_limit_are_a_429_that_keeps_the_draft(alice_client, alice, limits):
    ticket = TicketFactory(customer=alice, status=S.OPEN)
    url = f"/my/tickets/{ticket.reference}/reply/"
    for n in range(2):
        assert alice_client.post(url, {"body": f"Reply {n}"}).status_code == 302

    response = alice_client.post(url, {"body": "One too many"})

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "One too many" in response.content.decode()  # the draft is kept
    assert ticket.messages.filter(author="customer").count() == 2


@pytest.mark.usefixtures("rate_window_start")
def test_api_replies_count_against_the_same_limit(alice_client, alice, limits):
    ticket = TicketFactory(customer=alice, status=S.OPEN)
    alice_client.post(f"/my/tickets/{ticket.reference}/reply/", {"body": "From the page"})
    url = f"/api/v1/tickets/{ticket.reference}/messages/"
    assert (
        alice_client.post(url, {"body": "By script"}, content_type="application/json").status_code
        == 201
    )

    response = alice_client.post(url, {"body": "Again"}, content_type="application/json")

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert ticket.messages.count() == 2


def test_one_customers_limit_is_not_anothers_nor_staffs(alice_client, alice, bob, agent, limits):
    mine = TicketFactory(customer=alice, status=S.OPEN)
    for n in range(3):
        alice_client.post(f"/my/tickets/{mine.reference}/reply/", {"body": f"Reply {n}"})
    bobs = TicketFactory(customer=bob, status=S.OPEN)

    services.ticket_reply_add(
        ticket=bobs, body="Bob's own", actor=bob, author="customer", channel="portal"
    )
    for n in range(3):
        services.ticket_reply_add(
            ticket=mine, body=f"Answer {n}", actor=agent, author="staff", channel="staff"
        )

    assert Message.objects.filter(ticket=bobs).count() == 1
    assert mine.messages.filter(author="staff").count() == 3


@pytest.mark.usefixtures("rate_window_start")
def test_preference_changes_past_the_limit_are_a_429_and_change_nothing(
    alice_client, alice, limits
):
    for choice in ("", "on"):
        response = alice_client.post("/my/preferences/", {"product_mailings": choice})
        assert response.status_code == 302

    response = alice_client.post("/my/preferences/", {"product_mailings": ""})

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    alice.refresh_from_db()
    assert alice.product_mailings is True
    assert Ticket.objects.filter(kind=Ticket.Kind.OPT_OUT).count() == 1
    assert Notification.objects.filter(template="opt_in_confirmed").count() == 1


@pytest.mark.usefixtures("rate_window_start")
def test_language_changes_count_against_the_preferences_limit(alice_client, alice, limits):
    for language in ("ms", "en"):
        alice_client.post("/i18n/setlang/", {"language": language, "next": "/my/"})

    # choosing the language already held changes nothing and is never refused
    for _ in range(3):
        response = alice_client.post("/i18n/setlang/", {"language": "en", "next": "/my/"})
        assert response.status_code == 302

    response = alice_client.post("/i18n/setlang/", {"language": "ms", "next": "/my/"})

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    alice.refresh_from_db()
    assert alice.language == "en"
    assert ActionLog.objects.filter(action="customer.language_changed").count() == 2
