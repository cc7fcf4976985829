"""Following a request without an account: the link to a ticket's status page.

The link is a `Verification` of purpose STATUS: random, stored as a hash, mailed only to an
address the ticket holds (its contact address or its customer's email on record), valid for
STATUS_LINK_TTL and usable as often as its holder likes. Every acknowledgement carries one
(issued by the worker when it sends the email), and `/track/` mails a new one to whoever knows
a reference and the address it was asked with.
"""

import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_noop

from helpdesk.exceptions import ApplicationError, RateLimited
from helpdesk.ratelimit import rate_limit_hit, rate_limit_hits
from tickets.lock_objects import ticket_lock
from tickets.models import Message, Notification, Ticket, Verification
from tickets.selectors.status_page import status_link_find, ticket_address_matching
from tickets.services.attachments import AttachmentUpload
from tickets.services.lifecycle import typed_address_card_refusal
from tickets.services.outbox import notification_queue
from tickets.services.publishing import tasks_publish
from tickets.services.replies import ticket_reply_add
from tickets.services.requester_mail import mailbox_key, ticket_subject_mailable
from tickets.services.verification import verification_link_issue, verification_link_lock_live
from tickets.tasks import status_link_send as status_link_send_task

TRACK_SENT = gettext_noop(
    "If the reference and the email address belong to the same request, we have sent a link "
    "to its status page to that address. Check your inbox in a few minutes."
)
STATUS_LINK_INVALID = gettext_noop("This link to a request's status page is not valid.")


class StatusLinkInvalid(ApplicationError):
    """The status link is unknown or expired (HTTP 404; the page says which)."""

    status_code = 404


def status_link_issue(*, ticket: Ticket, send_to: str) -> str:
    """A new link to `ticket`'s status page for `send_to`, an address the ticket holds.

    Runs in the caller's transaction; the URL goes only into an email to `send_to`.
    """
    return verification_link_issue(
        ticket=ticket,
        purpose=Verification.Purpose.STATUS,
        send_to=send_to,
        ttl=settings.STATUS_LINK_TTL,
        view="portal:track-status",
    )


# The context key by which an outbox row asks for a status link for its recipient. The worker
# issues the link just before it sends the email (status_link_fill), so the request that
# queued the email writes no link of its own and does the same work whatever it was about.
STATUS_LINK_WANTED = "status_link_wanted"


def status_link_context(*, recipient: str) -> dict[str, Any]:
    """What an email to `recipient` adds so they can follow its ticket (STATUS_LINK_WANTED)."""
    return {STATUS_LINK_WANTED: True} if recipient else {}


def status_link_fill(notification: Notification) -> None:
    """Give an outbox row that wants one a status link for its recipient, kept until it is sent.

    A retried send finds the link already in the row and mails the same one. The recipient
    must still be an address the ticket holds when the link is made: an address taken back
    since the mail was queued (a frozen or closed account's) gets the mail without a link.
    """
    context = notification.context
    if not context.get(STATUS_LINK_WANTED) or "status_link" in context or not notification.ticket:
        return
    with transaction.atomic():
        # Under the ticket's lock: a freeze taking the address back waits, or is seen here.
        ticket = ticket_lock(pk=notification.ticket.pk)
        if ticket_address_matching(ticket, notification.recipient):
            link = status_link_issue(ticket=ticket, send_to=notification.recipient)
            context = {**context, "status_link": link}
        else:
            context = {k: v for k, v in context.items() if k != STATUS_LINK_WANTED}
        Notification.objects.filter(pk=notification.pk).update(context=context)
    notification.context = context


def _status_link_task(reference: str, email: str, request_id: str) -> tuple[Any, dict[str, Any]]:
    return status_link_send_task, {"reference": reference, "email": email, "request_id": request_id}


def track_request(*, reference: str, email: str, client_key: str) -> None:
    """Ask for a status link: the worker mails it if reference and address belong together.

    The request does the same work whatever was typed (one task queued), so neither the answer
    nor its timing says whether a ticket or an address exists. An address holding a card
    number is refused (ValidationError keyed `email`) whatever is on record: the task would
    carry it through the broker, and no address on record holds one.
    """
    reference = (reference or "").strip().upper()[:20]
    email = (email or "").strip()[:254]
    typed_address_card_refusal(email)
    rate_limit_hit(scope="track_per_client", key=client_key)
    tasks_publish(
        [_status_link_task(reference, email, uuid.uuid4().hex)],
        what=f"status link for {reference}",
    )


def status_link_send(*, reference: str, email: str, request_id: str) -> str:
    """Mail a status link for ticket `reference` to its address `email`, if they match.

    Idempotent by unique natural key: the outbox row's key is the request's id, so a redelivered
    task finds it and does nothing. Returns what happened (for the worker's log only).
    """
    key = f"status_link:{request_id}"
    ticket = (
        Ticket.objects.select_related("customer").filter(reference=reference).first()
        if reference
        else None
    )
    recipient = ticket_address_matching(ticket, email) if ticket else ""
    if ticket is None or not recipient:
        return "no_match"
    try:
        rate_limit_hits(("track_per_ticket", ticket.reference))
        # Only what the ticket let through counts for the address, over all its tickets.
        rate_limit_hits(("track_per_address", mailbox_key(recipient)))
    except RateLimited:
        return "coalesced"  # the address already got links this hour; nobody is told
    with transaction.atomic():
        if Notification.objects.filter(idempotency_key=key).exists():
            return "already_sent"
        notification_queue(
            ticket=ticket,
            template="status_link",
            recipient=recipient,
            context={
                "subject": ticket_subject_mailable(ticket, recipient),
                **status_link_context(recipient=recipient),
            },
            key=key,
        )
    return "sent"


def status_reply_add(
    *, token: str, body: str, client_key: str, attachments: Sequence[AttachmentUpload] = ()
) -> Message:
    """A reply from the status page: the link's holder writes on its ticket as the requester."""
    rate_limit_hit(scope="request_per_client", key=client_key)
    state, verification = status_link_find(token=token)
    if state != "live" or verification is None:
        raise StatusLinkInvalid(STATUS_LINK_INVALID)
    with transaction.atomic():
        # The link again, under its ticket's lock and its own: one a freeze ended meanwhile is
        # refused here, never written with.
        ticket = verification_link_lock_live(verification=verification)
        if ticket is None:
            raise StatusLinkInvalid(STATUS_LINK_INVALID)
        return ticket_reply_add(
            ticket=ticket,
            body=body,
            actor=f"status-link:{verification.sent_to}",
            author=Message.Author.CUSTOMER,
            channel=Ticket.Channel.PORTAL,
            attachments=attachments,
        )
