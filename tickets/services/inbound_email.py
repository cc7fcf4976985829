"""Inbound email: threading, opt-outs by email, attachments.

Mail acts for its sender (stops their mailings, reopens their ticket, is filed and acknowledged
as theirs) only when our receiving server authenticated its From address (`inbound_auth`).
Other mail is still stored, never lost, but acts for nobody: an opt-out mails a link to the
email on record instead, a reply is added without reopening its ticket, a new request is taken
as the web form's without a login. A reply on a ticket whose customer account is frozen or
closed acts for nobody either way: it is kept for staff only (`_inbound_reply`).

Long because it is one message's whole way in, threading, limits, authentication and what
the mail may do, read in the order it happens.
"""

import re
import uuid
from collections.abc import Callable
from functools import partial
from typing import cast

from django.db import IntegrityError, transaction

from accounts.selectors import customer_get_by_email, customer_of_address
from helpdesk.exceptions import RateLimited
from helpdesk.ratelimit import rate_limit_hits
from helpdesk.validators import CONTROL_CHARACTERS, address_valid, without_nul
from tickets import emails
from tickets.audit import audit_record
from tickets.lock_objects import tickets_and_customers_lock
from tickets.models import Message, Notification, Ticket
from tickets.redaction import redact_card_numbers
from tickets.selectors.status_page import ticket_address_matching
from tickets.services.attachments import (
    attachments_store,
)
from tickets.services.general import request_general
from tickets.services.inbound_auth import SenderAuthentication, inbound_sender_authentication
from tickets.services.inbound_parse import (
    address_local_base,
    inbound_acknowledge,
    inbound_attachments_sort,
    inbound_body,
    inbound_headers,
    inbound_ignore_reason,
    inbound_message_key,
    inbound_opt_out_lists,
    valid_address,
)
from tickets.services.lifecycle import AccountLockedOut, ticket_create
from tickets.services.opt_out import OPT_OUT_SUBJECT, opt_out_apply
from tickets.services.replies import ticket_reply_add
from tickets.services.search import message_create
from tickets.services.transitions import NO_REPLY_STATUSES, REOPENED_BY_REPLY

S = Ticket.Status
INBOUND_NO_SUBJECT = "(no subject)"
INBOUND_NO_TEXT = "(The email had no text.)"
INBOUND_OPT_OUT_NOT_ON_RECORD = (
    "This opt-out request came by email from {sender}, which is not the email address on "
    "record of any customer, so nothing was changed (the From address of an email can be "
    "forged). If you can tell whose account it is, ask them to use the unsubscribe link in our "
    "mailings or the preferences page, or write to the address on record."
)
INBOUND_OPT_OUT_NOT_AUTHENTICATED = (
    "This opt-out request came by email from {sender}, the email address on record, but our mail "
    "server could not confirm that it was sent from that address (no SPF, DKIM or DMARC pass), "
    "so nothing was changed: the email on record was sent a one-click link for each of these "
    "mailings still on, and its owner decides."
)
INBOUND_REPLY_NOT_AUTHENTICATED = (
    "Our mail server could not confirm that this email was sent from {sender} (no SPF, DKIM or "
    "DMARC pass), so it did not reopen the ticket. Reopen it yourself if the reply needs it."
)
INBOUND_REPLY_ACCOUNT_LOCKED_OUT = (
    "This email from {sender} came while the customer's account is frozen or closed, so it is "
    "kept here for staff only: it did not reopen the ticket, and the requester does not see "
    "it. Answer it once the account is sorted out."
)
INBOUND_ATTACHMENTS_REFUSED = "Attachments not kept: {items}."
INBOUND_CARD_REDACTED = "A card number in this email was removed before it was stored."
_INBOUND_ACTOR = "inbound-email"
_REFERENCE_IN_SUBJECT = re.compile(r"(?<![A-Z0-9])HD-[0-9A-HJKMNP-TV-Z]{8}(?![A-Z0-9])")
_ANGLE_IDS = re.compile(r"<([^<>\s]{1,250})>")


def _inbound_existing(key: str | None) -> Ticket | None:
    if key is None:
        return None
    found = Message.objects.filter(email_message_id=key).select_related("ticket").first()
    return found.ticket if found else None


def _sender_on_record(sender: str) -> str:
    """The From address as lookups may match it to a customer or a ticket, or "".

    Only a plain address (the one rule, `address_valid`): another program may read a quoted or
    routed one as a mailbox other than the one it looks like here.
    """
    return sender if address_valid(sender) else ""


def _sender_matches(ticket: Ticket, sender: str) -> bool:
    # The addresses a ticket writes to and a status link works for: while its customer's
    # account is frozen, the email on record alone (the freeze took the others back).
    return bool(ticket_address_matching(ticket, _sender_on_record(sender)))


