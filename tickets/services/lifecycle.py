"""Tickets: creation, the state machine, assignment, and whether a customer may still act."""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.models import Customer
from accounts.selectors import (
    account_is_frozen,
    customer_account_open,
    customer_of_address,
    is_staff_member,
)
from domains.models import Domain
from helpdesk.exceptions import ApplicationError, TransitionNotAllowed
from tickets.audit import Actor, audit_record
from tickets.lock_objects import customer_lock, ticket_lock
from tickets.models import (
    LINKED_BY_CONTACT_KINDS,
    SLA_PAUSED_STATUSES,
    Message,
    Ticket,
)
from tickets.redaction import contains_card_number, redact_card_numbers
from tickets.services.outbox import notification_queue
from tickets.services.requester_mail import ticket_subject_mailable
from tickets.services.search import message_create, ticket_search_documents_update
from tickets.services.stats import ticket_stat_figures, ticket_stats_update
from tickets.services.transitions import (
    NOT_REJECTABLE,
    REJECTABLE_KINDS,
    staff_actor_check,
    ticket_actions,
    ticket_move,
    ticket_needs_owner,
)
from tickets.services.versions import ticket_change_save, ticket_version_check

S = Ticket.Status

PRIORITY_SETTLED = gettext_noop(
    "The priority of a {status} ticket cannot change: its SLA outcome is settled. Reopen it "
    "first if it needs more work."
)
CONTACT_CARD_NUMBER = gettext_noop(
    "This email address holds what looks like a card number, which we never store. Please "
    "give another address."
)


def typed_address_card_refusal(email: str) -> None:
    """Refuse an address typed on a form that holds a card number (ValidationError keyed `email`).

    Whatever is on record: no address on record holds one, and a request keeps what was typed
    (a pending row, an outbox lookup, a task in the broker) until the worker reads it.
    """
    if contains_card_number(email):
        raise ValidationError({"email": [gettext(CONTACT_CARD_NUMBER)]})


ACCOUNT_CLOSED = gettext_noop(
    "This account is closed, so nothing on it can change. If you need help, write to us from "
    "the help page without logging in."
)


def ticket_due_at(*, kind: str, priority: str, start: datetime | None = None) -> datetime:
    """When a ticket of this kind and priority is due under the SLA settings."""
    hours = settings.SLA_HOURS.get(priority, 24)
    hours = min(hours, settings.SLA_HOURS_BY_KIND.get(kind, hours))
    return (start or timezone.now()) + timedelta(hours=hours)


@transaction.atomic(savepoint=False)  # a failure fails the caller's whole action
def ticket_create(
    *,
    kind: str,
    subject: str,
    actor: Actor,
    customer: Customer | None = None,
    domain: Domain | None = None,
    contact_email: str = "",
    requested_domain: str = "",
    body: str = "",
    channel: str = Ticket.Channel.PORTAL,
    priority: str = Ticket.Priority.NORMAL,
    status: str = Ticket.Status.NEW,
    language: str | None = None,
    details: dict[str, Any] | None = None,
    verified_by: str = "",
) -> Ticket:
    """Open a ticket, with its first message and its audit row, in one transaction.

    :param verified_by: how the owner of the email on record was verified when that happened
        with the request itself (their own session); "" when it is still to come.

    A general-help ticket sent without a login from a customer's email on record is linked to
    that customer (`customer_by_contact`), so it is among their tickets for them and for staff;
    not while their account is frozen or closed (`customer_of_address`).
    The link grants nothing the address did not already get: the ticket's replies go to that
    address anyway, and a general-help ticket changes nothing on the record. Its words are not
    shown to the customer until they confirm it (selectors.messages.ticket_opener_unproven).

    Every flow opens its tickets here, so the signature lists all they set.
    """
    if contains_card_number(contact_email):
        # Redacted it would reach no one; kept, the number would be on the audit chain for good.
        raise ApplicationError(gettext(CONTACT_CARD_NUMBER))
    now = timezone.now()
    by_contact = False
    if customer is None and contact_email and kind in LINKED_BY_CONTACT_KINDS:
        customer = customer_of_address(email=contact_email)
        by_contact = customer is not None
    ticket = Ticket(
        kind=kind,
        subject=subject[:200],
        customer=customer,
        customer_by_contact=by_contact,
        domain=domain,
        contact_email=contact_email,
        requested_domain=requested_domain[:253],
        channel=channel,
        priority=priority,
        status=status,
        language=language or (customer.language if customer else "en"),
        due_at=ticket_due_at(kind=kind, priority=priority, start=now),
        sla_paused_at=now if status in SLA_PAUSED_STATUSES else None,
        created_at=now,
        verified_at=now if verified_by else None,
        verified_by=verified_by,
    )
    if status == S.OPEN and ticket_needs_owner(ticket):
        ticket.status = S.AWAITING_VERIFICATION
    # The reference is made here (new_reference, 40 random bits) and its unique index guards
    # it: no query first to ask whether it is taken. The customer and domain are rows read
    # already, and their foreign keys guard them too: asking whether the customer exists would
    # cost a query only when there is one, so a request sent without a login from an address on
    # record (linked above) would take longer than one from any other address.
    # The contact is held to the one rule for addresses (Ticket.contact_email), but for the
    # customer's email on record itself: stored before the rule, it is not refused here.
    on_record = customer is not None and contact_email == customer.email
    exclude = ["reference", "customer", "domain", *(["contact_email"] if on_record else [])]
    ticket.full_clean(exclude=exclude)
    ticket.save(force_insert=True)
    _first_message_add(ticket, body=body, channel=channel)
    audit_record(
        actor=actor,
        action="ticket.created",
        ticket=ticket,
        details={
            "kind": kind,
            "status": ticket.status,
            "channel": channel,
            **({"verified_by": verified_by} if verified_by else {}),
            **({"customer_by_contact": True} if by_contact else {}),
            **(details or {}),
        },
    )
    ticket_stats_update(before={}, ticket=ticket)
    return ticket


