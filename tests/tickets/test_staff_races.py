"""Two staff actions on one ticket at the same moment, each on a connection of its own.

Each pair ends in one consistent state: one of the two goes through (or both, where both
may), the other is a clear refusal, each action that went through is on the audit chain once,
and the chain verifies.
"""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import close_old_connections, connection

from helpdesk.exceptions import ApplicationError
from tests.markers import postgresql_only
from tests.tickets.verification_helpers import (
    anonymous_change,
    link_token,
    owner_request,
    verification_mail,
)
from tickets import services
from tickets.audit import audit_verify
from tickets.models import ActionLog, FieldChange, Ticket

pytestmark = [
    pytest.mark.django_db(transaction=True),
    postgresql_only("two transactions at once on one ticket"),
]

S = Ticket.Status


def at_once(*actions: Callable[[], Any]) -> list[Any]:
    """Run the actions in threads released together; each one's result or exception."""
    start = threading.Barrier(len(actions), timeout=10)
    outcomes: list[Any] = [None] * len(actions)

    def run(index: int) -> None:
        close_old_connections()
        try:
            start.wait()
            outcomes[index] = actions[index]()
        except Exception as exc:
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def refusals(outcomes: list[Any]) -> list[Exception]:
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert all(isinstance(e, ApplicationError) for e in errors), errors
    return errors


def question_of(customer, subject: str = "Where is my invoice?") -> Ticket:
    """A general-help question the customer asked on the portal (on the audit chain)."""
    return services.request_general(
        subject=subject,
        body="I cannot find it.",
        contact_email=customer.email,
        actor=customer,
        customer=customer,
    )


def audited(ticket: Ticket, action: str) -> int:
    return ActionLog.objects.filter(ticket=ticket, action=action).count()


def test_two_supervisors_approving_one_change_apply_it_once(alice, supervisor, django_user_model):
    # given a verified name change waiting for a supervisor, and a second supervisor
    ticket = owner_request(alice, {"full_name": "Alice Lim"})
    other = django_user_model.objects.create_user("supervisor2", password="x")
    other.groups.set(supervisor.groups.all())

    # when both approve it at the same moment
    outcomes = at_once(
        lambda: services.ticket_approve(ticket=ticket, actor=supervisor),
        lambda: services.ticket_approve(ticket=ticket, actor=other),
    )

    # then it is applied once, the other approval is refused, and the chain says so once
    assert len(refusals(outcomes)) == 1
    alice.refresh_from_db()
    assert alice.full_name == "Alice Lim"
    assert FieldChange.objects.get(ticket=ticket).applied_at is not None
    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED
    assert audited(ticket, "ticket.status_changed") == 1
    assert audit_verify().ok


def test_an_approval_and_a_resolve_at_once_leave_one_outcome(alice, supervisor, agent):
    ticket = owner_request(alice, {"full_name": "Alice Lim"})

    outcomes = at_once(
        lambda: services.ticket_approve(ticket=ticket, actor=supervisor),
        lambda: services.ticket_resolve(ticket=ticket, actor=agent, note="done"),
    )

    # then exactly one moved it to resolved; the change was applied only if the approval won
    assert len(refusals(outcomes)) == 1
    ticket.refresh_from_db()
    alice.refresh_from_db()
    approved = not isinstance(outcomes[0], Exception)
    assert ticket.status == S.RESOLVED
    assert (alice.full_name == "Alice Lim") is approved
    assert (FieldChange.objects.get(ticket=ticket).applied_at is not None) is approved
    assert audit_verify().ok


def test_a_merge_into_a_change_request_while_it_is_approved_is_consistent(alice, supervisor, agent):
    # given Alice's change request and a question of hers to merge into it
    ticket = owner_request(alice, {"full_name": "Alice Lim"})
    question = question_of(alice)

    outcomes = at_once(
        lambda: services.ticket_approve(ticket=ticket, actor=supervisor),
        lambda: services.ticket_merge(ticket=question, into=ticket, actor=agent),
    )

    # then the approval always goes through; the merge only if it came first
    assert not isinstance(outcomes[0], Exception), outcomes
    refusals(outcomes)
    alice.refresh_from_db()
    assert alice.full_name == "Alice Lim"
    question.refresh_from_db()
    merged = not isinstance(outcomes[1], Exception)
    assert (question.merged_into_id == ticket.pk) is merged
    assert question.status == (S.CLOSED if merged else S.OPEN)
    assert audited(question, "ticket.merged") == int(merged)
    assert audit_verify().ok


