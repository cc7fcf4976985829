"""The confirmation of a request sent from a customer's address has one rule, offered and kept.

The API's `can_confirm`, the portal's and the status page's "Yes, I sent this request" and the
services that confirm all ask `opener_confirm_refusal`: none offers what the service refuses.
"""

import re

import pytest
from django.contrib.auth.models import User
from django.utils.html import escape
from rest_framework.test import APIClient

from accounts.models import Customer
from tests.tickets.test_unproven_opener import forged_form, held_of
from tickets import services
from tickets.models import ActionLog, Ticket
from tickets.services.freeze import ACCOUNT_FROZEN
from tickets.services.lifecycle import ACCOUNT_CLOSED

pytestmark = pytest.mark.django_db

LOCKED_OUT = [
    (Customer.AccountStatus.SUSPENDED, ACCOUNT_FROZEN),
    (Customer.AccountStatus.CLOSED, ACCOUNT_CLOSED),
]
BUTTON = "Yes, I sent this request"


def signed_in_before(customer: Customer, status: str) -> APIClient:
    """An API client of the customer's login, past sign-in; the account is `status` since."""
    api = APIClient()
    api.force_authenticate(user=User.objects.get(pk=customer.user_id))
    Customer.objects.filter(pk=customer.pk).update(account_status=status)
    return api


@pytest.mark.parametrize(("status", "refusal"), LOCKED_OUT)
def test_a_locked_out_account_is_offered_no_confirmation_the_api_would_refuse(
    client, alice, status, refusal
):
    # given a request sent from Alice's address without signing in; her API client signed in
    # before her account was frozen (or closed)
    ticket = forged_form(client)
    api = signed_in_before(alice, status)

    # when her client reads the ticket, and posts to the confirmation anyway
    held, can_confirm, confirm_url = held_of(api, ticket)
    response = api.post(f"/api/v1/tickets/{ticket.reference}/confirm/")

    # then the detail offers nothing, and the confirmation is refused for the rule's reason
    assert (held, can_confirm, confirm_url) == (1, False, None)
    assert response.status_code == 409
    assert response.json()["detail"] == refusal
    alice.refresh_from_db()
    rule = services.opener_confirm_refusal(ticket=ticket, customer=alice)
    assert rule is not None and rule.message == refusal
    ticket.refresh_from_db()
    assert ticket.opener_unproven
    assert not ActionLog.objects.filter(ticket=ticket, action="ticket.opener_confirmed").exists()


@pytest.mark.parametrize(("status", "refusal"), LOCKED_OUT)
def test_a_status_link_of_a_locked_out_account_offers_and_makes_no_confirmation(
    client, alice, status, refusal
):
    # given the status link mailed to Alice's address for a forged request; her account is
    # frozen (or closed) since
    ticket = forged_form(client)
    link = services.status_link_issue(ticket=ticket, send_to=alice.email)
    path = link.removeprefix("https://help.exabytes.example")
    Customer.objects.filter(pk=alice.pk).update(account_status=status)

    # when its holder opens the page, and posts the confirmation anyway
    page = client.get(path).content.decode()
    response = client.post(f"{path}confirm/", follow=True)

    # then the page tells of the request but offers no button; the post says why it changed
    # nothing, as a reply there would
    assert "Sent from your address without signing in" in page
    assert BUTTON not in page
    assert escape(refusal) in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.opener_unproven
    assert not ActionLog.objects.filter(ticket=ticket, action="ticket.opener_confirmed").exists()


def test_a_status_link_mailed_to_another_address_offers_no_confirmation(client, alice):
    # given a forged request whose contact address was someone else's: its link went there
    ticket = forged_form(client)
    Ticket.objects.filter(pk=ticket.pk).update(contact_email="typed@elsewhere.test")
    link = services.status_link_issue(ticket=ticket, send_to="typed@elsewhere.test")
    path = link.removeprefix("https://help.exabytes.example")

    page = client.get(path).content.decode()

    assert "Sent from your address without signing in" in page
    assert BUTTON not in page
    assert client.post(f"{path}confirm/").status_code == 404


def test_her_own_session_is_still_offered_the_confirmation_the_service_makes(
    client, alice, alice_client
):
    ticket = forged_form(client)

    page = alice_client.get(f"/my/tickets/{ticket.reference}/").content.decode()
    assert BUTTON in page
    assert held_of(alice_client, ticket)[1] is True
    alice_client.post(f"/my/tickets/{ticket.reference}/confirm/")

    ticket.refresh_from_db()
    assert not ticket.opener_unproven


def test_a_link_to_an_address_no_longer_hers_is_refused_alike_whatever_her_accounts_state(
    client, alice
):
    # given the status link mailed to Alice's address for a forged request, and her email on
    # record changed since: the link's holder may be whoever has that old mailbox now
    ticket = forged_form(client)
    link = services.status_link_issue(ticket=ticket, send_to=alice.email)
    path = link.removeprefix("https://help.exabytes.example")
    Customer.objects.filter(pk=alice.pk).update(email="alice.new@example.test")

    # when its holder posts the confirmation while her account is open, frozen or closed
    answers = []
    for status in [Customer.AccountStatus.ACTIVE, *(status for status, _refusal in LOCKED_OUT)]:
        Customer.objects.filter(pk=alice.pk).update(account_status=status)
        response = client.post(f"{path}confirm/", follow=True)
        page = re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", response.content.decode())
        answers.append((response.status_code, page))

    # then each refusal is the one of a link no longer valid: none tells the account's state
    assert answers[0][0] == 404
    assert answers[1:] == [answers[0], answers[0]]
    ticket.refresh_from_db()
    assert ticket.opener_unproven
