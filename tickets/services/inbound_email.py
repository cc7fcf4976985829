"""Inbound email: threading, opt-outs by email, attachments."""

import hashlib
import re
import uuid
from email.utils import parseaddr
from html import unescape as html_unescape
from typing import Any, cast

import nh3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from accounts.selectors import customer_get_by_email, email_canonical
from helpdesk.exceptions import RateLimited
from helpdesk.ratelimit import rate_limit_hits
from tickets import emails
from tickets.attachments import attachment_type_sniff
from tickets.audit import audit_record
from tickets.models import Message, Notification, Ticket
from tickets.redaction import redact_card_numbers
from tickets.services.attachments import (
    ATTACHMENT_DANGEROUS_EXTENSIONS,
    ATTACHMENT_MAX_BYTES,
    ATTACHMENT_TYPES,
    attachment_extensions,
    attachment_filename_clean,
    attachments_store,
)
from tickets.services.lifecycle import request_general, ticket_create, ticket_reply_add
from tickets.services.opt_out import OPT_OUT_SUBJECT, opt_out_apply
from tickets.services.shared import CONTROL_CHARACTERS, NO_REPLY_STATUSES

S = Ticket.Status


INBOUND_ATTACHMENT_MAX_BYTES = ATTACHMENT_MAX_BYTES
# The types a sender may claim; the bytes must agree (text/csv is sniffed as text/plain).
INBOUND_ATTACHMENT_TYPES = ATTACHMENT_TYPES | {"text/csv"}
INBOUND_MAX_BODY_CHARS = 100_000
INBOUND_NO_SUBJECT = "(no subject)"
INBOUND_NO_TEXT = "(The email had no text.)"
INBOUND_OPT_OUT_NOT_ON_RECORD = (
    "This opt-out request came by email from {sender}, which is not the email address on "
    "record of any customer, so nothing was changed (the From address of an email can be "
    "forged). If you can tell whose account it is, ask them to use the unsubscribe link in our "
    "mailings or the preferences page, or write to the address on record."
)
INBOUND_ATTACHMENTS_REFUSED = "Attachments not kept: {items}."
INBOUND_CARD_REDACTED = "A card number in this email was removed before it was stored."
_INBOUND_ACTOR = "inbound-email"
_AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_DAEMON_SENDERS = frozenset({"mailerdaemon", "postmaster"})  # letters only
_REPORT_TYPES = frozenset(
    {"message/delivery-status", "message/disposition-notification", "message/feedback-report"}
)
_REFERENCE_IN_SUBJECT = re.compile(r"(?<![A-Z0-9])HD-[0-9A-HJKMNP-TV-Z]{8}(?![A-Z0-9])")
_ANGLE_IDS = re.compile(r"<([^<>\s]{1,250})>")
_OPT_OUT_COMMAND = re.compile(
    r"(?:unsubscribe|opt[ _-]?(?:me )?out|stop (?:sending|mailing|emailing)|remove me from)\b"
)
_NEGATION = re.compile(r"\b(?:not|no|don't|dont|never|do not|doesn't|isn't|why)\b")
_HTML_BREAKS = re.compile(r"(?i)<br\s*/?>|</(?:p|div|li|tr|h[1-6]|blockquote)\s*>")


def _inbound_headers(headers: dict[str, Any]) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in (headers or {}).items()}


def _our_addresses() -> set[str]:
    """Our own sending and receiving addresses (canonical, without +tags)."""
    addresses = {settings.SUPPORT_EMAIL, settings.BILLING_EMAIL, settings.DEFAULT_FROM_EMAIL}
    found = set()
    for address in addresses:
        local, domain = _address_local_base(parseaddr(address)[1])
        if local and domain:
            found.add(f"{local}@{domain}")
    return found


def _is_mail_server(address: str) -> bool:
    # mailer-daemon, MAILER-DAEMON, mailer_daemon+x, postmaster+bounce, ...
    local = address.rpartition("@")[0].split("+", 1)[0]
    return re.sub(r"[^a-z]", "", local.lower()) in _DAEMON_SENDERS


def _inbound_ignore_reason(
    from_email: str, headers: dict[str, str], attachments: list[tuple[str, str, bytes]]
) -> str:
    """Why a message is an auto-reply, bounce, report or loop that must never make a ticket."""
    auto = headers.get("auto-submitted", "").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in ("x-autoreply", "x-autorespond"):
        if name in headers:
            return f"{name} header"
    sender = email_canonical(from_email or "")
    if not sender:
        return "empty From"
    ours = _our_addresses()
    local, domain = _address_local_base(sender)
    if f"{local}@{domain}" in ours:
        return "sent from one of our own addresses"
    loop = headers.get("x-loop", "").lower()
    if loop and (any(address in loop for address in ours) or emails.loop_header_value() in loop):
        return "X-Loop names us"
    if "return-path" in headers:
        return_path = parseaddr(headers["return-path"].split(",")[0])[1].strip()
        if not return_path:
            return "empty Return-Path (a bounce or a notification)"
        if _is_mail_server(return_path):
            return "Return-Path of a mail server (mailer-daemon or postmaster)"
    if _is_mail_server(sender):
        return "sent by a mail server (mailer-daemon or postmaster)"
    if headers.get("content-type", "").strip().lower().startswith("multipart/report"):
        return "multipart/report (delivery or read report)"
    if any(str(ctype).lower() in _REPORT_TYPES for _, ctype, _ in attachments):
        return "delivery or read report part"
    return ""