def _inbound_thread(subject: str, headers: dict[str, str], sender: str) -> Ticket | None:
    """The ticket this email answers: its reference in the subject or one of our Message-IDs."""
    references = list(dict.fromkeys(_REFERENCE_IN_SUBJECT.findall(subject.upper())))
    notification_ids = []
    domain = emails.mail_domain().lower()
    quoted = f"{headers.get('in-reply-to', '')} {headers.get('references', '')}"
    for message_id in _ANGLE_IDS.findall(quoted):
        local, _, host = message_id.rpartition("@")
        if host.lower() != domain:
            continue
        if local.startswith("ticket-"):
            references.append(local.removeprefix("ticket-"))
            continue
        try:
            notification_ids.append(uuid.UUID(local))
        except ValueError:
            continue
    candidates = list(
        Ticket.objects.filter(reference__in=references[:10]).select_related("customer")
    )
    if notification_ids:
        candidates += [
            cast(Ticket, row.ticket)  # ticket__isnull=False
            for row in Notification.objects.filter(
                uuid__in=notification_ids[:10], ticket__isnull=False
            ).select_related("ticket__customer")
        ]
    for ticket in candidates:
        if ticket.status not in NO_REPLY_STATUSES and _sender_matches(ticket, sender):
            return ticket
    return None


def _inbound_opt_out(
    *,
    names: list[str],
    sender: str,
    subject: str,
    body: str,
    key: str | None,
    authentication: SenderAuthentication,
) -> tuple[Ticket, Message, str]:
    owner = customer_get_by_email(email=_sender_on_record(sender))
    if owner is not None:
        # Anyone can write a From: unauthenticated, the owner decides by a link sent to them.
        ticket = opt_out_apply(
            customer=owner,
            lists=names,
            actor=_INBOUND_ACTOR,
            channel=Ticket.Channel.EMAIL,
            source="email",
            sender_proven=authentication.trusted,
        )
        outcome = "opt_out_applied"
        if not authentication.trusted:
            _inbound_note(ticket, INBOUND_OPT_OUT_NOT_AUTHENTICATED.format(sender=sender))
            outcome = "opt_out_link_sent"
    else:
        ticket = ticket_create(
            kind=Ticket.Kind.OPT_OUT,
            subject=subject or OPT_OUT_SUBJECT,
            actor=_INBOUND_ACTOR,
            contact_email=valid_address(sender),
            channel=Ticket.Channel.EMAIL,
            status=S.OPEN,
            details={"lists": names, "source": "email"},
        )
        _inbound_note(ticket, INBOUND_OPT_OUT_NOT_ON_RECORD.format(sender=sender))
        outcome = "opt_out_sender_not_on_record"
    message = message_create(
        ticket=ticket,
        author=Message.Author.CUSTOMER,
        body=body,
        channel=Ticket.Channel.EMAIL,
        email_message_id=key,
    )
    return ticket, message, outcome


def _inbound_note(ticket: Ticket, body: str) -> None:
    message_create(
        ticket=ticket,
        author=Message.Author.SYSTEM,
        body=body,
        internal=True,
        channel=Ticket.Channel.EMAIL,
    )


def _inbound_new(
    key: str | None,
    sender: str,
    recipients: list[str],
    subject: str,
    body: str,
    text: str,
    authentication: SenderAuthentication,
    acknowledge: bool,
) -> tuple[Ticket, Message, str]:
    """A mail that is not a reply: an explicit opt-out, or a request for general help.

    Unauthenticated mail from an address on record is taken as the web form sent without a
    login is: linked to the customer by that address (`customer_by_contact`, which the staff
    page flags), and acknowledged with our standard text only.
    """
    # Counted by the address compared canonically, as the customer is looked up: a fullwidth or
    # mathematical-bold spelling of alice@ is alice@ to the lookup, not a sender of its own.
    local, domain = address_local_base(sender)
    rate_limit_hits(
        ("inbound_per_sender", f"{local}@{domain}"), ("inbound_per_sender_domain", domain)
    )
    names = inbound_opt_out_lists(recipients, subject, body)
    if names:
        return _inbound_opt_out(
            names=names,
            sender=sender,
            subject=subject,
            body=text,
            key=key,
            authentication=authentication,
        )
    owner = customer_of_address(email=_sender_on_record(sender)) if authentication.trusted else None
    ticket = request_general(
        subject=subject or INBOUND_NO_SUBJECT,
        body=text,
        contact_email=valid_address(sender),
        actor=_INBOUND_ACTOR,
        customer=owner,
        channel=Ticket.Channel.EMAIL,
        language=owner.language if owner else None,
        email_message_id=key,
        sender_authenticated=authentication.authenticated,
        acknowledge=acknowledge,
    )
    message = ticket.messages.filter(author=Message.Author.CUSTOMER).latest("id")
    return ticket, message, "new_ticket"


