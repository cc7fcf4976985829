"""Requests in flight when a freeze commits: each waits on the freeze's locks and writes nothing.

The request passed its checks before the freeze committed (its sign-in, its link); it reaches
the rows the freeze holds, waits, and must read the account and the link again once it may go.
"""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from accounts.models import Customer
from helpdesk.exceptions import TransitionNotAllowed
from tests.factories import TicketFactory
from tests.markers import postgresql_only
from tests.tickets.test_freeze import NEW_EMAIL, email_change_applied, freeze_token
from tests.tickets.test_lock_order import Background, background, wait_until_blocked
from tickets import services
from tickets.models import Message, Satisfaction, Ticket
from tickets.services import freeze as services_freeze
from tickets.services.freeze import ACCOUNT_FROZEN
from tickets.services.satisfaction import satisfaction_links, satisfaction_record

pytestmark = [
    pytest.mark.django_db(transaction=True),
    postgresql_only("a request that waits on the freeze's row locks"),
]

__all__ = ["background"]  # the fixture, used here by name


def freeze_holding_its_locks_until(
    request: Callable[[], Any],
    ticket: Ticket,
    monkeypatch: pytest.MonkeyPatch,
    background: Callable[[Callable[[], Any]], Background],
) -> Background:
    """Freeze the account; `request` starts while the freeze holds its rows, not yet committed.

    The freeze goes on (and commits) once `request` waits on one of its locks. Returns the
    request's flow, to finish.
    """
    revoke = services_freeze._credentials_revoke
    flows: list[Background] = []

    def revoke_once_the_request_waits(customer: Customer) -> dict[str, int]:
        # The account is suspended and the links ended here, none of it committed yet.
        flows.append(background(request))
        # Looked for from a connection of its own: this transaction's view of the server's
        # activity stays as it first read it.
        background(wait_until_blocked).finish()
        return revoke(customer)

    monkeypatch.setattr(services_freeze, "_credentials_revoke", revoke_once_the_request_waits)
    token = freeze_token(ticket)
    background(
        lambda: services_freeze.account_freeze(
            token=token, client_key="10.0.0.9", actor="anonymous"
        )
    ).finish()
    [flow] = flows
    flow.thread.join(30)
    return flow


def refused_as_frozen(flow: Background) -> None:
    """The flow was refused (409) as every change to a frozen account is."""
    error = flow.outcome.get("error")
    assert isinstance(error, TransitionNotAllowed), flow.outcome
    assert error.message == ACCOUNT_FROZEN


def test_a_satisfaction_answer_in_flight_when_the_freeze_commits_is_refused(
    alice, supervisor, monkeypatch, background
):
    # given an applied email change, and a satisfaction link mailed to the new address
    ticket = email_change_applied(alice, supervisor)
    with transaction.atomic():
        url = satisfaction_links(ticket=ticket, recipient=NEW_EMAIL)["satisfaction_yes"]
    token = url.rstrip("/").split("/")[-2]

    # when its holder answers while the old address's freeze is being written
    flow = freeze_holding_its_locks_until(
        lambda: satisfaction_record(
            token=token, answer="yes", comment="all fine", client_key="10.0.0.8"
        ),
        ticket,
        monkeypatch,
        background,
    )

    # then the answer is refused as every requester's write on a frozen account is (its link
    # ended too), and nothing of it was kept
    refused_as_frozen(flow)
    assert not Satisfaction.objects.filter(ticket=ticket).exists()


def test_a_customers_reply_in_flight_when_the_freeze_commits_is_refused(
    alice, supervisor, monkeypatch, background
):
    # given an applied email change; the new address's holder is signed in (portal or API)
    ticket = email_change_applied(alice, supervisor)
    signed_in = Customer.objects.get(pk=alice.pk)  # as the request loaded it: not frozen

    # when they reply while the old address's freeze is being written
    flow = freeze_holding_its_locks_until(
        lambda: services.ticket_reply_add(
            ticket=Ticket.objects.get(pk=ticket.pk),
            body="I am Alice",
            actor=signed_in,
            author=Message.Author.CUSTOMER,
            channel=Ticket.Channel.API,
            author_user=signed_in.user,
        ),
        ticket,
        monkeypatch,
        background,
    )

    # then the reply is refused as every change to a frozen account is, and nothing was written
    refused_as_frozen(flow)
    assert not Message.objects.filter(ticket=ticket, body="I am Alice").exists()


def test_a_customers_close_in_flight_when_the_freeze_commits_is_refused(
    alice, supervisor, monkeypatch, background
):
    # given an applied email change, and another of Alice's tickets, resolved
    ticket = email_change_applied(alice, supervisor)
    resolved = TicketFactory(customer=alice, status=Ticket.Status.RESOLVED)
    signed_in = Customer.objects.get(pk=alice.pk)  # as the request loaded it: not frozen

    # when the new address's holder closes it while the old address's freeze is being written
    flow = freeze_holding_its_locks_until(
        lambda: services.ticket_close(
            ticket=Ticket.objects.get(pk=resolved.pk),
            actor=signed_in,
            expected_version=resolved.version,
        ),
        ticket,
        monkeypatch,
        background,
    )

    # then the close is refused as every change to a frozen account is, and it stays resolved
    refused_as_frozen(flow)
    resolved.refresh_from_db()
    assert resolved.status == Ticket.Status.RESOLVED


def test_a_customers_general_request_in_flight_when_the_freeze_commits_is_refused(
    alice, supervisor, monkeypatch, background
):
    # given an applied email change; the new address's holder is signed in on the portal
    ticket = email_change_applied(alice, supervisor)
    signed_in = Customer.objects.get(pk=alice.pk)

    # when they ask a question while the old address's freeze is being written
    flow = freeze_holding_its_locks_until(
        lambda: services.request_general(
            subject="Move my domains",
            body="Please move all my domains to my new address.",
            contact_email=NEW_EMAIL,
            actor=signed_in,
            customer=signed_in,
        ),
        ticket,
        monkeypatch,
        background,
    )

    # then it is refused, and no ticket was opened
    refused_as_frozen(flow)
    assert not Ticket.objects.filter(subject="Move my domains").exists()


def test_a_password_resend_in_flight_when_the_freeze_commits_is_referred_not_sent(
    alice, supervisor, monkeypatch, background, fake_opensrs, alice_shop
):
    # given an applied email change, and a password reset asked for Alice's domain
    ticket = email_change_applied(alice, supervisor)
    response = APIClient().post(
        "/api/v1/requests/password-resend/", {"domain": alice_shop.name}, format="json"
    )
    resend = Ticket.objects.get(reference=response.json()["reference"])

    # when the worker does it while the old address's freeze is being written
    flow = freeze_holding_its_locks_until(
        lambda: services.password_resend_process(ticket_id=resend.pk),
        ticket,
        monkeypatch,
        background,
    )

    # then it read the account once the freeze committed: referred to staff, nothing sent
    assert flow.outcome == {"result": "referred"}
    assert not [c for c in fake_opensrs.calls if c["action"] == "SEND_PASSWORD"]
    assert fake_opensrs.sent_mail == []
    resend.refresh_from_db()
    assert resend.status == Ticket.Status.REFERRED