def _first_message_add(ticket: Ticket, *, body: str, channel: str) -> None:
    """Store the request's text as its first message (without one, index the subject alone)."""
    if body:
        message_create(ticket=ticket, author=Message.Author.CUSTOMER, body=body, channel=channel)
    else:
        ticket_search_documents_update(ticket_ids=[ticket.pk])


@transaction.atomic
def ticket_transition(
    *,
    ticket: Ticket,
    to: str,
    actor: Actor,
    reason: str = "",
    expected_version: int | None = None,
) -> Ticket:
    """Move a ticket to another status under a row lock (generic; flows add their own effects).

    A customer moving their own ticket (closing it) is refused once their account is frozen or
    closed, read again under its lock before the ticket's.
    """
    return _transition(
        ticket=ticket, to=to, actor=actor, reason=reason, expected_version=expected_version
    )


def _transition(
    *, ticket: Ticket, to: str, actor: Actor, reason: str, expected_version: int | None
) -> Ticket:
    # ticket_transition inside a flow's own transaction: nested, the decorator would add a
    # savepoint (two statements more a ticket; bulk resolve: 200 for 100 tickets) that no flow
    # rolls back to, each failure here failing the flow's whole transaction.
    if isinstance(actor, Customer):
        customer_account_open_locked(actor)
    locked = ticket_lock(pk=ticket.pk)
    ticket_version_check(locked, expected_version, requester=isinstance(actor, Customer))
    return ticket_move(locked, to=to, actor=actor, reason=reason)


def mailed_status_link_context(recipient: str) -> dict[str, Any]:
    """What an email to `recipient` says of its status link (status_link.status_link_context)."""
    # Imported here: the status-link flow builds on this module (its replies are replies).
    from tickets.services.status_link import status_link_context

    return status_link_context(recipient=recipient)


def _status_notice(ticket: Ticket, *, template: str, extra: dict[str, Any] | None = None) -> None:
    if ticket.contact_email:
        notification_queue(
            ticket=ticket,
            template=template,
            recipient=ticket.contact_email,
            context={
                "subject": ticket_subject_mailable(ticket, ticket.contact_email),
                "status": ticket.status,
                **(extra or {}),
                **mailed_status_link_context(ticket.contact_email),
            },
        )


@transaction.atomic
def ticket_resolve(
    *, ticket: Ticket, actor: Actor, note: str = "", expected_version: int | None = None
) -> Ticket:
    """Mark a ticket resolved and tell the requester."""
    staff_actor_check(actor)
    # Into the audit chain and an email: a card number pasted into the note goes in neither.
    note, _card_found = redact_card_numbers(note)
    locked = _transition(
        ticket=ticket, to=S.RESOLVED, actor=actor, reason=note, expected_version=expected_version
    )
    # Imported here: the satisfaction flow reads links through the status page's selector.
    from tickets.services.satisfaction import satisfaction_links

    extra: dict[str, Any] = {"note": note}
    if customer_account_open(locked.customer):
        # A frozen or closed account's requester could not answer (satisfaction_record).
        extra.update(satisfaction_links(ticket=locked, recipient=locked.contact_email))
    _status_notice(locked, template="ticket_resolved", extra=extra)
    return locked


def ticket_close(*, ticket: Ticket, actor: Actor, expected_version: int | None = None) -> Ticket:
    """Close a ticket for good."""
    return ticket_transition(
        ticket=ticket, to=S.CLOSED, actor=actor, expected_version=expected_version
    )


@transaction.atomic
def ticket_reject(
    *, ticket: Ticket, actor: Actor, reason: str, expected_version: int | None = None
) -> Ticket:
    """Refuse a request, telling the requester why (a card number in the reason is redacted)."""
    staff_actor_check(actor)
    reason, _card_found = redact_card_numbers(reason)
    if not reason.strip():
        raise ApplicationError(
            gettext("Give the reason for the rejection; the requester will read it.")
        )
    locked = ticket_lock(pk=ticket.pk)
    ticket_version_check(locked, expected_version)
    if locked.kind not in REJECTABLE_KINDS:
        raise TransitionNotAllowed(gettext(NOT_REJECTABLE), {"kind": locked.kind})
    ticket_move(locked, to=S.REJECTED, actor=actor, reason=reason)
    _status_notice(locked, template="ticket_rejected", extra={"reason": reason})
    return locked