class InboundReplyLimited(RateLimited):
    """Unauthenticated replies on one ticket, or from one sender, past their limit."""

    def __init__(self, refused: RateLimited, *, ticket: Ticket) -> None:
        super().__init__(refused.message, refused.retry_after)
        self.ticket = ticket


def _inbound_reply_limits(ticket: Ticket, sender: str) -> None:
    """Count a reply whose sender our mail server did not authenticate, per sender on a ticket.

    InboundReplyLimited past a limit. Anyone can write a ticket's reference and its
    requester's address into a mail: without a limit a stranger fills the ticket (and its
    requester's page) with text of their own. Authenticated mail is never counted here.

    Counted per ticket and sender address, compared canonically as threading compares it
    ("inbound_reply_unverified_per_sender"), then per ticket from every sender
    ("inbound_reply_unverified_per_ticket", counting only what the first let through), as
    acknowledgement_allowed counts per domain. So a stranger writing as one of a ticket's
    addresses spends that address's share on that ticket alone: not the share of its other
    address (contact and email on record), nor the share of that address on its other tickets.
    """
    local, domain = address_local_base(sender)
    try:
        rate_limit_hits(
            ("inbound_reply_unverified_per_sender", f"{ticket.reference} {local}@{domain}")
        )
        rate_limit_hits(("inbound_reply_unverified_per_ticket", ticket.reference))
    except RateLimited as exc:
        raise InboundReplyLimited(exc, ticket=ticket) from None


def _inbound_reply(
    ticket: Ticket, key: str | None, sender: str, text: str, authentication: SenderAuthentication
) -> tuple[Message, str]:
    """Add the mail to its ticket as the requester's reply; kept for staff if it may not act.

    A reply is refused while the ticket's customer account is frozen or closed, as on every
    other path; the mail is not lost but kept as a message only staff see, with a note.
    """
    reopens = ticket.status in REOPENED_BY_REPLY
    reply = partial(
        ticket_reply_add,
        ticket=ticket,
        body=text,
        actor=_INBOUND_ACTOR,
        author=Message.Author.CUSTOMER,
        channel=Ticket.Channel.EMAIL,
        email_message_id=key,
        sender_authentication=authentication.as_details(),
    )
    try:
        message = reply(reopen=authentication.trusted)
    except AccountLockedOut:
        message = reply(internal=True)
        _inbound_note(ticket, INBOUND_REPLY_ACCOUNT_LOCKED_OUT.format(sender=sender))
        return message, "reply_held_account_locked_out"
    if reopens and not authentication.trusted:
        _inbound_note(ticket, INBOUND_REPLY_NOT_AUTHENTICATED.format(sender=sender))
        return message, "reply_not_reopened"
    return message, "reply"


@transaction.atomic
def _inbound_store(
    *,
    key: str | None,
    sender: str,
    recipients: list[str],
    subject: str,
    body: str,
    headers: dict[str, str],
    attachments: list[tuple[str, str, bytes]],
    card_found: bool,
    authentication: SenderAuthentication,
) -> Ticket:
    """Keep one accepted message as a reply on its thread or as a new ticket, with its files.

    Longer than most: a reply is looked at again under its lock, and what is kept (files,
    notes, the verdict of the sender's authentication, the audit row) is the same either way.
    """
    kept, refused = inbound_attachments_sort(attachments)
    text = body or INBOUND_NO_TEXT
    # Thread first: a reply on a ticket is a reply, whatever words it uses.
    ticket = _inbound_thread(subject, headers, sender)
    if ticket is not None and not authentication.trusted:
        _inbound_reply_limits(ticket, sender)
    if ticket is not None:
        # Looked at again under its lock: closed, merged or rejected since it was found, it
        # takes no reply, and the mail is kept as a new ticket, as a moment later it would be.
        [ticket] = tickets_and_customers_lock(ticket.pk)
        if ticket.status in NO_REPLY_STATUSES:
            ticket = None
    if ticket is not None:
        message, outcome = _inbound_reply(ticket, key, sender, text, authentication)
    else:
        ticket, message, outcome = _inbound_new(
            key,
            sender,
            recipients,
            subject,
            body,
            text,
            authentication,
            inbound_acknowledge(headers, authenticated=authentication.authenticated),
        )
    verdict = authentication.as_details()
    Message.objects.filter(pk=message.pk).update(sender_authentication=verdict)
    attachments_store(message=message, files=kept, actor=_INBOUND_ACTOR)
    if refused:
        items = "; ".join(f"{item['name']} ({item['reason']})" for item in refused)
        _inbound_note(ticket, INBOUND_ATTACHMENTS_REFUSED.format(items=items))
    if card_found:
        _inbound_note(ticket, INBOUND_CARD_REDACTED)
    audit_record(
        actor=_INBOUND_ACTOR,
        action="inbound.received",
        ticket=ticket,
        details={
            "message_id": key,
            "from": sender,
            "outcome": outcome,
            "attachments": [name for name, _, _ in kept],
            "refused_attachments": refused,
            "card_redacted": card_found,
            "sender_authentication": verdict,
        },
    )
    return ticket