def test_a_bulk_resolve_while_the_same_ticket_is_merged_is_consistent(alice, agent, supervisor):
    question = question_of(alice)
    survivor = question_of(alice, "And my receipt?")

    outcomes = at_once(
        lambda: services.ticket_resolve(ticket=question, actor=supervisor, note=""),
        lambda: services.ticket_merge(ticket=question, into=survivor, actor=agent),
    )

    # then one of the two acted: resolved and not merged, or merged and closed
    assert len(refusals(outcomes)) == 1
    question.refresh_from_db()
    if isinstance(outcomes[1], Exception):
        assert (question.status, question.merged_into_id) == (S.RESOLVED, None)
    else:
        assert (question.status, question.merged_into_id) == (S.CLOSED, survivor.pk)
    assert audit_verify().ok


def test_a_resolve_and_a_reopen_at_once_leave_one_status(alice, agent, supervisor):
    ticket = services.ticket_resolve(ticket=question_of(alice), actor=agent)

    outcomes = at_once(
        lambda: services.ticket_reopen(ticket=ticket, actor=agent),
        lambda: services.ticket_resolve(ticket=ticket, actor=supervisor, note=""),
    )

    # then each action that went through is one move on the chain, after the first resolve
    ticket.refresh_from_db()
    moves = ActionLog.objects.filter(ticket=ticket, action="ticket.status_changed")
    assert moves.count() == 1 + len(outcomes) - len(refusals(outcomes))
    assert ticket.status in (S.OPEN, S.RESOLVED)
    assert audit_verify().ok


def test_an_approval_while_the_customer_replies_keeps_both(alice, supervisor):
    ticket = owner_request(alice, {"full_name": "Alice Lim"})

    outcomes = at_once(
        lambda: services.ticket_approve(ticket=ticket, actor=supervisor),
        lambda: services.ticket_reply_add(
            ticket=ticket,
            body="Please also use my middle name",
            actor=alice,
            author="customer",
            channel=Ticket.Channel.PORTAL,
            author_user=alice.user,
        ),
    )

    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    ticket.refresh_from_db()
    alice.refresh_from_db()
    assert alice.full_name == "Alice Lim"
    assert ticket.messages.filter(body="Please also use my middle name").exists()
    assert audit_verify().ok


def test_an_approval_while_the_customer_closes_the_request_leaves_one_outcome(alice, supervisor):
    ticket = owner_request(alice, {"full_name": "Alice Lim"})

    outcomes = at_once(
        lambda: services.ticket_approve(ticket=ticket, actor=supervisor),
        lambda: services.ticket_close(ticket=ticket, actor=alice, expected_version=ticket.version),
    )

    # then the change is applied only if the approval came first, and the record says which
    ticket.refresh_from_db()
    alice.refresh_from_db()
    approved = not isinstance(outcomes[0], Exception)
    refusals(outcomes)
    assert (alice.full_name == "Alice Lim") is approved
    assert (FieldChange.objects.get(ticket=ticket).applied_at is not None) is approved
    assert ticket.status == (S.RESOLVED if approved else S.CLOSED)
    assert audit_verify().ok


def test_the_owners_confirmation_while_staff_reject_the_request_leaves_one_outcome(
    alice, supervisor, settings
):
    # given a name change asked for without logging in, its link mailed to Alice
    settings.MODIFY_AUTO_APPLY_LOW_RISK = True
    ticket = anonymous_change(alice.email, {"phone": "+60 12-999 0000"}, client_key="10.0.0.7")
    token = link_token(verification_mail(ticket))

    # when she confirms it while a supervisor rejects it
    outcomes = at_once(
        lambda: services.verification_confirm(
            token=token, client_key="10.0.0.8", actor="anonymous"
        ),
        lambda: services.ticket_reject(ticket=ticket, actor=supervisor, reason="Looks forged"),
    )

    # then either the rejection stands and nothing was applied, or the confirmation came first
    # and the change with it; never a rejected request whose change was applied
    refusals(outcomes)
    confirmed = not isinstance(outcomes[0], Exception)
    ticket.refresh_from_db()
    alice.refresh_from_db()
    applied = FieldChange.objects.get(ticket=ticket).applied_at is not None
    assert (alice.phone == "+60129990000") is applied
    assert not (ticket.status == S.REJECTED and applied)
    assert confirmed or not applied
    assert audit_verify().ok
