"""What several flows share: the state machine, the version check, input rules, publishing."""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.selectors import email_canonical
from helpdesk.celery import app as celery_app
from helpdesk.exceptions import RateLimited, StaleVersion, TransitionNotAllowed
from helpdesk.ratelimit import rate_limit_client_key, rate_limit_hits
from tickets.audit import Actor, audit_record
from tickets.models import SLA_PAUSED_STATUSES, Message, Ticket
from tickets.selectors.status_page import requester_status
from tickets.services.search import message_create
from tickets.services.stats import ticket_stat_figures, ticket_stats_update
from tickets.tasks import registration_change_process

logger = logging.getLogger(__name__)

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


def acknowledgement_allowed(
    address: str, *, client_key: str | None, sender_authenticated: bool = False
) -> bool:
    """Whether a typed address may get one more "we received your request" email now.

    Counted for every acknowledgement to an address nobody proved theirs (web forms, the API,
    inbound email), so the help desk cannot be made to mail a stranger over and over: per
    address ("ack_per_address"), per its domain from the client that asked ("ack_per_domain"),
    and per domain from every client ("ack_per_domain_all_clients", far higher, counting only
    what the two before let through). So one person typing addresses of a large free-mail domain
    spends their own allowance, not that of everyone there. Past a limit the request goes on
    without one; nothing is refused. The address is counted canonically: its spellings in other
    cases or in fullwidth letters reach the same mailbox.

    Mail has no client address (`client_key` None). Mail whose sender our receiving server
    authenticated (`sender_authenticated`) is its own client, keyed by that address; all other
    mail is one client, "mail", so forged From addresses of a domain share one allowance and
    leave that of the domain's real senders alone.
    """
    canonical = email_canonical(address)
    domain = canonical.rpartition("@")[2]
    if client_key:
        client = rate_limit_client_key(client_key)
    elif sender_authenticated:
        client = f"mail:{canonical}"
    else:
        client = "mail"
    try:
        rate_limit_hits(("ack_per_address", canonical), ("ack_per_domain", f"{domain} {client}"))
        rate_limit_hits(("ack_per_domain_all_clients", domain))
    except RateLimited:
        return False
    return True


def requester_words_mailable(ticket: Ticket, recipient: str) -> bool:
    """Whether an email to `recipient` may carry the requester's own words (subject, quote).

    Only to the email on record of the customer who asked (signed in, or by mail our server
    authenticated as theirs): an address that was typed (on a form without a login, or a
    customer's other address) gets the reference and our own words, so nobody can make the help
    desk carry their text to a stranger.
    """
    customer = ticket.customer
    if customer is None or ticket.customer_by_contact:
        return False
    return email_canonical(recipient) == email_canonical(customer.email)


def ticket_subject_mailable(ticket: Ticket, recipient: str) -> str:
    """The ticket's subject when an email to `recipient` may carry it; "" otherwise.

    A general request's subject is its requester's own words (`requester_words_mailable`
    decides); the other kinds' subjects are ours.
    """
    if ticket.kind != Ticket.Kind.GENERAL or requester_words_mailable(ticket, recipient):
        return ticket.subject
    return ""


TRANSITION_NOT_ALLOWED = gettext_noop("This ticket is {status}; it cannot be moved to {target}.")
STALE_TICKET = gettext_noop(
    "This ticket was changed by someone else since you opened it. Reload and try again."
)
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


def without_nul(text: str) -> str:
    """`text` without NUL characters, which no PostgreSQL text (or JSON) column can hold.

    For what other programs send us (mail, ESP events), which is read rather than refused.
    """
    return text.replace("\x00", "")


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
        reply=ticket.status not in NO_REPLY_STATUSES,
        merge=ticket.kind == Ticket.Kind.GENERAL and ticket.is_open and not ticket.merged_into_id,
    )