def _inbound_message_key(message_id: str, sender: str) -> str | None:
    """The unique key a message is stored under: its Message-ID and its sender together.

    A stranger who sends an id first cannot make the real sender's mail with that id a
    "duplicate"; long keys are hashed to fit.
    """
    value = (message_id or "").strip()
    if not value:
        return None
    key = f"{email_canonical(sender)} {value}"
    if len(key) > 255:
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def _inbound_existing(key: str | None) -> Ticket | None:
    if key is None:
        return None
    found = Message.objects.filter(email_message_id=key).select_related("ticket").first()
    return found.ticket if found else None


def _html_to_text(html: str) -> str:
    # Every tag is dropped (script and style with their content); entities become characters.
    marked = _HTML_BREAKS.sub("\n", html)
    return html_unescape(nh3.clean(marked, tags=set()))


def _inbound_body(text: str, html: str) -> str:
    body = text if (text or "").strip() else _html_to_text(html or "")
    body = body.replace("\r\n", "\n").replace("\x00", "")
    body = re.sub(r"\n{3,}", "\n\n", body).strip()[:INBOUND_MAX_BODY_CHARS]
    return body.encode("utf-8", "replace").decode("utf-8")


def _inbound_attachment_refusal(filename: str, content_type: str, content: bytes) -> str:
    extensions = attachment_extensions(filename)
    if any(extension in ATTACHMENT_DANGEROUS_EXTENSIONS for extension in extensions):
        return "file type not accepted"
    if len(content) > INBOUND_ATTACHMENT_MAX_BYTES:
        return "larger than 10 MB"
    if content_type not in INBOUND_ATTACHMENT_TYPES:
        return f"type {content_type or 'unknown'} not accepted"
    sniffed = attachment_type_sniff(content)
    text_types = {"text/plain", "text/csv"}
    if sniffed != content_type and not (sniffed == "text/plain" and content_type in text_types):
        return f"content is not {content_type}"
    return ""


def _inbound_attachments_sort(
    attachments: list[tuple[str, str, bytes]],
) -> tuple[list[tuple[str, str, bytes]], list[dict[str, str]]]:
    """Split attachments into the ones kept and the refused ones (with the reason)."""
    kept, refused = [], []
    for raw_name, raw_type, content in attachments or []:
        filename = attachment_filename_clean(str(raw_name or ""))
        content_type = str(raw_type or "").split(";")[0].strip().lower()[:100]
        data = bytes(content or b"")
        reason = _inbound_attachment_refusal(filename, content_type, data)
        if reason:
            refused.append({"name": filename, "reason": reason})
        else:
            kept.append((filename, content_type, data))
    return kept, refused


def _address_local_base(address: str) -> tuple[str, str]:
    local, _, domain = email_canonical(address).rpartition("@")
    return local.split("+", 1)[0], domain


def _explicit_opt_out(line: str) -> bool:
    """A subject or first line that is itself a request to unsubscribe, not a mention of one."""
    words = " ".join(re.sub(r"[^\w@.'-]+", " ", line.lower()).split())
    words = words.removeprefix("re ").removeprefix("fwd ").removeprefix("fw ")
    words = words.removeprefix("please ")
    if len(words) > 80 or _NEGATION.search(words):
        return False
    return _OPT_OUT_COMMAND.match(words) is not None


def _first_line(body: str) -> str:
    for line in body.splitlines():
        if line.strip() and not line.lstrip().startswith(">"):
            return line.strip()
    return ""


def _inbound_opt_out_lists(recipients: list[str], subject: str, body: str) -> list[str]:
    """Lists an email to support@ or billing@ explicitly asks to leave.

    The subject (as our List-Unsubscribe mailto sets it) or the first line of the text must be
    the request itself: "Unsubscribe", "Please opt me out"; a sentence that only mentions the
    word ("I do NOT want to unsubscribe") is not one.
    """
    if not (_explicit_opt_out(subject) or _explicit_opt_out(_first_line(body))):
        return []
    addressed = {_address_local_base(address) for address in recipients if address}
    names = []
    if _address_local_base(settings.SUPPORT_EMAIL) in addressed:
        names.append("product_mailings")
    if _address_local_base(settings.BILLING_EMAIL) in addressed:
        names.append("reseller_newsletters")
    return names


def _sender_matches(ticket: Ticket, sender: str) -> bool:
    canonical = email_canonical(sender)
    known = {email_canonical(ticket.contact_email)}
    if ticket.customer is not None:
        known.add(email_canonical(ticket.customer.email))
    return bool(canonical) and canonical in known


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