def _inbound_ignored(
    *, reason: str, sender: str, message_id: str, ticket: Ticket | None = None
) -> None:
    with transaction.atomic():
        audit_record(
            actor=_INBOUND_ACTOR,
            action="inbound.ignored",
            ticket=ticket,
            details={
                "reason": reason,
                "from": redact_card_numbers(sender)[0],
                "message_id": redact_card_numbers(message_id or "")[0][:255],
            },
        )


def inbound_email_receive(
    *,
    message_id: str,
    from_email: str,
    to_emails: list[str],
    subject: str,
    text: str,
    html: str,
    headers: list[tuple[str, str]],
    attachments: list[tuple[str, str, bytes]],
    envelope_recipient: str,
) -> Ticket | None:
    """Turn one inbound email into an opt-out, a reply on its ticket, or a new ticket.

    `headers` are the message's headers in order, (name, value) each: the receiving server's
    authentication verdicts are read from them, and whether it authenticated the From address
    decides what the mail may do for its sender (the module's docstring).

    Auto-replies, bounces, reports, mail looping back to us, new mail past a sender's or a
    sender domain's limit, and unauthenticated replies past a sender's or a ticket's limit are
    dropped (None, audited as inbound.ignored; the ESP is answered 2xx and does not retry).
    Idempotent by unique key: a redelivered Message-ID from the same sender returns the ticket
    it made.

    Every reason to drop a message is checked here, one after another, before anything is
    stored.
    """
    # Mail is read whatever it holds: a NUL anywhere in it (a forged header, a part's type)
    # would otherwise fail every delivery of it with a 500, and the ESP retries for hours.
    header_list = [(without_nul(str(name)), without_nul(str(value))) for name, value in headers]
    joined = inbound_headers(header_list)
    message_id = without_nul(message_id or "")
    from_email = without_nul(from_email or "")
    attachments = [
        (without_nul(name), without_nul(content_type), content)
        for name, content_type, content in attachments or []
    ]
    sender = from_email.strip()[:254]
    reason = inbound_ignore_reason(sender, joined, attachments or [], subject or "")
    if reason:
        _inbound_ignored(reason=reason, sender=sender, message_id=message_id)
        return None
    authentication = inbound_sender_authentication(from_email=sender, headers=header_list)
    key = inbound_message_key(message_id, sender, sender_proven=authentication.trusted)
    existing = _inbound_existing(key)
    if existing is not None:
        return existing
    subject, body, card_found = _inbound_text(subject=subject, text=text, html=html)
    store = partial(
        _inbound_store,
        key=key,
        sender=sender,
        recipients=[*(to_emails or []), envelope_recipient or ""],
        subject=subject,
        body=body,
        headers=joined,
        attachments=attachments or [],
        card_found=card_found,
        authentication=authentication,
    )
    return _inbound_store_once(store, key=key, sender=sender, message_id=message_id)


def _inbound_text(*, subject: str, text: str, html: str) -> tuple[str, str, bool]:
    """The subject on one line and the body, card numbers redacted; whether there was one."""
    subject = " ".join(CONTROL_CHARACTERS.sub(" ", subject or "").split())
    subject, card_in_subject = redact_card_numbers(subject)
    body, card_in_body = redact_card_numbers(inbound_body(text, html))
    return subject[:200], body, card_in_subject or card_in_body


def _inbound_store_once(
    store: Callable[[], Ticket], *, key: str | None, sender: str, message_id: str
) -> Ticket | None:
    """Store the message with `store()`, unless a limit drops it (None).

    The same message arriving twice at once is stored by one delivery: the other returns the
    ticket it made.
    """
    try:
        return store()
    except InboundReplyLimited as exc:
        # Unauthenticated replies past their limit: audited on the ticket they named, not stored.
        _inbound_ignored(
            reason="reply rate limit", sender=sender, message_id=message_id, ticket=exc.ticket
        )
        return None
    except RateLimited:
        # Mail from one sender (or domain) past its limit: audited, never a ticket or a reply.
        _inbound_ignored(reason="rate limit", sender=sender, message_id=message_id)
        return None
    except IntegrityError:
        # The same message arriving twice at once: the other delivery stored it.
        existing = _inbound_existing(key)
        if existing is None:
            raise
        return existing