def ticket_version_check(
    ticket: Ticket, expected_version: int | None, *, requester: bool = False
) -> None:
    """Refuse (409) a change made against another version than the locked ticket's.

    Every staff path sends the version it read: the pages and bulk always, the API when its
    client gives one (recommended, not required by API v1). A customer (`requester`) read the
    requester's version, and is held to that one: what only staff see changed nothing they read.
    """
    current = ticket.requester_version if requester else ticket.version
    if expected_version is not None and current != expected_version:
        raise StaleVersion(STALE_TICKET, {"version": current})


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
    # A move its requester is not shown (a resolved resend referred once its notice bounced)
    # leaves their "Last update" still: moved, it would tell them what the status hides.
    fields = [
        "status",
        *ticket_version_bump(ticket, shown=requester_status(ticket) != shown_before),
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


# After a publish fails, the request path skips publishing for a few seconds instead of making
# every request wait for the broker's connect timeout; the rows wait in the outbox and the
# sweeps, which always try, queue them once the broker is back. Kept for its figure: a publish
# to an unreachable broker takes 2.0 s (test_worker.py measures 2.0 s for each request without
# this flag; bench/faults.py "redis outage": slowest request 2.0 s with it, see bench/README.md).
BROKER_RETRY_AFTER_SECONDS = 5.0
_broker_down_until = 0.0
# Tasks queued in one round trip to the broker (a sweep may queue hundreds).
PUBLISH_BATCH = 100


def ticket_version_bump(ticket: Ticket, *, shown: bool = True) -> list[str]:
    """Move a ticket's version on for a change; the fields to save with it.

    The version moves with every change, so a form read before it is refused as stale. The
    requester's version and last update move only with a change they are `shown`: one only
    staff see (an internal note, a message held back from the requester) leaves them still.
    """
    ticket.version += 1
    if not shown:
        return ["version", "updated_at"]
    ticket.requester_version += 1
    ticket.requester_updated_at = timezone.now()
    return ["version", "requester_version", "requester_updated_at", "updated_at"]


def ticket_change_save(
    locked: Ticket,
    fields: Sequence[str] = (),
    *,
    actor: Actor,
    action: str,
    details: dict[str, Any],
    shown: bool = True,
) -> None:
    """Save a change to a locked ticket: `fields`, a new version, and the audit row saying why.

    :param shown: whether the requester is shown the change (ticket_version_bump).
    """
    locked.save(update_fields=[*fields, *ticket_version_bump(locked, shown=shown)])
    audit_record(actor=actor, action=action, ticket=locked, details=details)


def ticket_system_note_add(locked: Ticket, *, body: str, actor: Actor) -> Message:
    """An internal note for staff, written by the system on a locked ticket, and audited."""
    message = message_create(
        ticket=locked,
        author=Message.Author.SYSTEM,
        body=body,
        internal=True,
        channel=Ticket.Channel.SYSTEM,
    )
    ticket_change_save(
        locked,
        actor=actor,
        action="ticket.note_added",
        details={"message": message.pk, "author": Message.Author.SYSTEM, "channel": "system"},
        shown=False,
    )
    return message


def tasks_publish(
    messages: list[tuple[Any, dict[str, Any]]], *, what: str, sweep: bool = False
) -> bool:
    """Queue tasks, (task, kwargs) each, in one round trip to the broker where it allows.

    False when they were not queued (the sweep will).
    """
    global _broker_down_until
    if not messages or (not sweep and time.monotonic() < _broker_down_until):
        return False
    try:
        with celery_app.producer_or_acquire() as producer, producer.batch():
            for task, kwargs in messages:
                task.apply_async(kwargs=kwargs, retry=False, producer=producer)
    except Exception as exc:
        _broker_down_until = time.monotonic() + BROKER_RETRY_AFTER_SECONDS
        logger.warning("%s not queued (%s); the sweep will retry", what, exc)
        return False
    return True


def tasks_publish_each(task: Any, ids: list[int], *, key: str, what: str, sweep: bool) -> bool:
    """Queue `task(key=id)` for each of `ids`, as tasks_publish does (`what` names them in logs).

    PUBLISH_BATCH tasks go in one round trip. False when some were not queued (the sweep will).
    """
    queued = bool(ids)
    for start in range(0, len(ids), PUBLISH_BATCH):
        batch = ids[start : start + PUBLISH_BATCH]
        tasks = [(task, {key: pk}) for pk in batch]
        queued = tasks_publish(tasks, what=f"{what} {batch[:5]}", sweep=sweep) and queued
    return queued


def registration_changes_publish(ids: list[int], *, sweep: bool = False) -> bool:
    """Queue the registration change worker for each change; False when some were not queued.

    A broker that cannot be reached loses nothing: the changes stay queued for the sweep
    (registration_changes_requeue_due), and the request that queued them still answers.
    """
    return tasks_publish_each(
        registration_change_process, ids, key="change_id", what="registration changes", sweep=sweep
    )