def ticket_reopen(*, ticket: Ticket, actor: Actor, expected_version: int | None = None) -> Ticket:
    """Put a resolved or referred ticket back in the queue."""
    staff_actor_check(actor)
    return ticket_transition(
        ticket=ticket, to=S.OPEN, actor=actor, expected_version=expected_version
    )


@transaction.atomic
def ticket_assign(
    *,
    ticket: Ticket,
    assignee: User | None,
    actor: Actor,
    expected_version: int | None = None,
) -> Ticket:
    """Give a ticket to a staff member (or nobody)."""
    staff_actor_check(actor)
    if assignee is not None and not is_staff_member(assignee):
        raise ApplicationError(gettext("Tickets can only be assigned to staff."))
    locked = ticket_lock(pk=ticket.pk)
    ticket_version_check(locked, expected_version)
    if not locked.is_open:
        raise TransitionNotAllowed(
            gettext("A {status} ticket cannot be assigned.").format(
                status=S(locked.status).label.lower()
            )
        )
    old = locked.assignee.get_username() if locked.assignee else None
    locked.assignee = assignee
    ticket_change_save(
        locked,
        ["assignee"],
        actor=actor,
        action="ticket.assigned",
        details={"from": old, "to": assignee.get_username() if assignee else None},
    )
    return locked


@transaction.atomic
def ticket_priority_set(
    *, ticket: Ticket, priority: str, actor: Actor, expected_version: int | None = None
) -> Ticket:
    """Change an open ticket's priority; the SLA due time follows.

    A ticket out of the queue (resolved, closed, rejected, referred, expired) keeps its
    priority: its due time decided whether it met its SLA, and a later change would rewrite
    that outcome, in the past, on the dashboard. Reopening it brings it back to the queue first.
    """
    staff_actor_check(actor)
    if priority not in Ticket.Priority.values:
        raise ApplicationError(gettext("Unknown priority {priority}.").format(priority=priority))
    locked = ticket_lock(pk=ticket.pk)
    ticket_version_check(locked, expected_version)
    if not ticket_actions(locked).priority:
        raise TransitionNotAllowed(
            gettext(PRIORITY_SETTLED).format(status=S(locked.status).label.lower()),
            {"status": locked.status},
        )
    old = locked.priority
    figures = ticket_stat_figures(locked)
    locked.priority = priority
    locked.due_at = (
        ticket_due_at(kind=locked.kind, priority=priority, start=locked.created_at)
        + locked.sla_paused_total
    )
    ticket_change_save(
        locked,
        ["priority", "due_at"],
        actor=actor,
        action="ticket.priority_changed",
        details={"from": old, "to": priority},
    )
    ticket_stats_update(before=figures, ticket=locked)
    return locked


class AccountLockedOut(TransitionNotAllowed):
    """The customer account is frozen or closed: nothing on its customer side may act.

    `closed`: which of the two, for a page that offers the next step (frozen: a supervisor
    lifts the freeze; closed: write to us without logging in).
    """

    def __init__(self, message: str, *, closed: bool = False) -> None:
        super().__init__(message)
        self.closed = closed


def customer_account_open_locked(customer: Customer) -> None:
    """Refuse a customer's own session or API token once their account is frozen or closed.

    Their sign-in was checked when the request began; a freeze or a closure may have committed
    since. The account is read again under its lock (before the ticket's, the order of
    tickets.lock_objects), by the rule sign-in uses, so a request in flight when either commits
    writes nothing; the refusal (AccountLockedOut) names which it was.
    """
    account_open_locked(customer.pk)


def requester_account_open_locked(ticket: Ticket) -> None:
    """Refuse (AccountLockedOut) what is written as `ticket`'s requester without a session.

    A status link's holder and inbound mail act for the ticket's customer: while that account
    is frozen or closed they act no more than its own session would. Locks the customer.
    """
    if ticket.customer_id is not None:
        account_open_locked(ticket.customer_id)


def account_locked_out_refusal(customer: Customer) -> AccountLockedOut | None:
    """Why nothing may act on `customer`'s side (frozen, or closed); None while it is open."""
    # The freeze module imports this one.
    from tickets.services.freeze import ACCOUNT_FROZEN

    if customer_account_open(customer):
        return None
    if account_is_frozen(customer):
        return AccountLockedOut(ACCOUNT_FROZEN, closed=False)
    return AccountLockedOut(ACCOUNT_CLOSED, closed=True)


def account_open_locked(customer_id: int) -> None:
    """Lock customer `customer_id`; refuse (AccountLockedOut) while it is frozen or closed."""
    refusal = account_locked_out_refusal(customer_lock(pk=customer_id))
    if refusal is not None:
        raise refusal