def _valid_address(address: str) -> str:
    try:
        validate_email(address)
    except ValidationError:
        return ""
    return address


def _inbound_opt_out(
    *, names: list[str], sender: str, subject: str, body: str, key: str | None
) -> tuple[Ticket, Message, str]:
    owner = customer_get_by_email(email=sender)
    if owner is not None:
        ticket = opt_out_apply(
            customer=owner,
            lists=names,
            actor=_INBOUND_ACTOR,
            channel=Ticket.Channel.EMAIL,
            source="email",
        )
        outcome = "opt_out_applied"
    else:
        ticket = ticket_create(
            kind=Ticket.Kind.OPT_OUT,
            subject=subject or OPT_OUT_SUBJECT,
            actor=_INBOUND_ACTOR,
            contact_email=_valid_address(sender),
            channel=Ticket.Channel.EMAIL,
            status=S.OPEN,
            details={"lists": names, "source": "email"},
        )
        _inbound_note(ticket, INBOUND_OPT_OUT_NOT_ON_RECORD.format(sender=sender))
        outcome = "opt_out_sender_not_on_record"
    message = Message.objects.create(
        ticket=ticket,
        author=Message.Author.CUSTOMER,
        body=body,
        channel=Ticket.Channel.EMAIL,
        email_message_id=key,
    )
    return ticket, message, outcome


def _inbound_note(ticket: Ticket, body: str) -> None:
    Message.objects.create(
        ticket=ticket,
        author=Message.Author.SYSTEM,
        body=body,
        internal=True,
        channel=Ticket.Channel.EMAIL,
    )


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
) -> Ticket:
    kept, refused = _inbound_attachments_sort(attachments)
    text = body or INBOUND_NO_TEXT
    # Thread first: a reply on a ticket is a reply, whatever words it uses.
    ticket = _inbound_thread(subject, headers, sender)
    if ticket is not None:
        message = ticket_reply_add(
            ticket=ticket,
            body=text,
            actor=_INBOUND_ACTOR,
            author=Message.Author.CUSTOMER,
            channel=Ticket.Channel.EMAIL,
            email_message_id=key,
        )
        outcome = "reply"
    else:
        _, domain = _address_local_base(sender)
        rate_limit_hits(("inbound_per_sender", sender), ("inbound_per_sender_domain", domain))
        names = _inbound_opt_out_lists(recipients, subject, body)
        if names:
            ticket, message, outcome = _inbound_opt_out(
                names=names, sender=sender, subject=subject, body=text, key=key
            )
        else:
            owner = customer_get_by_email(email=sender)
            ticket = request_general(
                subject=subject or INBOUND_NO_SUBJECT,
                body=text,
                contact_email=_valid_address(sender),
                actor=_INBOUND_ACTOR,
                customer=owner,
                channel=Ticket.Channel.EMAIL,
                language=owner.language if owner else None,
                email_message_id=key,
            )
            message = ticket.messages.filter(author=Message.Author.CUSTOMER).latest("id")
            outcome = "new_ticket"
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
        },
    )
    return ticket


def _inbound_ignored(*, reason: str, sender: str, message_id: str) -> None:
    with transaction.atomic():
        audit_record(
            actor=_INBOUND_ACTOR,
            action="inbound.ignored",
            details={"reason": reason, "from": sender, "message_id": (message_id or "")[:255]},
        )


def inbound_email_receive(
    *,
    message_id: str,
    from_email: str,
    to_emails: list[str],
    subject: str,
    text: str,
    html: str,
    headers: dict[str, Any],
    attachments: list[tuple[str, str, bytes]],
    envelope_recipient: str,
) -> Ticket | None:
    """Turn one inbound email into an opt-out, a reply on its ticket, or a new ticket.

    Auto-replies, bounces, reports, mail looping back to us and new mail past a sender's or
    a sender domain's limit are dropped (None, audited as inbound.ignored). Idempotent by
    unique key: a redelivered Message-ID from the same sender returns the ticket it made.
    """
    headers = _inbound_headers(headers)
    sender = (from_email or "").strip()[:254]
    reason = _inbound_ignore_reason(sender, headers, attachments or [])
    if reason:
        _inbound_ignored(reason=reason, sender=sender, message_id=message_id)
        return None
    key = _inbound_message_key(message_id, sender)
    existing = _inbound_existing(key)
    if existing is not None:
        return existing
    subject = " ".join(CONTROL_CHARACTERS.sub(" ", subject or "").split())
    subject, card_in_subject = redact_card_numbers(subject)
    body, card_in_body = redact_card_numbers(_inbound_body(text, html))
    try:
        return _inbound_store(
            key=key,
            sender=sender,
            recipients=[*(to_emails or []), envelope_recipient or ""],
            subject=subject[:200],
            body=body,
            headers=headers,
            attachments=attachments or [],
            card_found=card_in_subject or card_in_body,
        )
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
