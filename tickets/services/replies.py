"""Messages on a ticket: replies and internal notes.

A customer's reply reopens the ticket; a staff reply is mailed, signed, quoting the requester
where their words may be mailed.
"""

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext_noop

from accounts.models import Customer
from helpdesk.exceptions import ApplicationError, TransitionNotAllowed
from helpdesk.ratelimit import rate_limit_hit
from tickets.audit import Actor
from tickets.lock_objects import ticket_lock
from tickets.models import Attachment, Message, Ticket
from tickets.redaction import redact_card_numbers
from tickets.selectors.messages import message_shown_to_requester
from tickets.services.attachments import AttachmentUpload, attachments_add
from tickets.services.lifecycle import (
    account_open_locked,
    customer_account_open_locked,
    mailed_status_link_context,
    requester_account_open_locked,
)
from tickets.services.outbox import notification_queue
from tickets.services.requester_mail import requester_words_mailable, ticket_subject_mailable
from tickets.services.search import message_create
from tickets.services.stats import ticket_stat_figures, ticket_stats_update
from tickets.services.transitions import (
    NO_REPLY_STATUSES,
    REOPENED_BY_REPLY,
    staff_actor_check,
    ticket_move,
)
from tickets.services.versions import (
    message_changes_requester_view,
    ticket_change_save,
    ticket_version_check,
)

S = Ticket.Status

REPLY_TO_CLOSED = gettext_noop("This ticket is closed; please open a new request.")
EMPTY_MESSAGE = gettext_noop("The message is empty.")


# The part of the customer's last message quoted under a reply.
REPLY_QUOTE_LIMIT = 2000


def _agent_display_name(user: User | None) -> str:
    """How a reply is signed: the agent's full name, else their login ("" for none)."""
    if user is None:
        return ""
    return user.get_full_name().strip() or user.get_username()


def _quote_last_customer_message(ticket: Ticket, *, before: Message) -> dict[str, str]:
    """The customer's latest message before `before`, quoted with "> " (empty when none)."""
    last = (
        Message.objects.filter(
            message_shown_to_requester(), ticket=ticket, author=Message.Author.CUSTOMER
        )
        .exclude(pk=before.pk)
        .order_by("-created_at", "-id")
        .only("body", "created_at")
        .first()
    )
    if last is None:
        return {}
    text = last.body.strip()
    if len(text) > REPLY_QUOTE_LIMIT:
        text = text[:REPLY_QUOTE_LIMIT].rstrip() + " […]"
    return {
        "quoted": "\n".join(f"> {line}".rstrip() for line in text.splitlines()),
        "quoted_plain": text,
        "quoted_at": last.created_at.isoformat(),
    }


def _staff_reply_mail(locked: Ticket, message: Message, stored: list[Attachment]) -> None:
    """Mail a staff reply to the requester, signed, with its clean files.

    It quotes the requester's last message, and names the subject, only where the requester's
    own words may be mailed (`requester_words_mailable`): never to an address typed in.
    """
    recipient = locked.contact_email or (locked.customer.email if locked.customer else "")
    if not recipient:
        return
    quote = (
        _quote_last_customer_message(locked, before=message)
        if requester_words_mailable(locked, recipient)
        else {}
    )
    notification_queue(
        ticket=locked,
        template="ticket_reply",
        recipient=recipient,
        context={
            "subject": ticket_subject_mailable(locked, recipient),
            "body": message.body,
            **mailed_status_link_context(recipient),
            "agent_name": _agent_display_name(message.author_user),
            **quote,
            **({"attachments": [a.pk for a in stored]} if stored else {}),
        },
    )


