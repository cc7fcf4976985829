"""Reads for a ticket's status page: the link behind a token, and the timeline in plain words."""

from datetime import datetime
from typing import Any

from django.db.models import Prefetch
from django.utils import timezone

from accounts.selectors import customer_account_open, email_canonical
from tickets.models import Attachment, Message, Ticket, Verification
from tickets.selectors.messages import message_shown_to_requester
from tickets.tokens import token_hash_if_wellformed

S = Ticket.Status

# Kinds whose anonymous requests wait for the owner's confirmation by email.
_CONFIRMED_KINDS = frozenset({Ticket.Kind.MODIFY_INFO, Ticket.Kind.OPT_OUT})
_FINISHED = frozenset({S.RESOLVED, S.CLOSED, S.REJECTED, S.REFERRED, S.EXPIRED})


def status_link_find(
    *, token: str, purpose: str = Verification.Purpose.STATUS
) -> tuple[str, Verification | None]:
    """What a status-page token is: ("live", row), ("expired", row) or ("unknown", None).

    Reads only; `purpose` names the reusable link kind looked for (a satisfaction link is read
    the same way). An expired link's row is returned so the page can offer a new one for the same
    reference.
    """
    digest = token_hash_if_wellformed(token)
    if digest is None:
        return "unknown", None
    verification = (
        Verification.objects.select_related("ticket", "ticket__customer")
        .filter(token_hash=digest, purpose=purpose)
        .first()
    )
    if verification is None:
        return "unknown", None
    if verification.expires_at <= timezone.now():
        return "expired", verification
    if not ticket_address_matching(verification.ticket, verification.sent_to):
        # The ticket no longer writes to the address the link was mailed to (its replies
        # followed an email change): whoever reads that mailbox now reads the ticket no more.
        return "unknown", None
    return "live", verification


def ticket_address_matching(ticket: Ticket, email: str) -> str:
    """The address stored on the ticket that `email` is (canonically), or "".

    The addresses a ticket writes to: its contact's and its customer's email on record. A
    status link is mailed only to one of them, and works only while it still is one. While the
    ticket's customer account is frozen or closed, its email on record only: the freeze took
    the reported addresses back from the open tickets alone, and a resolved or closed one may
    still write to one of them; a closed account has left, and what was typed on its tickets
    (by its owner, or by whoever held its login) reads them no more.
    """
    typed = email_canonical(email)
    if not typed:
        return ""
    customer = ticket.customer
    if customer is not None and not customer_account_open(customer):
        held = [customer.email]
    else:
        held = [ticket.contact_email, customer.email if customer else ""]
    for stored in held:
        if stored and email_canonical(stored) == typed:
            return stored  # mail goes to what we hold, never to what was typed
    return ""


def requester_status(ticket: Ticket) -> str:
    """The status a ticket's status page shows: a resend referred to OpenSRS reads as resolved.

    A resend is referred only for a domain of ours whose registration address cannot be used
    (it bounces, there is none, or its account is frozen); one for a domain not ours is
    resolved. Whoever typed the contact address must not tell the two apart: that would name
    our domains open to takeover. Their acknowledgement already gave the direct-request route.
    """
    if ticket.kind == Ticket.Kind.RESEND_PASSWORD and ticket.status == S.REFERRED:
        return S.RESOLVED
    return ticket.status


def status_page_ticket(*, verification: Verification) -> Ticket:
    """The ticket a live status link opens, with its public messages only, to be shown.

    Its status is the one its requester is shown (`requester_status`); it is never saved.
    """
    ticket = (
        Ticket.objects.select_related("customer", "domain")
        .prefetch_related(
            "changes",
            Prefetch(
                "messages",
                queryset=Message.objects.filter(message_shown_to_requester()).prefetch_related(
                    # Listed by name, type and size: the bytes only on download.
                    Prefetch("attachments", queryset=Attachment.objects.defer("content"))
                ),
            ),
        )
        .get(pk=verification.ticket_id)
    )
    ticket.status = requester_status(ticket)
    return ticket


def status_page_attachment_get(*, token: str, attachment_id: int) -> Attachment | None:
    """A clean attachment on a public message of the ticket a live status link follows."""
    state, verification = status_link_find(token=token)
    if state != "live" or verification is None:
        return None
    return Attachment.objects.filter(
        message_shown_to_requester("message__"),
        pk=attachment_id,
        scan_status=Attachment.ScanStatus.CLEAN,
        message__ticket_id=verification.ticket_id,
    ).first()


def _step(key: str, state: str, at: datetime | None = None) -> dict[str, Any]:
    return {"key": key, "state": state, "at": at}


def ticket_timeline(*, ticket: Ticket) -> list[dict[str, Any]]:
    """The steps of a ticket as its requester sees them: received, confirmed, with us, done.

    Each step is `{"key", "state", "at"}`, state `done`, `current` or `todo`; the confirmation
    step appears only for requests that wait for the owner's email.
    """
    status = ticket.status
    steps = [_step("received", "done", ticket.created_at)]
    if ticket.verified_at or status == S.AWAITING_VERIFICATION or ticket.kind in _CONFIRMED_KINDS:
        if ticket.verified_at:
            steps.append(_step("confirmed", "done", ticket.verified_at))
        elif status == S.AWAITING_VERIFICATION:
            steps.append(_step("confirmed", "current"))
        elif status == S.EXPIRED:
            steps.append(_step("not_confirmed", "done"))
        else:
            steps.append(_step("confirmed", "todo"))
    finished = status in _FINISHED
    if status == S.AWAITING_CUSTOMER:
        steps.append(_step("waiting_for_you", "current"))
    elif status in (S.NEW, S.OPEN):
        steps.append(_step("with_us", "current"))
    else:
        steps.append(_step("with_us", "done" if finished else "todo"))
    if finished:
        at = ticket.resolved_at or ticket.closed_at or ticket.requester_updated_at
        steps.append(_step(f"done_{status}", "done", at))
    else:
        steps.append(_step("done", "todo"))
    return steps


def ticket_expected_reply(*, ticket: Ticket) -> dict[str, Any]:
    """When the requester can expect to hear from us: `{"state", "due_at"}`.

    `state` is `due` (answer by `due_at`, from the SLA), `late` (past it), `confirm` (waiting
    for the owner's link), `yours` (waiting for the requester) or `finished`.
    """
    status = ticket.status
    if status in (S.NEW, S.OPEN):
        if ticket.due_at and ticket.due_at < timezone.now():
            return {"state": "late", "due_at": ticket.due_at}
        return {"state": "due", "due_at": ticket.due_at}
    if status == S.AWAITING_VERIFICATION:
        return {"state": "confirm", "due_at": None}
    if status == S.AWAITING_CUSTOMER:
        return {"state": "yours", "due_at": None}
    return {"state": "finished", "due_at": None}
