"""The ticket life of DESIGN.md: which status may follow which, and moving a locked ticket.

`ticket_move` is the one way a status changes: it checks TRANSITIONS, keeps the SLA clock and the
dates in step, and writes the audit row; `ticket_actions` says what the pages may offer.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.models import Customer
from accounts.selectors import is_staff_member
from helpdesk.exceptions import StaffForbidden, TransitionNotAllowed
from tickets.audit import Actor, audit_record
from tickets.models import SLA_PAUSED_STATUSES, Ticket
from tickets.selectors.status_page import requester_status
from tickets.services.stats import ticket_stat_figures, ticket_stats_update
from tickets.services.versions import ticket_version_bump

S = Ticket.Status

# The ticket life of DESIGN.md: status -> statuses it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.AWAITING_VERIFICATION, S.OPEN, S.RESOLVED, S.REFERRED, S.REJECTED}),
    S.AWAITING_VERIFICATION: frozenset({S.OPEN, S.EXPIRED, S.RESOLVED, S.REFERRED, S.REJECTED}),
    S.OPEN: frozenset({S.RESOLVED, S.AWAITING_CUSTOMER, S.REJECTED, S.REFERRED}),
    S.AWAITING_CUSTOMER: frozenset(
        {S.OPEN, S.RESOLVED, S.REJECTED, S.CLOSED, S.AWAITING_VERIFICATION}
    ),
    S.RESOLVED: frozenset({S.CLOSED, S.OPEN, S.REFERRED, S.AWAITING_VERIFICATION}),
    S.REFERRED: frozenset({S.CLOSED, S.OPEN, S.AWAITING_VERIFICATION}),
    S.REJECTED: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
    S.EXPIRED: frozenset(),
}

TRANSITION_NOT_ALLOWED = gettext_noop("This ticket is {status}; it cannot be moved to {target}.")
OWNER_NOT_VERIFIED = gettext_noop(
    "The owner of the email on record has not confirmed this request; it cannot be opened or "
    "applied until they do."
)
# Only a request asks for something that can be refused; a general question or an opt-out is
# answered and resolved or closed, never rejected.
REJECTABLE_KINDS = frozenset({Ticket.Kind.MODIFY_INFO, Ticket.Kind.RESEND_PASSWORD})
NOT_REJECTABLE = gettext_noop(
    "Only change and password requests can be rejected; resolve or close this ticket instead."
)
# A ticket in one of these takes internal notes only; the requester opens a new request.
NO_REPLY_STATUSES = frozenset({S.CLOSED, S.EXPIRED, S.REJECTED})
# A requester's reply puts a ticket in one of these back in the queue. Referred with resolved:
# a resend's requester sees the two alike (tickets.selectors.status_page.requester_status).
REOPENED_BY_REPLY = frozenset({S.AWAITING_CUSTOMER, S.RESOLVED, S.REFERRED})


def ticket_needs_owner(ticket: Ticket) -> bool:
    """Whether the ticket asks to change a customer's record and its owner has not verified it.

    Such a ticket is never open: whichever path would open it (staff reopen, a reply by mail,
    the API) puts it back to awaiting verification, where only the owner's link moves it on.
    """
    return ticket.kind == Ticket.Kind.MODIFY_INFO and ticket.verified_at is None


@dataclass(frozen=True)
class TicketActions:
    """The status actions a ticket's state allows now, from TRANSITIONS.

    The staff page and the portal show a button only for these; the services refuse the rest
    (reopen aside, whose move to open is also allowed from the waiting statuses).
    """

    resolve: bool
    reject: bool
    reopen: bool
    close: bool
    assign: bool
    priority: bool  # out of the queue, the SLA outcome is settled (ticket_priority_set)
    reply: bool  # the requester's (staff notes are always possible)
    merge: bool  # into another ticket, as a duplicate


def ticket_actions(ticket: Ticket) -> TicketActions:
    """What can be done to `ticket` now, by its kind and status."""
    allowed = TRANSITIONS[ticket.status]
    return TicketActions(
        resolve=S.RESOLVED in allowed,
        reject=S.REJECTED in allowed and ticket.kind in REJECTABLE_KINDS,
        reopen=not ticket.is_open and S.OPEN in allowed,
        close=S.CLOSED in allowed,
        assign=ticket.is_open,
        priority=ticket.is_open,
        reply=ticket.status not in NO_REPLY_STATUSES,
        merge=ticket.kind == Ticket.Kind.GENERAL and ticket.is_open and not ticket.merged_into_id,
    )


def _sla_clock(ticket: Ticket, *, to: str, now: datetime) -> dict[str, Any]:
    """Stop the SLA clock on entering a waiting status, restart it on leaving one.

    Restarting moves due_at on by the pause, so the time the ticket waited on someone else never
    counts against the team. Returns what changed, for the audit row ({} when nothing did).
    """
    if to in SLA_PAUSED_STATUSES and ticket.sla_paused_at is None:
        ticket.sla_paused_at = now
        return {"sla": "paused"}
    if to not in SLA_PAUSED_STATUSES and ticket.sla_paused_at is not None:
        paused = max(now - ticket.sla_paused_at, timedelta(0))
        ticket.sla_paused_at = None
        ticket.sla_paused_total += paused
        if ticket.due_at is not None:
            ticket.due_at += paused
        return {"sla": "resumed", "sla_paused_seconds": int(paused.total_seconds())}
    return {}


def ticket_move(
    ticket: Ticket,
    *,
    to: str,
    actor: Actor,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> Ticket:
    """Move a locked ticket to `to`, or raise TransitionNotAllowed; writes the audit row.

    A change request its owner has not verified is never opened: it goes back to awaiting
    verification instead, and the audit row says which status was asked for.
    """
    old = ticket.status
    if to == S.OPEN and ticket_needs_owner(ticket):
        if old == S.AWAITING_VERIFICATION:
            raise TransitionNotAllowed(OWNER_NOT_VERIFIED, {"status": old, "target": to})
        details = {**(details or {}), "asked_for": S.OPEN}
        to = S.AWAITING_VERIFICATION
    if to not in TRANSITIONS[old]:
        raise TransitionNotAllowed(
            gettext(TRANSITION_NOT_ALLOWED).format(status=S(old).label, target=S(to).label),
            {"status": old, "target": to},
        )
    now = timezone.now()
    figures = ticket_stat_figures(ticket)
    shown_before = requester_status(ticket)
    ticket.status = to
    # A move the status page does not show (a resolved resend referred once its notice
    # bounced) leaves its "Last update" still: moved, it would tell whoever typed the contact
    # address what the status hides. The customer's pages and the API show the status itself.
    fields = [
        "status",
        *ticket_version_bump(ticket, dated=requester_status(ticket) != shown_before),
    ]
    if to == S.RESOLVED:
        ticket.resolved_at = now
        fields.append("resolved_at")
    if to == S.CLOSED:
        ticket.closed_at = now
        fields.append("closed_at")
    if to in (S.OPEN, S.AWAITING_VERIFICATION) and old in (S.RESOLVED, S.REFERRED):
        ticket.resolved_at = None
        fields.append("resolved_at")
    sla = _sla_clock(ticket, to=to, now=now)
    if sla:
        fields += ["sla_paused_at", "sla_paused_total", "due_at"]
    ticket.save(update_fields=fields)
    audit_record(
        actor=actor,
        action="ticket.status_changed",
        ticket=ticket,
        details={
            "from": old,
            "to": to,
            **({"reason": reason} if reason else {}),
            **sla,
            **(details or {}),
        },
    )
    ticket_stats_update(before=figures, ticket=ticket)
    return ticket


STAFF_ONLY = gettext_noop("Only staff can do this to a ticket.")


def staff_actor_check(actor: Actor) -> None:
    """Refuse a staff-only action to a customer, or to a login not in a staff role (403).

    The staff pages and the API check the role before they call; this holds on any other path
    (a command, the admin, a view yet to come). A text actor is the system's own ("worker").
    """
    if (
        actor is None
        or isinstance(actor, Customer)
        or (not isinstance(actor, str) and not is_staff_member(actor))
    ):
        raise StaffForbidden(gettext(STAFF_ONLY))
