"""A closed account's record changes no more than a frozen one's: not by any path.

Sign-in, replies and requests by session refuse an account that is frozen or closed; a change
request that reaches it another way (a link to the email on record, a staff approval of a
request made before the closure) must not write to the record either. A request without a
login naming a closed account's address mails it no link, only what it can do instead, and
the requester cannot tell it from any other.
"""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import Customer
from helpdesk.exceptions import TransitionNotAllowed
from tests.pages import comparable
from tests.tickets.test_modify import anonymous_request, confirm
from tests.tickets.verification_helpers import (
    anonymous_lookups,
    deliver_outbox,
    html_part,
    owner_request,
)
from tickets import services
from tickets.models import AnonymousRequest, Ticket, Verification
from tickets.services.lifecycle import ACCOUNT_CLOSED, AccountLockedOut

S = Ticket.Status

pytestmark = pytest.mark.django_db


def close_account(customer: Customer) -> None:
    Customer.objects.filter(pk=customer.pk).update(account_status=Customer.AccountStatus.CLOSED)


def test_a_link_mailed_before_the_account_was_closed_applies_no_change(alice, settings):
    # given a link mailed to Alice's address while her account was open, closed since; low-risk
    # changes apply once confirmed
    settings.MODIFY_AUTO_APPLY_LOW_RISK = True
    ticket = anonymous_request(changes={"phone": "+60 19-999 0000", "city": "Ipoh"})
    close_account(alice)

    # when whoever reads the address on record confirms it
    with pytest.raises(AccountLockedOut) as refused:
        confirm(ticket)

    # then it is refused, saying why, and the record is as it was: nothing confirmed
    assert refused.value.message == ACCOUNT_CLOSED
    alice.refresh_from_db()
    assert (alice.phone, alice.city) == ("+60312345678", "Kuala Lumpur")
    assert not ticket.changes.filter(applied_at__isnull=False).exists()
    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_VERIFICATION


def test_a_supervisor_cannot_apply_a_change_to_an_account_closed_since(alice, supervisor):
    # given Alice asked for a new name while signed in, and her account was closed since
    ticket = owner_request(alice, {"full_name": "Alice Wong"})
    assert ticket.status == S.OPEN
    close_account(alice)

    # when a supervisor approves it
    with pytest.raises(TransitionNotAllowed) as refused:
        services.ticket_approve(ticket=ticket, actor=supervisor)

    # then it is refused, saying why, and the record is as it was
    assert refused.value.message == ACCOUNT_CLOSED
    alice.refresh_from_db()
    assert alice.full_name == "Alice Tan"


# --- a request without a login naming a closed account's address ---

MODIFY_API = "/api/v1/requests/modify/"
OPT_OUT_API = "/api/v1/requests/opt-out/"


def ask(kind: str, email: str) -> Ticket:
    """A change or an opt-out asked for without a login, naming `email`; not looked up yet."""
    if kind == "modify":
        return services.request_modify(
            email=email,
            customer=None,
            changes={"city": "Ipoh"},
            note="Moved house",
            client_key="10.0.0.1",
            actor="anonymous",
        )
    return services.request_opt_out(
        email=email,
        lists=["product_mailings"],
        client_key="10.0.0.1",
        actor="anonymous",
        channel=Ticket.Channel.PORTAL,
    )


@pytest.mark.parametrize("kind", ["modify", "opt-out"])
def test_a_closed_accounts_address_is_mailed_no_link_but_what_it_can_do(alice, kind, settings):
    # given Alice's account is closed
    close_account(alice)

    # when someone names her address without logging in, and the worker looks it up
    ticket = ask(kind, "ALICE@example.test")
    outcomes = anonymous_lookups()

    # then no link goes out: the address on record (never what was typed) is told that nothing
    # changed and where to write; nothing typed is kept, the ticket is on no account
    assert outcomes == ["closed"]
    assert not Verification.objects.filter(ticket=ticket).exists()
    ticket.refresh_from_db()
    assert ticket.customer is None
    assert ticket.anonymous_request.email == ""
    assert ticket.anonymous_request.changes == {}
    assert ticket.anonymous_request.note == ""
    assert not ticket.changes.exists()
    [sent] = deliver_outbox()
    assert sent.to == ["alice@example.test"]
    assert "closed" in sent.subject
    text, html = sent.body, html_part(sent)
    for part in (text, html):
        assert f"{settings.SITE_URL}/requests/new/" in part
        assert "/verify/" not in part
        assert ticket.reference in part
    alice.refresh_from_db()
    assert (alice.city, alice.product_mailings) == ("Kuala Lumpur", True)


@pytest.mark.parametrize(
    ("status", "outcome", "template"),
    [
        (Customer.AccountStatus.SUSPENDED, "link_sent", "verify_request"),
        (Customer.AccountStatus.CLOSED, "closed", "request_account_closed"),
    ],
)
def test_a_frozen_accounts_address_still_gets_its_link_a_closed_ones_the_notice(
    alice, status, outcome, template
):
    # A frozen account's request waits for the freeze to be lifted; a closed one is not reopened.
    Customer.objects.filter(pk=alice.pk).update(account_status=status)

    ticket = ask("modify", alice.email)

    assert anonymous_lookups() == [outcome]
    assert list(ticket.notifications.values_list("template", "recipient")) == [
        (template, "alice@example.test")
    ]


def test_a_closed_accounts_address_gets_no_more_notices_an_hour_than_links(alice, settings):
    # given at most two mails an hour to an address on record for these requests
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_email": (2, 3600)}
    close_account(alice)

    # when it is named five times
    for n in range(5):
        ask("modify" if n % 2 else "opt-out", alice.email)

    # then it got two notices, and the three other requests kept nothing typed either
    assert anonymous_lookups() == ["closed"] * 5
    assert [m.to for m in deliver_outbox()] == [["alice@example.test"]] * 2
    assert not AnonymousRequest.objects.exclude(email="").exists()


def _portal_post(client, kind, email):
    if kind == "modify":
        return client.post("/requests/modify/", {"email_on_record": email, "city": "Ipoh"})
    return client.post("/requests/opt-out/", {"email": email, "lists": ["product_mailings"]})


def _api_post(client, kind, email):
    if kind == "modify":
        body = {"email": email, "changes": {"city": "Ipoh"}}
        return client.post(MODIFY_API, body, format="json")
    return client.post(OPT_OUT_API, {"email": email, "lists": ["product_mailings"]}, format="json")


@pytest.mark.parametrize("kind", ["modify", "opt-out"])
@pytest.mark.parametrize("way", ["portal", "api"])
def test_the_answer_is_the_same_for_an_open_a_closed_and_an_unknown_address(alice, bob, kind, way):
    # given Bob's account is closed, Alice's open
    close_account(bob)
    client = Client() if way == "portal" else APIClient()
    post = _portal_post if way == "portal" else _api_post
    post(client, kind, "warm-up@example.test")  # the session's first save

    # when each address is named, as the requester sees it
    answers = []
    for email in (alice.email, bob.email, "nobody@example.test"):
        with CaptureQueriesContext(connection) as made:
            response = post(client, kind, email)
        body = response.content.decode()
        if way == "portal":
            page = client.get(response["Location"])
            body = page.content.decode()
        answers.append(
            (
                response.status_code,
                comparable(body),
                len(comparable(body)),
                len(made.captured_queries),
            )
        )

    # then the three answers are the same: status, body, length and the work it took
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == (303 if way == "portal" else 202)