@transaction.atomic
def ticket_reply_add(
    *,
    ticket: Ticket,
    body: str,
    actor: Actor,
    author: str,
    channel: str,
    author_user: User | None = None,
    internal: bool = False,
    email_message_id: str | None = None,
    expected_version: int | None = None,
    attachments: Sequence[AttachmentUpload] = (),
    reopen: bool = True,
    sender_authentication: dict[str, Any] | None = None,
) -> Message:
    """Add a message to a ticket; a staff reply is mailed, a customer reply reopens it.

    With `reopen=False` a customer's message leaves the status as it is: an email whose sender
    our mail server could not authenticate may not act for the customer. An email's
    `sender_authentication` (inbound_auth) is stored with it.

    A message written as the requester, whichever way (a session, the API, a status link,
    inbound mail), is refused with AccountLockedOut while the ticket's customer account is
    frozen or closed; only a message staff alone see (`internal`) is taken then.

    Card numbers in the body are redacted here, whichever way the message came in. Files in
    `attachments` are kept on the message (ValidationError, and nothing saved, if one breaks
    the rules); a mailed staff reply carries them once the scan found them clean.

    Every kind of message goes through here, so the account rule, the ticket's lock, the
    version and the first response are taken in one order for all. So is the rule that words
    in staff's name, or where staff alone read them (`internal`), are staff's or the system's
    own (StaffForbidden): the pages and the API check the role, any other path is held here.
    """
    as_requester = author == Message.Author.CUSTOMER and not internal
    if not as_requester:
        staff_actor_check(actor)
    body = _reply_body(body)
    locked, signed_in = _reply_ticket_lock(ticket, actor=actor, as_requester=as_requester)
    ticket_version_check(locked, expected_version, requester=signed_in is not None)
    if locked.status in NO_REPLY_STATUSES and not internal:
        raise TransitionNotAllowed(REPLY_TO_CLOSED)
    message = message_create(
        ticket=locked,
        author=author,
        author_user=author_user,
        body=body,
        internal=internal,
        channel=channel,
        email_message_id=email_message_id,
        sender_authentication=sender_authentication,
    )
    stored = attachments_add(message=message, uploads=attachments, actor=actor)
    figures = ticket_stat_figures(locked)
    fields = _first_response_set(locked, message, author=author, internal=internal)
    ticket_change_save(
        locked,
        fields,
        actor=actor,
        action="ticket.note_added" if internal else "ticket.message_added",
        details={"message": message.pk, "author": author, "channel": channel},
        shown=not internal and message_changes_requester_view(message),
    )
    ticket_stats_update(before=figures, ticket=locked)
    if not internal:
        _reply_answered(locked, message, stored, actor=actor, author=author, reopen=reopen)
    return message


def _reply_body(body: str) -> str:
    """The body as stored, card numbers redacted; ApplicationError when nothing is left."""
    body, _card_found = redact_card_numbers(body)
    if not body.strip():
        raise ApplicationError(EMPTY_MESSAGE)
    return body


def _reply_ticket_lock(
    ticket: Ticket, *, actor: Actor, as_requester: bool
) -> tuple[Ticket, int | None]:
    """Hold the accounts a reply acts for to being open, and lock the ticket, in that order.

    Returns the locked ticket and the signed-in customer's pk (None for anyone else).
    """
    signed_in = actor.pk if isinstance(actor, Customer) else None
    if isinstance(actor, Customer):
        # A signed-in customer (the portal, the API): each reply is audited and mailed to staff.
        rate_limit_hit(scope="reply_per_customer", key=str(actor.pk))
        customer_account_open_locked(actor)
    owner = ticket.customer_id
    if as_requester and owner != signed_in:
        requester_account_open_locked(ticket)
    locked = ticket_lock(pk=ticket.pk)
    linked = locked.customer_id
    if as_requester and linked is not None and linked not in (signed_in, owner):
        account_open_locked(linked)  # linked to a customer since it was read: rare
    return locked, signed_in


def _first_response_set(
    locked: Ticket, message: Message, *, author: str, internal: bool
) -> list[str]:
    """Date the ticket's first response if `message` is it (a staff reply); the fields set."""
    if author != Message.Author.STAFF or internal or locked.first_response_at is not None:
        return []
    locked.first_response_at = message.created_at
    locked.first_response_by = message.author_user
    return ["first_response_at", "first_response_by"]


def _reply_answered(
    locked: Ticket,
    message: Message,
    stored: list[Attachment],
    *,
    actor: Actor,
    author: str,
    reopen: bool,
) -> None:
    """Move the ticket on after a reply the requester sees.

    A staff reply waits on the customer and is mailed; a customer's reply puts the ticket back
    in the queue (unless `reopen` is False).
    """
    if author == Message.Author.STAFF:
        if locked.status == S.OPEN:
            ticket_move(locked, to=S.AWAITING_CUSTOMER, actor=actor)
        _staff_reply_mail(locked, message, stored)
    elif author == Message.Author.CUSTOMER and reopen and locked.status in REOPENED_BY_REPLY:
        ticket_move(locked, to=S.OPEN, actor=actor, reason="customer replied")
