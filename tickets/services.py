"""Every write the help desk makes: one function per action, each owning its transaction."""

import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from html import unescape as html_unescape
from typing import Any, cast

import nh3
import phonenumbers
import pycountry
from anymail.exceptions import (
    AnymailAPIError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailRequestsAPIError,
)
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Field, OuterRef, QuerySet, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.models import Customer
from accounts.selectors import (
    customer_get_by_email,
    email_canonical,
    is_staff_member,
    is_supervisor,
)
from domains.models import Domain
from domains.opensrs import (
    DomainNotInAccount,
    OpenSRSAuthError,
    OpenSRSError,
    OpenSRSExchange,
    OpenSRSOutcomeUnknown,
    OpenSRSTransientError,
    client_from_settings,
)
from domains.validators import normalize_domain_name
from helpdesk.celery import app as celery_app
from helpdesk.exceptions import ApplicationError, TransitionNotAllowed
from helpdesk.ratelimit import rate_limit_hit, rate_limit_hits
from tickets import emails
from tickets.audit import Actor, audit_record
from tickets.lock_objects import customer_lock, notification_lock, ticket_lock
from tickets.models import (
    ActionLog,
    Attachment,
    Disclosure,
    FieldChange,
    Message,
    Notification,
    Ticket,
    Verification,
)
from tickets.redaction import REDACTED, contains_card_number, redact_card_numbers
from tickets.selectors import customer_export_data

logger = logging.getLogger(__name__)

S = Ticket.Status

# The ticket life of DESIGN.md: status -> statuses it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.AWAITING_VERIFICATION, S.OPEN, S.RESOLVED, S.REFERRED, S.REJECTED}),
    S.AWAITING_VERIFICATION: frozenset({S.OPEN, S.EXPIRED, S.RESOLVED, S.REFERRED, S.REJECTED}),
    S.OPEN: frozenset({S.RESOLVED, S.AWAITING_CUSTOMER, S.REJECTED, S.REFERRED}),
    S.AWAITING_CUSTOMER: frozenset({S.OPEN, S.RESOLVED, S.REJECTED, S.CLOSED}),
    S.RESOLVED: frozenset({S.CLOSED, S.OPEN, S.REFERRED}),
    S.REFERRED: frozenset({S.CLOSED, S.OPEN}),
    S.REJECTED: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
    S.EXPIRED: frozenset(),
}

TRANSITION_NOT_ALLOWED = gettext_noop("This ticket is {status}; it cannot be moved to {target}.")
STALE_TICKET = gettext_noop(
    "This ticket was changed by someone else since you opened it. Reload and try again."
)
REPLY_TO_CLOSED = gettext_noop("This ticket is closed; please open a new request.")
EMPTY_MESSAGE = gettext_noop("The message is empty.")
# A ticket in one of these takes internal notes only; the requester opens a new request.
NO_REPLY_STATUSES = frozenset({S.CLOSED, S.EXPIRED, S.REJECTED})


def ticket_due_at(*, kind: str, priority: str, start: datetime | None = None) -> datetime:
    """When a ticket of this kind and priority is due under the SLA settings."""
    hours = settings.SLA_HOURS.get(priority, 24)
    hours = min(hours, settings.SLA_HOURS_BY_KIND.get(kind, hours))
    return (start or timezone.now()) + timedelta(hours=hours)


# --- notifications (the outbox) -------------------------------------------------------------


# After a publish fails, the request path skips publishing for a few seconds instead of making
# every request wait for the broker's connect timeout; the rows wait in the outbox and the
# sweeps, which always try, queue them once the broker is back.
BROKER_RETRY_AFTER_SECONDS = 5.0
_broker_down_until = 0.0
# Tasks queued by a sweep in one round trip to the broker.
_PUBLISH_BATCH = 100


def _publish(messages: list[tuple[Any, dict[str, Any]]], *, what: str, sweep: bool = False) -> bool:
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


def _notification_task(notification_id: int) -> tuple[Any, dict[str, Any]]:
    from tickets.tasks import notification_send as notification_send_task

    return notification_send_task, {"notification_id": notification_id}


def _enqueue_notifications(notification_ids: list[int], *, sweep: bool = False) -> None:
    _publish(
        [_notification_task(pk) for pk in notification_ids],
        what=f"notifications {notification_ids[:5]}",
        sweep=sweep,
    )


def notification_queue(
    *,
    template: str,
    recipient: str,
    context: dict[str, Any],
    ticket: Ticket | None = None,
    key: str | None = None,
    language: str | None = None,
    headers: dict[str, str] | None = None,
    publish: bool = True,
) -> Notification:
    """Write an outbox row in the caller's transaction and send it once that commits.

    With `publish=False` the caller queues its task (`_notification_task`) after the commit.
    """
    if ticket is not None:
        context = {"reference": ticket.reference, **context}
    now = timezone.now()
    notification = Notification(
        ticket=ticket,
        template=template,
        recipient=recipient,
        context=context,
        headers=headers or {},
        language=language or (ticket.language if ticket else "en"),
        idempotency_key=key
        or f"{template}:{ticket.reference if ticket else ''}:{now.timestamp()}"
        f":{random.getrandbits(32)}",
        next_attempt_at=now,
    )
    notification.save(force_insert=True)
    if publish:
        transaction.on_commit(lambda: _enqueue_notifications([notification.pk]))
    return notification


# Context keys holding single-use secrets (verification and password-reset links).
SECRET_CONTEXT_KEYS = frozenset({"link"})


class NotificationRetry(Exception):
    """A transient sending error; try again after `countdown` seconds."""

    def __init__(self, countdown: int, error: str) -> None:
        super().__init__(error)
        self.countdown = countdown


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, AnymailRequestsAPIError):
        code = exc.status_code
        return code is None or code == 429 or code >= 500
    if isinstance(exc, AnymailAPIError):
        return True
    return isinstance(exc, (ConnectionError, TimeoutError, OSError))


def _backoff(attempt: int) -> int:
    """Exponential backoff with full jitter: 0..min(600, base * 2^attempt) seconds (base 5)."""
    base = getattr(settings, "NOTIFICATION_BACKOFF_SECONDS", 5)
    return max(1, int(random.uniform(0, min(600, base * 2**attempt))))  # noqa: S311


def notification_send(*, notification_id: int) -> str:
    """Send one outbox row at most once.

    Idempotent by claim (conditional update pending -> sending): a redelivered task finds the
    row already claimed or sent and does nothing. Returns the row's final status.
    """
    now = timezone.now()
    claimed = Notification.objects.filter(
        pk=notification_id, status=Notification.Status.PENDING
    ).update(status=Notification.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    if claimed != 1:
        return "skipped"
    notification = Notification.objects.select_related("ticket__customer").get(pk=notification_id)
    if _mailing_opted_out_since(notification):
        _notification_fail(notification, "the recipient opted out before it was sent")
        return Notification.Status.FAILED
    # The send happens outside any transaction: a failed commit must not cause a second send.
    try:
        message = emails.build_message(notification)
        message.send()
    except AnymailRecipientsRefused as exc:
        notification_bounced(notification=notification, reason=f"refused at send time: {exc}")
        return Notification.Status.BOUNCED
    except AnymailInvalidAddress as exc:
        _notification_fail(notification, str(exc))
        return Notification.Status.FAILED
    except Exception as exc:
        if not _is_transient(exc):
            _notification_fail(notification, f"{type(exc).__name__}: {exc}")
            return Notification.Status.FAILED
        if notification.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
            _notification_fail(
                notification, f"gave up after {notification.attempts} attempts: {exc}"
            )
            return Notification.Status.FAILED
        countdown = _backoff(notification.attempts)
        Notification.objects.filter(pk=notification.pk).update(
            status=Notification.Status.PENDING,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            next_attempt_at=timezone.now() + timedelta(seconds=countdown),
        )
        raise NotificationRetry(countdown, str(exc)) from exc
    status = message.anymail_status
    # One recipient, so one id; the test backend's ids are integers.
    message_id = "" if isinstance(status.message_id, set | None) else str(status.message_id)
    if not _notification_mark_sent(notification, message_id):
        logger.info("%s was already recorded from an ESP event", notification.uuid)
    logger.info("sent %s to %s (%s)", notification.template, notification.recipient, message_id)
    return Notification.Status.SENT


# Rows that may still be marked sent: claimed, or handed back to the outbox by the sweep.
_UNMARKED = (Notification.Status.PENDING, Notification.Status.SENDING)


def _notification_mark_sent(
    notification: Notification, message_id: str, evidence: str = ""
) -> bool:
    """Record a handed-over email and its audit row, as soon after the hand-over as possible.

    Both the worker (right after the ESP accepted the email) and an ESP tracking event (for a
    row whose worker died before it could record the send: `evidence`) come here; whichever is
    first records it, once. False when the row was already recorded. On PostgreSQL the change
    and its audit row are one statement (one round trip).
    """
    # A link carrying a live token is needed only until the email is handed over.
    context = {k: v for k, v in notification.context.items() if k not in SECRET_CONTEXT_KEYS}
    now = timezone.now()
    details = {
        "notification": str(notification.uuid),
        "template": notification.template,
        "to": notification.recipient,
        "esp_message_id": message_id,
        "attempt": notification.attempts,
    }
    if evidence:
        details["recorded_from"] = evidence
    audit: dict[str, Any] = {
        "actor": "worker",
        "action": "notification.sent",
        "ticket": notification.ticket,
        "details": details,
    }
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Notification._meta.db_table)
        mark = (
            f"UPDATE {table} SET status = %s, esp_message_id = %s, sent_at = %s, "  # noqa: S608
            "context = %s::jsonb, updated_at = %s WHERE id = %s AND status IN (%s, %s) "
            "RETURNING id",
            [
                Notification.Status.SENT,
                message_id,
                now,
                json.dumps(context),
                now,
                notification.pk,
                *_UNMARKED,
            ],
        )
        return audit_record(**audit, along_with=mark, along_required=True) is not None
    with transaction.atomic():
        marked = Notification.objects.filter(pk=notification.pk, status__in=_UNMARKED).update(
            status=Notification.Status.SENT, esp_message_id=message_id, sent_at=now, context=context
        )
        if marked:
            audit_record(**audit)
    return bool(marked)


def _mailing_opted_out_since(notification: Notification) -> bool:
    """Whether a queued mailing's recipient left the list after it was queued."""
    context = notification.context
    if notification.template != "mailing" or "customer" not in context:
        return False
    list_name = context.get("list_name")
    if list_name not in ("product_mailings", "reseller_newsletters"):
        return False
    return not Customer.objects.filter(number=context["customer"], **{list_name: True}).exists()


def _notification_fail(notification: Notification, error: str) -> None:
    with transaction.atomic():
        Notification.objects.filter(pk=notification.pk).update(
            status=Notification.Status.FAILED, last_error=error[:2000]
        )
        audit_record(
            actor="worker",
            action="notification.failed",
            ticket=notification.ticket,
            details={
                "notification": str(notification.uuid),
                "template": notification.template,
                "to": notification.recipient,
                "error": error[:500],
            },
        )


def notification_mark_failed(*, notification_id: int, error: str) -> None:
    """Give up on a row whose task ran out of retries."""
    notification = Notification.objects.select_related("ticket__customer").get(pk=notification_id)
    if notification.status in (Notification.Status.PENDING, Notification.Status.SENDING):
        _notification_fail(notification, error)


# Templates whose recipient is a domain's registration address: a bounce there means the
# address on record is dead. The password-resend flow registers its handler here.
BOUNCE_HANDLERS: dict[str, Any] = {}


@transaction.atomic
def notification_bounced(*, notification: Notification, reason: str) -> None:
    """Record a bounce or a send-time refusal, and let the flow that sent it react."""
    Notification.objects.filter(pk=notification.pk).update(
        status=Notification.Status.BOUNCED, last_error=reason[:2000]
    )
    audit_record(
        actor="worker",
        action="notification.bounced",
        ticket=notification.ticket,
        details={
            "notification": str(notification.uuid),
            "template": notification.template,
            "to": notification.recipient,
            "reason": reason[:500],
        },
    )
    handler = BOUNCE_HANDLERS.get(notification.template)
    if handler is not None:
        handler(notification=notification, reason=reason)


def notifications_requeue_due(*, batch_size: int = 500) -> int:
    """Re-queue outbox rows whose task never ran (broker down at commit, worker killed)."""
    now = timezone.now()
    stale_claim = now - settings.NOTIFICATION_SENDING_STALE_AFTER
    # A worker killed mid-send leaves its row claimed: hand it back (at-least-once delivery).
    Notification.objects.filter(
        status=Notification.Status.SENDING, claimed_at__lt=stale_claim
    ).update(status=Notification.Status.PENDING, next_attempt_at=now)
    due = list(
        Notification.objects.due_for_sweep(older_than=now - settings.NOTIFICATION_SWEEP_AFTER)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:batch_size]
    )
    if due:
        # Push the next sweep back so a slow worker does not get the same row twice a minute.
        Notification.objects.filter(pk__in=due, status=Notification.Status.PENDING).update(
            next_attempt_at=now
        )
    for start in range(0, len(due), _PUBLISH_BATCH):
        _enqueue_notifications(due[start : start + _PUBLISH_BATCH], sweep=True)
    return len(due)


# --- tickets ---------------------------------------------------------------------------------


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
) -> Ticket:
    """Open a ticket, with its first message and its audit row, in one transaction."""
    now = timezone.now()
    ticket = Ticket(
        kind=kind,
        subject=subject[:200],
        customer=customer,
        domain=domain,
        contact_email=contact_email,
        requested_domain=requested_domain[:253],
        channel=channel,
        priority=priority,
        status=status,
        language=language or (customer.language if customer else "en"),
        due_at=ticket_due_at(kind=kind, priority=priority, start=now),
        created_at=now,
    )
    ticket.full_clean()
    ticket.save(force_insert=True)
    if body:
        Message.objects.create(
            ticket=ticket,
            author=Message.Author.CUSTOMER,
            body=body,
            channel=channel,
        )
    audit_record(
        actor=actor,
        action="ticket.created",
        ticket=ticket,
        details={"kind": kind, "status": status, "channel": channel, **(details or {})},
    )
    return ticket


def _check_version(ticket: Ticket, expected_version: int | None) -> None:
    if expected_version is not None and ticket.version != expected_version:
        raise ApplicationError(STALE_TICKET, {"version": ticket.version})


def _transition(
    ticket: Ticket,
    *,
    to: str,
    actor: Actor,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> Ticket:
    """Move a locked ticket to `to`, or raise TransitionNotAllowed; writes the audit row."""
    old = ticket.status
    if to not in TRANSITIONS[old]:
        raise TransitionNotAllowed(
            gettext(TRANSITION_NOT_ALLOWED).format(status=S(old).label, target=S(to).label),
            {"status": old, "target": to},
        )
    now = timezone.now()
    ticket.status = to
    ticket.version += 1
    fields = ["status", "version", "updated_at"]
    if to == S.RESOLVED:
        ticket.resolved_at = now
        fields.append("resolved_at")
    if to == S.CLOSED:
        ticket.closed_at = now
        fields.append("closed_at")
    if to == S.OPEN and old in (S.RESOLVED, S.REFERRED):
        ticket.resolved_at = None
        fields.append("resolved_at")
    ticket.save(update_fields=fields)
    audit_record(
        actor=actor,
        action="ticket.status_changed",
        ticket=ticket,
        details={
            "from": old,
            "to": to,
            **({"reason": reason} if reason else {}),
            **(details or {}),
        },
    )
    return ticket


@transaction.atomic
def ticket_transition(
    *,
    ticket: Ticket,
    to: str,
    actor: Actor,
    reason: str = "",
    expected_version: int | None = None,
) -> Ticket:
    """Move a ticket to another status under a row lock (generic; flows add their own effects)."""
    locked = ticket_lock(pk=ticket.pk)
    _check_version(locked, expected_version)
    return _transition(locked, to=to, actor=actor, reason=reason)


def _status_notice(ticket: Ticket, *, template: str, extra: dict[str, Any] | None = None) -> None:
    if ticket.contact_email:
        notification_queue(
            ticket=ticket,
            template=template,
            recipient=ticket.contact_email,
            context={"subject": ticket.subject, "status": ticket.status, **(extra or {})},
        )


@transaction.atomic
def ticket_resolve(
    *, ticket: Ticket, actor: Actor, note: str = "", expected_version: int | None = None
) -> Ticket:
    """Mark a ticket resolved and tell the requester."""
    locked = ticket_lock(pk=ticket.pk)
    _check_version(locked, expected_version)
    _transition(locked, to=S.RESOLVED, actor=actor, reason=note)
    _status_notice(locked, template="ticket_resolved", extra={"note": note})
    return locked


@transaction.atomic
def ticket_close(*, ticket: Ticket, actor: Actor, expected_version: int | None = None) -> Ticket:
    """Close a ticket for good."""
    locked = ticket_lock(pk=ticket.pk)
    _check_version(locked, expected_version)
    return _transition(locked, to=S.CLOSED, actor=actor)


@transaction.atomic
def ticket_reject(
    *, ticket: Ticket, actor: Actor, reason: str, expected_version: int | None = None
) -> Ticket:
    """Refuse a request, telling the requester why."""
    if not reason.strip():
        raise ApplicationError(
            gettext("Give the reason for the rejection; the requester will read it.")
        )
    locked = ticket_lock(pk=ticket.pk)
    _check_version(locked, expected_version)
    _transition(locked, to=S.REJECTED, actor=actor, reason=reason)
    _status_notice(locked, template="ticket_rejected", extra={"reason": reason})
    return locked


@transaction.atomic
def ticket_reopen(*, ticket: Ticket, actor: Actor, expected_version: int | None = None) -> Ticket:
    """Put a resolved or referred ticket back in the queue."""
    locked = ticket_lock(pk=ticket.pk)
    _check_version(locked, expected_version)
    return _transition(locked, to=S.OPEN, actor=actor)


@transaction.atomic
def ticket_assign(
    *,
    ticket: Ticket,
    assignee: User | None,
    actor: Actor,
    expected_version: int | None = None,
) -> Ticket:
    """Give a ticket to a staff member (or nobody)."""
    if assignee is not None and not assignee.is_staff:
        raise ApplicationError(gettext("Tickets can only be assigned to staff."))
    locked = ticket_lock(pk=ticket.pk)
    _check_version(locked, expected_version)
    if not locked.is_open:
        raise TransitionNotAllowed(
            gettext("A {status} ticket cannot be assigned.").format(
                status=S(locked.status).label.lower()
            )
        )
    old = locked.assignee.get_username() if locked.assignee else None
    locked.assignee = assignee
    locked.version += 1
    locked.save(update_fields=["assignee", "version", "updated_at"])
    audit_record(
        actor=actor,
        action="ticket.assigned",
        ticket=locked,
        details={"from": old, "to": assignee.get_username() if assignee else None},
    )
    return locked


@transaction.atomic
def ticket_priority_set(
    *, ticket: Ticket, priority: str, actor: Actor, expected_version: int | None = None
) -> Ticket:
    """Change a ticket's priority; the SLA due time follows."""
    if priority not in Ticket.Priority.values:
        raise ApplicationError(gettext("Unknown priority {priority}.").format(priority=priority))
    locked = ticket_lock(pk=ticket.pk)
    _check_version(locked, expected_version)
    old = locked.priority
    locked.priority = priority
    locked.due_at = ticket_due_at(kind=locked.kind, priority=priority, start=locked.created_at)
    locked.version += 1
    locked.save(update_fields=["priority", "due_at", "version", "updated_at"])
    audit_record(
        actor=actor,
        action="ticket.priority_changed",
        ticket=locked,
        details={"from": old, "to": priority},
    )
    return locked


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
) -> Message:
    """Add a message to a ticket; a staff reply is mailed, a customer reply reopens it.

    Card numbers in the body are redacted here, whichever way the message came in.
    """
    body, _card_found = redact_card_numbers(body)
    if not body.strip():
        raise ApplicationError(EMPTY_MESSAGE)
    locked = ticket_lock(pk=ticket.pk)
    _check_version(locked, expected_version)
    if locked.status in NO_REPLY_STATUSES and not internal:
        raise TransitionNotAllowed(REPLY_TO_CLOSED)
    message = Message.objects.create(
        ticket=locked,
        author=author,
        author_user=author_user,
        body=body,
        internal=internal,
        channel=channel,
        email_message_id=email_message_id,
    )
    locked.version += 1
    locked.save(update_fields=["version", "updated_at"])
    audit_record(
        actor=actor,
        action="ticket.note_added" if internal else "ticket.message_added",
        ticket=locked,
        details={"message": message.pk, "author": author, "channel": channel},
    )
    if internal:
        return message
    if author == Message.Author.STAFF:
        if locked.status == S.OPEN:
            _transition(locked, to=S.AWAITING_CUSTOMER, actor=actor)
        recipient = locked.contact_email or (locked.customer.email if locked.customer else "")
        if recipient:
            notification_queue(
                ticket=locked,
                template="ticket_reply",
                recipient=recipient,
                context={"subject": locked.subject, "body": body},
            )
    elif author == Message.Author.CUSTOMER and locked.status in (S.AWAITING_CUSTOMER, S.RESOLVED):
        _transition(locked, to=S.OPEN, actor=actor, reason="customer replied")
    return message


@transaction.atomic
def request_general(
    *,
    subject: str,
    body: str,
    contact_email: str,
    actor: Actor,
    customer: Customer | None = None,
    channel: str = Ticket.Channel.PORTAL,
    language: str | None = None,
    email_message_id: str | None = None,
    client_key: str | None = None,
) -> Ticket:
    """Log a general help request and acknowledge it to the address given.

    :param client_key: the requester's address, rate-limited when the request came from outside.
    """
    if client_key is not None:
        rate_limit_hit(scope="request_per_client", key=client_key)
    subject, _found = redact_card_numbers(subject)
    body, _found = redact_card_numbers(body)
    if not subject.strip() or not body.strip():
        raise ApplicationError(gettext("A subject and a message are both needed."))
    ticket = ticket_create(
        kind=Ticket.Kind.GENERAL,
        subject=subject.strip(),
        actor=actor,
        customer=customer,
        contact_email=contact_email or (customer.email if customer else ""),
        channel=channel,
        status=S.OPEN,
        language=language,
    )
    Message.objects.create(
        ticket=ticket,
        author=Message.Author.CUSTOMER,
        body=body,
        channel=channel,
        email_message_id=email_message_id,
    )
    if ticket.contact_email:
        notification_queue(
            ticket=ticket,
            template="ticket_received",
            recipient=ticket.contact_email,
            context={"subject": ticket.subject},
            key=f"ticket_received:{ticket.reference}",
        )
    return ticket


# --- verification ----------------------------------------------------------------------------

VERIFICATION_INVALID = gettext_noop(
    "This link is not valid: it may have been used already or have expired. "
    "Please make a new request."
)
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")
_VERIFY_TEMPLATES: dict[str, str] = {
    Verification.Purpose.REQUESTER: "verify_request",
    Verification.Purpose.NEW_EMAIL: "verify_new_email",
}

# Ticket kind -> handler(ticket=, verification=, actor=), run in the confirming transaction once
# the requester has proved they read the email on record. Flows register themselves here.
VERIFIED_HANDLERS: dict[str, Any] = {}


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def verification_start(
    *, ticket: Ticket, purpose: str = Verification.Purpose.REQUESTER, send_to: str
) -> Verification:
    """Mail a single-use link for `ticket` to `send_to`, an address taken from the record."""
    token = secrets.token_urlsafe(32)
    verification = Verification(
        ticket=ticket,
        purpose=purpose,
        sent_to=send_to,
        token_hash=_token_hash(token),
        expires_at=timezone.now() + settings.VERIFICATION_TTL,
    )
    verification.full_clean()
    verification.save(force_insert=True)
    audit_record(
        actor="system",
        action="verification.sent",
        ticket=ticket,
        details={"purpose": purpose, "to": send_to, "expires_at": verification.expires_at},
    )
    notification_queue(
        ticket=ticket,
        template=_VERIFY_TEMPLATES[purpose],
        recipient=send_to,
        context={
            "subject": ticket.subject,
            "link": settings.SITE_URL + reverse("portal:verify", args=[token]),
            "hours": int(settings.VERIFICATION_TTL.total_seconds() // 3600),
        },
        key=f"verify:{verification.pk}",
    )
    return verification


def _verification_refusal(ticket: Ticket, verification: Verification) -> str:
    """Why a presented token may not be used, or "" when it may."""
    failures = (
        Verification.objects.filter(ticket=ticket).aggregate(total=Sum("attempts"))["total"] or 0
    )
    if failures >= settings.VERIFICATION_MAX_ATTEMPTS:
        return "locked"
    if verification.used_at is not None:
        return "used"
    if verification.expires_at <= timezone.now():
        return "expired"
    if verification.purpose == Verification.Purpose.REQUESTER:
        if ticket.status != S.AWAITING_VERIFICATION:
            return "ticket_not_awaiting_verification"
    elif ticket.status not in (S.OPEN, S.AWAITING_CUSTOMER):
        return "ticket_not_open"
    return ""


def _verification_consume(digest: str, actor: Actor) -> Ticket | None:
    # Committed even when refused: a refusal counts as a failed attempt.
    with transaction.atomic():
        found = Verification.objects.filter(token_hash=digest).values("pk", "ticket_id").first()
        if found is None:
            return None
        ticket = ticket_lock(pk=found["ticket_id"])
        verification = Verification.objects.select_for_update().get(pk=found["pk"])
        if not hmac.compare_digest(verification.token_hash, digest):
            return None
        refusal = _verification_refusal(ticket, verification)
        if refusal:
            Verification.objects.filter(pk=verification.pk).update(attempts=F("attempts") + 1)
            audit_record(
                actor=actor,
                action="verification.refused",
                ticket=ticket,
                details={"purpose": verification.purpose, "reason": refusal},
            )
            return None
        verification.used_at = timezone.now()
        verification.save(update_fields=["used_at", "updated_at"])
        audit_record(
            actor=actor,
            action="verification.confirmed",
            ticket=ticket,
            details={"purpose": verification.purpose, "address": verification.sent_to},
        )
        if verification.purpose == Verification.Purpose.NEW_EMAIL:
            _modify_new_email_confirmed(ticket=ticket, verification=verification, actor=actor)
            return ticket
        _transition(ticket, to=S.OPEN, actor=actor, reason="verified by the email on record")
        handler = VERIFIED_HANDLERS.get(ticket.kind)
        if handler is not None:
            handler(ticket=ticket, verification=verification, actor=actor)
        return ticket


def verification_confirm(*, token: str, client_key: str, actor: Actor) -> Ticket:
    """Use a verification link: the ticket leaves awaiting_verification and its flow goes on."""
    rate_limit_hit(scope="verify_per_client", key=client_key)
    ticket = None
    if isinstance(token, str) and _TOKEN_SHAPE.match(token):
        ticket = _verification_consume(_token_hash(token), actor)
    if ticket is None:
        raise ApplicationError(gettext(VERIFICATION_INVALID))
    return ticket


def verifications_expire(*, batch_size: int = 500) -> int:
    """Expire tickets still awaiting verification once their last link has expired."""
    now = timezone.now()
    live = Verification.objects.filter(ticket=OuterRef("pk"), expires_at__gt=now)
    due = list(
        Ticket.objects.filter(
            status=S.AWAITING_VERIFICATION, created_at__lte=now - settings.VERIFICATION_TTL
        )
        .filter(~Exists(live))
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    expired = 0
    for pk in due:
        with transaction.atomic():
            ticket = ticket_lock(pk=pk)
            if ticket.status != S.AWAITING_VERIFICATION:
                continue
            _transition(ticket, to=S.EXPIRED, actor="system", reason="not verified in time")
            expired += 1
    return expired


# --- modify personal information -------------------------------------------------------------

MODIFY_FIELDS = (
    "full_name",
    "email",
    "phone",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postcode",
    "country",
)
MODIFY_LOW_RISK = frozenset(
    {"phone", "address_line1", "address_line2", "city", "state", "postcode", "country"}
)
MODIFY_SENSITIVE = frozenset({"full_name", "email"})
MODIFY_FIELD_LABELS = {
    "full_name": gettext_noop("Full name"),
    "email": gettext_noop("Email address"),
    "phone": gettext_noop("Phone"),
    "address_line1": gettext_noop("Address line 1"),
    "address_line2": gettext_noop("Address line 2"),
    "city": gettext_noop("City"),
    "state": gettext_noop("State"),
    "postcode": gettext_noop("Postcode"),
    "country": gettext_noop("Country"),
}
MODIFY_SUBJECT = gettext_noop("Change of personal information")
MODIFY_UNKNOWN_FIELD = "Unknown field: {field}"
MODIFY_NO_CHANGES = gettext_noop("Give at least one field to change and its new value.")
MODIFY_SAME_VALUES = gettext_noop(
    "These are already the details we hold; there is nothing to change."
)
MODIFY_EMAIL_ON_RECORD = gettext_noop("Enter the email address we have on record for you.")
MODIFY_INVALID_PHONE = gettext_noop("Enter a valid phone number, e.g. +60 3-1234 5678.")
MODIFY_INVALID_COUNTRY = gettext_noop("Enter a country name or its two-letter code, e.g. MY.")
MODIFY_INVALID_EMAIL = gettext_noop("Enter a valid email address.")
MODIFY_INVALID_CHARACTERS = gettext_noop("Remove the control characters from this value.")
MODIFY_REQUIRED = gettext_noop("This cannot be empty.")
MODIFY_TOO_LONG = gettext_noop("Use at most {limit} characters.")
MODIFY_STAFF_ONLY = gettext_noop("Only help-desk staff can approve changes.")
MODIFY_NEEDS_SUPERVISOR = gettext_noop(
    "Only a supervisor can approve a change of name or email address."
)
MODIFY_NEW_EMAIL_UNCONFIRMED = gettext_noop(
    "The new email address has not confirmed its link yet; the change cannot be applied."
)
MODIFY_CONFLICT = gettext_noop(
    "The details on record changed since this request was made ({fields}); nothing was applied. "
    "Reject the request and ask the customer to check their details."
)
MODIFY_EMAIL_TAKEN = gettext_noop("The new email address already belongs to another account.")
NOTHING_TO_APPROVE = gettext_noop("There is nothing to approve on this ticket.")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


class ApprovalForbidden(ApplicationError):
    """The actor's role may not approve this change (HTTP 403)."""

    status_code = 403


class ModifyConflict(ApplicationError):
    """The record changed since the request; staff must look again (HTTP 409)."""

    status_code = 409


def _modify_value_error(field: str, message: str, **params: Any) -> ValidationError:
    # The code names the field so forms can show the message next to it.
    return ValidationError(
        "%(field)s: %(error)s",
        code=field,
        params={"field": field, "error": gettext(message).format(**params)},
    )


def _modify_clean_value(field: str, raw: Any) -> str:
    """One submitted value, normalised as the record stores it; raises ValidationError."""
    if not isinstance(raw, str):
        raise _modify_value_error(field, MODIFY_REQUIRED)
    value = raw.strip()
    if _CONTROL_CHARACTERS.search(value):
        raise _modify_value_error(field, MODIFY_INVALID_CHARACTERS)
    if field == "full_name":
        value = " ".join(value.split())
    elif field == "phone" and value:
        try:
            number = phonenumbers.parse(value, "MY")
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            raise _modify_value_error(field, MODIFY_INVALID_PHONE)
        value = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    elif field == "country" and value:
        try:
            value = pycountry.countries.lookup(value).alpha_2
        except LookupError:
            raise _modify_value_error(field, MODIFY_INVALID_COUNTRY) from None
    elif field == "email" and value:
        value = _modify_clean_email(value)
    if not value and field in MODIFY_SENSITIVE:
        raise _modify_value_error(field, MODIFY_REQUIRED)
    # Every field in MODIFY_FIELDS is a CharField with a max_length.
    limit = cast(int, cast("Field[Any, Any]", Customer._meta.get_field(field)).max_length)
    if len(value) > limit:
        raise _modify_value_error(field, MODIFY_TOO_LONG, limit=limit)
    return value


def _modify_clean_email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii").lower()
        validate_email(f"{local}@{domain}")
    except (UnicodeError, ValidationError):
        raise _modify_value_error("email", MODIFY_INVALID_EMAIL) from None
    return f"{local}@{domain}"


def modify_input_has_card(*, changes: Any, note: str) -> bool:
    """Whether the request carried a card number (it is redacted; the requester is told)."""
    texts = [note or ""]
    if isinstance(changes, dict):
        texts += [str(k) for k in changes] + [v for v in changes.values() if isinstance(v, str)]
    return contains_card_number(*texts)


def _modify_validate(changes: Any, current: dict[str, str] | None = None) -> dict[str, str]:
    """Redact card numbers, refuse unknown fields, normalise every value.

    Values typed exactly as `current` holds them are kept as they are, so an owner re-sending a
    prefilled form is not refused over a value on record that predates today's rules.
    """
    if not isinstance(changes, dict) or not changes:
        raise ValidationError({"changes": [gettext(MODIFY_NO_CHANGES)]})
    unknown = [redact_card_numbers(str(k))[0][:64] for k in changes if k not in MODIFY_FIELDS]
    if unknown:
        raise ValidationError(
            {"changes": [MODIFY_UNKNOWN_FIELD.format(field=name) for name in unknown]}
        )
    cleaned: dict[str, str] = {}
    errors: list[ValidationError] = []
    for field in MODIFY_FIELDS:
        if field not in changes:
            continue
        raw = changes[field]
        if isinstance(raw, str):
            raw = redact_card_numbers(raw)[0]
            if current is not None and raw.strip() == current[field]:
                cleaned[field] = current[field]
                continue
        try:
            cleaned[field] = _modify_clean_value(field, raw)
        except ValidationError as exc:
            errors.append(exc)
    if errors:
        raise ValidationError({"changes": errors})
    return cleaned


def _clean_note(note: str) -> str:
    note = redact_card_numbers(note or "")[0].replace("\x00", "")
    return note.encode("utf-8", "replace").decode("utf-8").strip()


def _customer_values(customer: Customer) -> dict[str, str]:
    return {field: getattr(customer, field) for field in MODIFY_FIELDS}


def _modify_changes_record(
    ticket: Ticket, customer: Customer, diff: dict[str, str], actor: Actor
) -> None:
    current = _customer_values(customer)
    rows = [
        FieldChange(ticket=ticket, field=field, old_value=current[field], new_value=value)
        for field, value in diff.items()
    ]
    FieldChange.objects.bulk_create(rows)
    audit_record(
        actor=actor,
        action="modify.requested",
        ticket=ticket,
        details={
            "changes": [{"field": r.field, "old": r.old_value, "new": r.new_value} for r in rows]
        },
    )


@transaction.atomic
def request_modify(
    *,
    email: str | None,
    customer: Customer | None,
    changes: dict[str, str],
    note: str,
    client_key: str,
    actor: Actor,
    channel: str = Ticket.Channel.PORTAL,
) -> Ticket:
    """Log a change of personal information.

    A logged-in owner (`customer`) is verified by the session: the ticket opens at once. Anyone
    else gives the email on record; a link goes to that record and the answer is the same
    whether or not it exists. Raises ValidationError keyed `email` (the address given) or
    `changes` (each error's code names the field).
    """
    rate_limit_hit(scope="request_per_client", key=client_key)
    if customer is None:
        email = (email or "").strip()
        if "@" not in email or len(email) > 254 or _CONTROL_CHARACTERS.search(email):
            raise ValidationError({"email": [gettext(MODIFY_EMAIL_ON_RECORD)]})
        rate_limit_hit(scope="request_per_email", key=email_canonical(email))
    else:
        rate_limit_hit(scope="request_per_email", key=email_canonical(customer.email))
    cleaned = _modify_validate(changes, _customer_values(customer) if customer else None)
    note = _clean_note(note)
    if customer is not None:
        diff = {f: v for f, v in cleaned.items() if v != getattr(customer, f)}
        if not diff:
            raise ValidationError({"changes": [gettext(MODIFY_SAME_VALUES)]})
        ticket = ticket_create(
            kind=Ticket.Kind.MODIFY_INFO,
            subject=MODIFY_SUBJECT,
            actor=actor,
            customer=customer,
            contact_email=customer.email,
            body=note,
            channel=channel,
            status=S.OPEN,
            details={"verified_by": "session"},
        )
        _modify_changes_record(ticket, customer, diff, actor)
        _modify_after_verified(ticket, actor)
        return ticket
    # No customer: `email` was cleaned to a string above.
    owner = customer_get_by_email(email=cast(str, email))
    diff = {f: v for f, v in cleaned.items() if owner and v != getattr(owner, f)}
    if owner is None or not diff:
        # The same answer as for a real request, but nothing is kept or sent: it just expires.
        return ticket_create(
            kind=Ticket.Kind.MODIFY_INFO,
            subject=MODIFY_SUBJECT,
            actor=actor,
            channel=channel,
            status=S.AWAITING_VERIFICATION,
        )
    ticket = ticket_create(
        kind=Ticket.Kind.MODIFY_INFO,
        subject=MODIFY_SUBJECT,
        actor=actor,
        customer=owner,
        # The record, not what was typed: reject notices and replies go here.
        contact_email=owner.email,
        body=note,
        channel=channel,
        status=S.AWAITING_VERIFICATION,
    )
    _modify_changes_record(ticket, owner, diff, actor)
    verification_start(ticket=ticket, send_to=owner.email)
    return ticket


def _modify_pending(ticket: Ticket) -> list[FieldChange]:
    return list(ticket.changes.filter(applied_at__isnull=True).order_by("id"))


def _modify_after_verified(ticket: Ticket, actor: Actor) -> None:
    """The policy once the requester is verified: low-risk fields at once, the rest to staff."""
    pending = _modify_pending(ticket)
    if settings.MODIFY_AUTO_APPLY_LOW_RISK and ticket.customer_id:
        customer = customer_lock(pk=ticket.customer_id)
        auto = [
            change
            for change in pending
            if change.field in MODIFY_LOW_RISK
            and REDACTED not in change.new_value
            and getattr(customer, change.field) == change.old_value
        ]
        if auto:
            _modify_apply(ticket, customer, auto, actor="system", how="low-risk policy")
            pending = [change for change in pending if change not in auto]
    for change in pending:
        if change.field == "email":
            verification_start(
                ticket=ticket, purpose=Verification.Purpose.NEW_EMAIL, send_to=change.new_value
            )
    if not pending:
        _transition(ticket, to=S.RESOLVED, actor="system", reason="all changes applied")


def _modify_verified(*, ticket: Ticket, verification: Verification, actor: Actor) -> None:
    _modify_after_verified(ticket, actor)


VERIFIED_HANDLERS[Ticket.Kind.MODIFY_INFO] = _modify_verified


def _modify_new_email_confirmed(
    *, ticket: Ticket, verification: Verification, actor: Actor
) -> None:
    """The new address answered its link: the change now waits only for a supervisor."""
    ticket.version += 1
    ticket.save(update_fields=["version", "updated_at"])


def _modify_new_email_is_confirmed(ticket: Ticket, address: str) -> bool:
    return Verification.objects.filter(
        ticket=ticket,
        purpose=Verification.Purpose.NEW_EMAIL,
        sent_to=address,
        used_at__isnull=False,
    ).exists()


def _mask_email(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


def _modify_apply(
    ticket: Ticket, customer: Customer, changes: list[FieldChange], *, actor: Actor, how: str
) -> None:
    """Write the changes to the locked customer, audit old and new values, tell the owner."""
    old_email = customer.email
    rows = [
        {"field": c.field, "old": getattr(customer, c.field), "new": c.new_value} for c in changes
    ]
    for change in changes:
        setattr(customer, change.field, change.new_value)
    fields = [change.field for change in changes]
    email_changed = "email" in fields
    login = None
    if email_changed:
        other = customer_get_by_email(email=customer.email)
        if other is not None and other.pk != customer.pk:
            raise ApplicationError(MODIFY_EMAIL_TAKEN)
        login = _modify_login_for(customer, old_email)
    customer.save(update_fields=[*fields, "updated_at"])
    if login is not None:
        login.save(update_fields=["username", "email"])
    FieldChange.objects.filter(pk__in=[change.pk for change in changes]).update(
        applied_at=timezone.now(), updated_at=timezone.now()
    )
    audit_record(
        actor=actor,
        action="customer.details_changed",
        ticket=ticket,
        customer=customer,
        details={"how": how, "changes": rows, "login_updated": login is not None},
    )
    others = [row for row in rows if row["field"] != "email"]
    if others:
        notification_queue(
            ticket=ticket,
            template="details_changed",
            recipient=customer.email,
            context={
                "changes": [
                    {"label": MODIFY_FIELD_LABELS[row["field"]], "value": row["new"]}
                    for row in others
                ]
            },
        )
    if email_changed:
        notification_queue(
            ticket=ticket,
            template="email_changed_old",
            recipient=old_email,
            context={"new_email_masked": _mask_email(customer.email)},
        )
        notification_queue(
            ticket=ticket,
            template="email_changed_new",
            recipient=customer.email,
            context={},
        )
        ticket.contact_email = customer.email
        ticket.save(update_fields=["contact_email", "updated_at"])


def _modify_login_for(customer: Customer, old_email: str) -> Any:
    """The customer's portal login, updated in memory when it signs in with the old address."""
    if customer.user_id is None:
        return None
    user = get_user_model().objects.select_for_update().get(pk=customer.user_id)
    old = email_canonical(old_email)
    if email_canonical(user.get_username()) != old and email_canonical(user.email) != old:
        return None
    if email_canonical(user.get_username()) == old:
        taken = (
            get_user_model()
            .objects.filter(username__iexact=customer.email)
            .exclude(pk=user.pk)
            .exists()
        )
        if taken:
            raise ApplicationError(MODIFY_EMAIL_TAKEN)
        user.username = customer.email
    user.email = customer.email
    return user


@transaction.atomic
def modify_approve(*, ticket: Ticket, actor: Actor, expected_version: int | None = None) -> Ticket:
    """Apply a verified change request that waits for staff, atomically and at most once."""
    if isinstance(actor, str | Customer) or not is_staff_member(actor):
        raise ApprovalForbidden(MODIFY_STAFF_ONLY)
    locked = ticket_lock(pk=ticket.pk)
    if locked.kind != Ticket.Kind.MODIFY_INFO or locked.status not in (S.OPEN, S.AWAITING_CUSTOMER):
        raise TransitionNotAllowed(NOTHING_TO_APPROVE, {"status": locked.status})
    _check_version(locked, expected_version)
    pending = _modify_pending(locked)
    if not pending or locked.customer_id is None:
        raise TransitionNotAllowed(NOTHING_TO_APPROVE, {"status": locked.status})
    fields = [change.field for change in pending]
    if MODIFY_SENSITIVE & set(fields) and not is_supervisor(actor):
        raise ApprovalForbidden(MODIFY_NEEDS_SUPERVISOR)
    for change in pending:
        if change.field == "email" and not _modify_new_email_is_confirmed(locked, change.new_value):
            raise TransitionNotAllowed(MODIFY_NEW_EMAIL_UNCONFIRMED)
    customer = customer_lock(pk=locked.customer_id)
    conflicts = [c.field for c in pending if getattr(customer, c.field) != c.old_value]
    if conflicts:
        raise ModifyConflict(
            gettext(MODIFY_CONFLICT).format(fields=", ".join(conflicts)), {"fields": conflicts}
        )
    _modify_apply(locked, customer, pending, actor=actor, how="approved by staff")
    _transition(locked, to=S.RESOLVED, actor=actor, reason="changes applied")
    return locked


def ticket_approve(*, ticket: Ticket, actor: Actor, expected_version: int | None = None) -> Ticket:
    """Approve what a ticket asks for; only change requests have anything to approve."""
    if ticket.kind == Ticket.Kind.MODIFY_INFO:
        return modify_approve(ticket=ticket, actor=actor, expected_version=expected_version)
    raise TransitionNotAllowed(NOTHING_TO_APPROVE, {"kind": ticket.kind})


# --- password resend ---

RESEND_SUBJECT = "Password resend for {domain}"
RESEND_DETAIL = gettext_noop(
    "Your request is logged. If this domain is registered with us, a password reset link will be "
    "sent to the email address on its registration record, never to any other address."
)
RESEND_INVALID_DOMAIN = gettext_noop("Enter a domain name such as example.com.")
RESEND_INVALID_EMAIL = gettext_noop("Enter a valid email address, or leave it empty.")
# Tries of the worker task before the ticket is handed to staff (OpenSRS down for long).
PASSWORD_RESEND_MAX_TRIES = 6
RESEND_NOTE_RETRYING = "OpenSRS unreachable, retrying (try {attempt} of {tries}): {error}"
RESEND_NOTE_GAVE_UP = (
    "OpenSRS could not be reached after {tries} tries ({error}). No reset was sent. "
    "Check the OpenSRS status and send the reset from the reseller control panel."
)
RESEND_NOTE_OUTCOME_UNKNOWN = (
    "OpenSRS did not answer the SEND_PASSWORD request ({error}); it may or may not have sent "
    "the reset email. It was not retried, so the registrant is not mailed twice. Check with "
    "OpenSRS before sending it again."
)
RESEND_NOTE_AUTH = (
    "OpenSRS refused our reseller credentials ({error}). Fix the OPENSRS_* settings; nothing "
    "was sent."
)
RESEND_NOTE_REFUSED = "OpenSRS refused the request ({error}); nothing was sent."
_RESEND_SEND_MARK = "opensrs.send_password"
_RESEND_REFERRABLE = (S.OPEN, S.RESOLVED)


class PasswordResendRetry(Exception):
    """OpenSRS could not be reached and nothing was sent: try again after `countdown` s."""

    def __init__(self, countdown: int, error: str) -> None:
        super().__init__(error)
        self.countdown = countdown


def _domain_display(name: str) -> str:
    """The Unicode form of an IDNA name, for people to read."""
    try:
        return name.encode("ascii").decode("idna")
    except UnicodeError:
        return name


def _password_resend_task(ticket_id: int) -> tuple[Any, dict[str, Any]]:
    from tickets.tasks import password_resend_process as password_resend_task

    return password_resend_task, {"ticket_id": ticket_id}


def password_resend_requeue_due(*, batch_size: int = 200) -> int:
    """Queue the OpenSRS work of resend tickets whose task never ran (broker down at commit).

    Only tickets with no OpenSRS call on record are picked, so a ticket waiting for a retry
    is never worked twice at once.
    """
    cutoff = timezone.now() - settings.NOTIFICATION_SWEEP_AFTER
    untouched = (
        Ticket.objects.filter(kind=Ticket.Kind.RESEND_PASSWORD, status=S.NEW, created_at__lt=cutoff)
        .exclude(events__action__startswith="opensrs.")
        .order_by("created_at")
        .values_list("pk", flat=True)[:batch_size]
    )
    due = list(untouched)
    for start in range(0, len(due), _PUBLISH_BATCH):
        batch = due[start : start + _PUBLISH_BATCH]
        _publish(
            [_password_resend_task(pk) for pk in batch],
            what=f"password resends {batch[:5]}",
            sweep=True,
        )
    return len(due)


def _notification_queue_once(*, key: str, **kwargs: Any) -> Notification | None:
    """Queue a notification unless one with this idempotency key already exists."""
    if Notification.objects.filter(idempotency_key=key).exists():
        return None
    return notification_queue(key=key, **kwargs)


@transaction.atomic
def request_password_resend(
    *,
    domain: str,
    contact_email: str = "",
    client_key: str,
    actor: Actor,
    channel: str,
    language: str | None = None,
) -> Ticket:
    """Log a password-resend request and queue the OpenSRS work.

    The answer, the ticket and the acknowledgement are the same whether or not the domain is
    ours; the typed address only ever gets that acknowledgement (and, later, public referral
    instructions), never the registration address or the reset link.
    """
    try:
        name = normalize_domain_name(domain if isinstance(domain, str) else "")
    except ValidationError:
        rate_limit_hit(scope="request_per_client", key=client_key)
        raise ValidationError({"domain": [gettext(RESEND_INVALID_DOMAIN)]}) from None
    rate_limit_hits(("request_per_client", client_key), ("resend_per_domain", name))
    contact_email = (contact_email or "").strip()
    if contact_email:
        try:
            validate_email(contact_email)
        except ValidationError:
            raise ValidationError({"contact_email": [gettext(RESEND_INVALID_EMAIL)]}) from None
    display = _domain_display(name)
    ticket = ticket_create(
        kind=Ticket.Kind.RESEND_PASSWORD,
        subject=RESEND_SUBJECT.format(domain=display),
        actor=actor,
        domain=Domain.objects.filter(name=name).first(),
        contact_email=contact_email,
        requested_domain=name,
        channel=channel,
        status=S.NEW,
        language=language,
        details={"domain": name},
    )
    tasks = [_password_resend_task(ticket.pk)]
    if contact_email:
        received = notification_queue(
            ticket=ticket,
            template="password_resend_received",
            recipient=contact_email,
            context={
                "domain": display,
                "direct_request_url": settings.OPENSRS_DIRECT_REQUEST_URL,
            },
            key=f"password_resend_received:{ticket.reference}",
            publish=False,
        )
        tasks.append(_notification_task(received.pk))
    # Both tasks in one round trip to the broker.
    transaction.on_commit(lambda: _publish(tasks, what=f"password resend {ticket.reference}"))
    return ticket


def _opensrs_audit_hook(ticket: Ticket) -> Callable[[OpenSRSExchange], None]:
    """Write every OpenSRS attempt made for `ticket` to the audit log (redacted summaries)."""

    def hook(exchange: OpenSRSExchange) -> None:
        response = exchange.response_summary or {}
        audit_record(
            actor="worker",
            action="opensrs.call",
            ticket=ticket,
            details={
                "action": exchange.action,
                "object": exchange.object,
                "domain": exchange.domain,
                "attempt": exchange.attempt,
                "outcome": exchange.outcome,
                "response_code": exchange.response_code,
                "response_text": exchange.response_text[:300],
                "duration_ms": exchange.duration_ms,
                "request": exchange.request_summary.get("attributes", {}),
                # Contact details stay out of the log; staff see the address in resend.record_read.
                "response": {k: v for k, v in response.items() if k != "attributes"},
            },
        )

    return hook


def _resend_note(locked: Ticket, body: str) -> None:
    """An internal note for staff on a locked ticket."""
    message = Message.objects.create(
        ticket=locked,
        author=Message.Author.SYSTEM,
        body=body,
        internal=True,
        channel=Ticket.Channel.SYSTEM,
    )
    locked.version += 1
    locked.save(update_fields=["version", "updated_at"])
    audit_record(
        actor="worker",
        action="ticket.note_added",
        ticket=locked,
        details={"message": message.pk, "author": Message.Author.SYSTEM, "channel": "system"},
    )


def _resend_send_stage(ticket: Ticket) -> str:
    """The last recorded SEND_PASSWORD stage for a ticket ("" when it was never attempted)."""
    row = (
        ActionLog.objects.filter(ticket=ticket, action=_RESEND_SEND_MARK)
        .order_by("-sequence")
        .values_list("details", flat=True)
        .first()
    )
    return str(row.get("stage", "")) if isinstance(row, dict) else ""


def _resend_locked_new(ticket_id: int) -> Ticket | None:
    """Lock the ticket; None unless it is a resend still waiting for the worker (state guard)."""
    locked = ticket_lock(pk=ticket_id)
    if locked.kind != Ticket.Kind.RESEND_PASSWORD or locked.status != S.NEW:
        return None
    return locked


@transaction.atomic
def _resend_to_staff(
    ticket_id: int, *, action: str, note: str, details: dict[str, Any], reason: str
) -> str:
    """Hand a resend the worker cannot finish to staff: audit, internal note, open."""
    locked = _resend_locked_new(ticket_id)
    if locked is None:
        return "skipped"
    audit_record(actor="worker", action=action, ticket=locked, details=details)
    _resend_note(locked, note)
    _transition(locked, to=S.OPEN, actor="worker", reason=reason)
    return "to_staff"


@transaction.atomic
def _resend_unknown_domain(ticket_id: int) -> str:
    locked = _resend_locked_new(ticket_id)
    if locked is None:
        return "skipped"
    audit_record(
        actor="worker",
        action="resend.unknown_domain",
        ticket=locked,
        details={"domain": locked.requested_domain},
    )
    _transition(locked, to=S.RESOLVED, actor="worker", reason="domain not in our OpenSRS account")
    return "unknown_domain"


def _resend_transient(ticket_id: int, exc: OpenSRSError, *, stage: str) -> str:
    """Record an OpenSRS failure that sent nothing; raise PasswordResendRetry or give up."""
    with transaction.atomic():
        locked = _resend_locked_new(ticket_id)
        if locked is None:
            return "skipped"
        attempt = ActionLog.objects.filter(ticket=locked, action="resend.opensrs_error").count() + 1
        audit_record(
            actor="worker",
            action="resend.opensrs_error",
            ticket=locked,
            details={"stage": stage, "code": exc.code, "error": str(exc)[:500], "try": attempt},
        )
        if attempt < PASSWORD_RESEND_MAX_TRIES:
            _resend_note(
                locked,
                RESEND_NOTE_RETRYING.format(
                    attempt=attempt, tries=PASSWORD_RESEND_MAX_TRIES, error=exc
                ),
            )
    if attempt >= PASSWORD_RESEND_MAX_TRIES:
        return password_resend_give_up(ticket_id=ticket_id, error=str(exc))
    raise PasswordResendRetry(min(600, 30 * 2 ** (attempt - 1)), str(exc))


def _resend_domain_refresh(locked: Ticket, email: str) -> Domain:
    """Update (or create) the cached registration record from what OpenSRS just said."""
    name = locked.requested_domain
    now = timezone.now()
    email = email[:254]
    domain, created = Domain.objects.get_or_create(
        name=name,
        defaults={"registrant_email": email, "synced_at": now},
    )
    domain = Domain.objects.select_for_update().get(pk=domain.pk)
    changed = email_canonical(domain.registrant_email) != email_canonical(email)
    if changed:
        # A new address has not bounced yet; an unchanged bouncing one is still dead.
        domain.registrant_email = email
        domain.registrant_email_status = Domain.EmailStatus.UNKNOWN
    domain.synced_at = now
    domain.save(
        update_fields=["registrant_email", "registrant_email_status", "synced_at", "updated_at"]
    )
    if locked.domain_id != domain.pk:
        locked.domain = domain
        locked.save(update_fields=["domain", "updated_at"])
    audit_record(
        actor="worker",
        action="resend.record_read",
        ticket=locked,
        details={
            "domain": name,
            "registrant_email": email,
            "status": domain.registrant_email_status,
            "changed": changed and not created,
        },
    )
    return domain


def _email_deliverable(email: str) -> bool:
    if not email:
        return False
    try:
        validate_email(email)
    except ValidationError:
        return False
    return True


def _resend_refer(locked: Ticket, *, reason: str) -> None:
    """Move a locked resend ticket to referred and mail the public direct-request instructions."""
    _transition(locked, to=S.REFERRED, actor="worker", reason=reason)
    audit_record(actor="worker", action="resend.referred", ticket=locked, details={"why": reason})
    if locked.contact_email:
        _notification_queue_once(
            key=f"password_resend_referred:{locked.reference}",
            ticket=locked,
            template="password_resend_referred",
            recipient=locked.contact_email,
            context={
                "domain": _domain_display(locked.requested_domain or str(locked.domain or "")),
                "direct_request_url": settings.OPENSRS_DIRECT_REQUEST_URL,
            },
        )


@transaction.atomic
def _resend_prepare(ticket_id: int, owner_email: str) -> tuple[str, Ticket | None]:
    """Refresh the record and either refer the ticket or mark SEND_PASSWORD as started."""
    locked = _resend_locked_new(ticket_id)
    if locked is None or _resend_send_stage(locked) not in ("", "not_sent"):
        return "skipped", None
    domain = _resend_domain_refresh(locked, owner_email)
    if domain.registrant_email_status == Domain.EmailStatus.BOUNCING:
        _resend_refer(locked, reason="the registration email address is bouncing")
        return "referred", None
    if not _email_deliverable(owner_email):
        _resend_refer(locked, reason="the registration record has no usable email address")
        return "referred", None
    # Committed before the call: a redelivered task that finds it never calls OpenSRS again.
    audit_record(
        actor="worker",
        action=_RESEND_SEND_MARK,
        ticket=locked,
        details={"stage": "started", "domain": locked.requested_domain, "send_to": "owner"},
    )
    return "send", locked


@transaction.atomic
def _resend_record_stage(ticket_id: int, stage: str, details: dict[str, Any]) -> None:
    locked = ticket_lock(pk=ticket_id)
    audit_record(
        actor="worker", action=_RESEND_SEND_MARK, ticket=locked, details={"stage": stage, **details}
    )


@transaction.atomic
def _resend_finish(ticket_id: int, *, registrant_email: str, response_code: int) -> str:
    """SEND_PASSWORD succeeded: tell the registration address ourselves and resolve."""
    locked = ticket_lock(pk=ticket_id)
    audit_record(
        actor="worker",
        action=_RESEND_SEND_MARK,
        ticket=locked,
        details={"stage": "sent", "response_code": response_code},
    )
    if locked.status != S.NEW:
        return "skipped"
    customer = locked.domain.customer if locked.domain else None
    notification_queue(
        ticket=locked,
        template="password_resend_notice",
        recipient=registrant_email,
        context={"domain": _domain_display(locked.requested_domain)},
        key=f"password_resend_notice:{locked.reference}",
        language=customer.language if customer else "en",
    )
    audit_record(
        actor="worker",
        action="resend.sent",
        ticket=locked,
        details={"domain": locked.requested_domain, "send_to": "owner", "to": registrant_email},
    )
    _transition(
        locked, to=S.RESOLVED, actor="worker", reason="OpenSRS sent a reset link to the owner"
    )
    return "sent"


def password_resend_process(*, ticket_id: int) -> str:
    """Do the OpenSRS work of one resend ticket; idempotent, SEND_PASSWORD at most once.

    Raises PasswordResendRetry when OpenSRS was unreachable and nothing was sent.
    """
    ticket = (
        Ticket.objects.filter(pk=ticket_id, kind=Ticket.Kind.RESEND_PASSWORD, status=S.NEW)
        .select_related("customer")
        .first()
    )
    if ticket is None:
        return "skipped"
    if _resend_send_stage(ticket) == "started":
        # An earlier delivery died between asking OpenSRS and recording the answer.
        return _resend_to_staff(
            ticket_id,
            action="resend.outcome_unknown",
            note=RESEND_NOTE_OUTCOME_UNKNOWN.format(error="the worker stopped mid-call"),
            details={"error": "worker stopped during SEND_PASSWORD"},
            reason="SEND_PASSWORD outcome unknown",
        )
    name = ticket.requested_domain
    client = client_from_settings(audit_hook=_opensrs_audit_hook(ticket))
    try:
        owner = client.get_owner_contact(name)
    except DomainNotInAccount:
        return _resend_unknown_domain(ticket_id)
    except OpenSRSTransientError as exc:
        return _resend_transient(ticket_id, exc, stage="get_owner")
    except OpenSRSAuthError as exc:
        return _resend_to_staff(
            ticket_id,
            action="resend.opensrs_auth_error",
            note=RESEND_NOTE_AUTH.format(error=exc),
            details={"stage": "get_owner", "code": exc.code, "error": str(exc)[:500]},
            reason="OpenSRS refused our credentials",
        )
    except OpenSRSError as exc:
        return _resend_to_staff(
            ticket_id,
            action="resend.opensrs_refused",
            note=RESEND_NOTE_REFUSED.format(error=exc),
            details={"stage": "get_owner", "code": exc.code, "error": str(exc)[:500]},
            reason="OpenSRS refused the request",
        )

    outcome, locked = _resend_prepare(ticket_id, owner.email)
    if locked is None:
        return outcome
    try:
        reply = client.send_password(name, send_to="owner")
    except OpenSRSOutcomeUnknown as exc:
        _resend_record_stage(ticket_id, "unknown", {"error": str(exc)[:500]})
        return _resend_to_staff(
            ticket_id,
            action="resend.outcome_unknown",
            note=RESEND_NOTE_OUTCOME_UNKNOWN.format(error=exc),
            details={"error": str(exc)[:500]},
            reason="SEND_PASSWORD outcome unknown",
        )
    except OpenSRSError as exc:
        # Every other typed error means OpenSRS did not send anything.
        _resend_record_stage(ticket_id, "not_sent", {"code": exc.code, "error": str(exc)[:500]})
        if isinstance(exc, DomainNotInAccount):
            return _resend_unknown_domain(ticket_id)
        if isinstance(exc, OpenSRSTransientError):
            return _resend_transient(ticket_id, exc, stage="send_password")
        auth = isinstance(exc, OpenSRSAuthError)
        return _resend_to_staff(
            ticket_id,
            action="resend.opensrs_auth_error" if auth else "resend.opensrs_refused",
            note=(RESEND_NOTE_AUTH if auth else RESEND_NOTE_REFUSED).format(error=exc),
            details={"stage": "send_password", "code": exc.code, "error": str(exc)[:500]},
            reason="OpenSRS refused the request",
        )
    return _resend_finish(ticket_id, registrant_email=owner.email, response_code=reply.code)


def password_resend_give_up(*, ticket_id: int, error: str) -> str:
    """Hand a resend to staff when the worker could not finish it (OpenSRS down, crash)."""
    if not Ticket.objects.filter(pk=ticket_id).exists():
        return "skipped"
    return _resend_to_staff(
        ticket_id,
        action="resend.gave_up",
        note=RESEND_NOTE_GAVE_UP.format(tries=PASSWORD_RESEND_MAX_TRIES, error=error),
        details={"error": error[:500]},
        reason="OpenSRS unreachable",
    )


def _password_resend_notice_bounced(*, notification: Notification, reason: str) -> None:
    """Our notice to a registration address bounced: that address is dead, refer its tickets."""
    if notification.ticket_id is None:
        return
    ticket = Ticket.objects.select_related("domain").get(pk=notification.ticket_id)
    domain = ticket.domain
    current = domain is not None and email_canonical(domain.registrant_email) == email_canonical(
        notification.recipient
    )
    pks = {ticket.pk}
    if current:
        pks |= set(
            Ticket.objects.filter(
                kind=Ticket.Kind.RESEND_PASSWORD, domain=domain, status__in=_RESEND_REFERRABLE
            ).values_list("pk", flat=True)
        )
    # Tickets first, then the domain: the order every resend service locks in.
    for pk in sorted(pks):
        locked = ticket_lock(pk=pk)
        if locked.kind == Ticket.Kind.RESEND_PASSWORD and locked.status in _RESEND_REFERRABLE:
            _resend_refer(locked, reason="our notice to the registration email address bounced")
    if current:
        # `current` is true only with a domain.
        locked_domain = Domain.objects.select_for_update().get(pk=cast(Domain, domain).pk)
        if locked_domain.registrant_email_status != Domain.EmailStatus.BOUNCING:
            locked_domain.registrant_email_status = Domain.EmailStatus.BOUNCING
            locked_domain.save(update_fields=["registrant_email_status", "updated_at"])
            audit_record(
                actor="worker",
                action="domain.registrant_email_bouncing",
                ticket=ticket,
                details={
                    "domain": locked_domain.name,
                    "registrant_email": locked_domain.registrant_email,
                    "reason": reason[:500],
                },
            )


BOUNCE_HANDLERS["password_resend_notice"] = _password_resend_notice_bounced

# Only these mean the address is dead; soft bounces and deferrals may still deliver.
_FINAL_POSTMARK_BOUNCES = frozenset({"HardBounce", "BadEmailAddress"})
_FINAL_REJECT_REASONS = frozenset({"bounced", "invalid"})


def _tracking_is_final_bounce(
    *, esp_name: str, event_type: str, reject_reason: str, esp_event_type: str
) -> bool:
    if esp_name.lower() == "postmark" and event_type in ("bounced", "rejected"):
        return esp_event_type in _FINAL_POSTMARK_BOUNCES
    if event_type == "bounced":
        return True
    return event_type == "rejected" and reject_reason in _FINAL_REJECT_REASONS


# Anymail's normalised tracking events that only follow an email the ESP accepted.
ESP_ACCEPTED_EVENTS = frozenset(
    {
        "queued",
        "sent",
        "deferred",
        "delivered",
        "autoresponded",
        "opened",
        "clicked",
        "complained",
        "unsubscribed",
    }
)


def _tracking_notification(metadata: dict[str, Any], message_id: str) -> Notification | None:
    raw = metadata.get("notification") if isinstance(metadata, dict) else None
    if raw:
        try:
            found = Notification.objects.filter(uuid=uuid.UUID(str(raw))).first()
        except ValueError:
            found = None
        if found is not None:
            return found
    if message_id:
        return Notification.objects.filter(esp_message_id=message_id).order_by("pk").first()
    return None


@transaction.atomic
def notification_tracking_event(
    *,
    esp_name: str,
    event_type: str,
    message_id: str,
    recipient: str,
    metadata: dict[str, Any],
    reject_reason: str,
    description: str,
    esp_event_type: str,
) -> str:
    """Apply one ESP tracking event to its outbox row; a repeated event changes nothing."""
    found = _tracking_notification(metadata, message_id)
    if found is None:
        return "unmatched"
    if recipient and email_canonical(recipient) != email_canonical(found.recipient):
        return "unmatched"
    notification = notification_lock(pk=found.pk)
    recorded = False
    if event_type in ESP_ACCEPTED_EVENTS and notification.status in _UNMARKED:
        # The ESP has this email, but no send was recorded: the worker died between the
        # hand-over and its write, or the ESP's answer was lost. Record it now, so the sweep
        # does not send it again.
        recorded = _notification_mark_sent(
            notification,
            notification.esp_message_id or message_id,
            evidence=f"{esp_name} {event_type}".strip(),
        )
        notification.status = Notification.Status.SENT
    if event_type == "delivered":
        if notification.status not in (Notification.Status.SENDING, Notification.Status.SENT):
            return "ignored"
        notification.status = Notification.Status.DELIVERED
        notification.save(update_fields=["status", "updated_at"])
        audit_record(
            actor="worker",
            action="notification.delivered",
            ticket=notification.ticket,
            details={
                "notification": str(notification.uuid),
                "template": notification.template,
                "to": notification.recipient,
                "esp": esp_name,
            },
        )
        return "delivered"
    final = _tracking_is_final_bounce(
        esp_name=esp_name,
        event_type=event_type,
        reject_reason=reject_reason,
        esp_event_type=esp_event_type,
    )
    if not final or notification.status == Notification.Status.BOUNCED:
        return "recorded" if recorded else "ignored"
    reason = " ".join(
        part for part in (esp_name, event_type, esp_event_type, reject_reason, description) if part
    )
    notification_bounced(notification=notification, reason=reason)
    return "bounced"


# --- opt-out ---------------------------------------------------------------------------------

OPT_OUT_LISTS = ("product_mailings", "reseller_newsletters")
OPT_OUT_LIST_LABELS = {
    "product_mailings": gettext_noop("Product mailings"),
    "reseller_newsletters": gettext_noop("Reseller newsletters"),
}
OPT_OUT_SUBJECT = gettext_noop("Stop mailings")
OPT_OUT_NO_LISTS = gettext_noop("Choose at least one mailing list.")
OPT_OUT_UNKNOWN_LIST = gettext_noop("Unknown mailing list: {name}")
OPT_OUT_EMAIL_INVALID = gettext_noop("Enter the email address we have on record for you.")
UNSUBSCRIBE_INVALID = gettext_noop(
    "This unsubscribe link is not valid. Use the link from the latest email, or change your "
    "mailing preferences after signing in."
)
MAILING_UNKNOWN_LIST = "Unknown mailing list {name!r}; use one of: {lists}."
MAILING_EMPTY = "A mailing needs a subject and a body."
MAILING_BAD_ID = "A mailing id is 1 to 80 letters, digits, dots, dashes or underscores."
MAILING_BATCH_SIZE = 500
_UNSUBSCRIBE_SALT = "tickets.unsubscribe"
_MAILING_ID_SHAPE = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


def _opt_out_lists_clean(lists: Any) -> list[str]:
    """The asked-for lists in a fixed order; ValidationError keyed `lists` for anything else."""
    if isinstance(lists, str) or not isinstance(lists, list | tuple | set | frozenset) or not lists:
        raise ValidationError({"lists": [gettext(OPT_OUT_NO_LISTS)]})
    unknown = [str(name)[:64] for name in lists if name not in OPT_OUT_LISTS]
    if unknown:
        raise ValidationError(
            {"lists": [gettext(OPT_OUT_UNKNOWN_LIST).format(name=name) for name in unknown]}
        )
    return [name for name in OPT_OUT_LISTS if name in lists]


def _preferences_url() -> str:
    return settings.SITE_URL + reverse("portal:preferences")


def _mailing_flags_set(
    customer: Customer, wanted: dict[str, bool], *, actor: Actor, ticket: Ticket | None, how: str
) -> list[dict[str, Any]]:
    """Write the list booleans that differ on a locked customer; audit old and new values."""
    rows = [
        {"list": name, "old": getattr(customer, name), "new": value}
        for name, value in wanted.items()
        if getattr(customer, name) != value
    ]
    if not rows:
        return rows
    for row in rows:
        setattr(customer, row["list"], row["new"])
    customer.save(update_fields=[*(row["list"] for row in rows), "updated_at"])
    audit_record(
        actor=actor,
        action="customer.mailing_preferences_changed",
        ticket=ticket,
        customer=customer,
        details={"how": how, "changes": rows},
    )
    return rows


def _opt_out_set(
    customer: Customer, names: list[str], *, actor: Actor, ticket: Ticket, how: str
) -> list[dict[str, Any]]:
    """Turn lists off on a locked customer and confirm to the email on record if any changed."""
    rows = _mailing_flags_set(
        customer, dict.fromkeys(names, False), actor=actor, ticket=ticket, how=how
    )
    if rows:
        notification_queue(
            ticket=ticket,
            template="opt_out_confirmed",
            recipient=customer.email,
            context={"lists": [row["list"] for row in rows], "preferences_url": _preferences_url()},
            key=f"opt_out_confirmed:{ticket.reference}",
            language=customer.language,
        )
    return rows


@transaction.atomic
def opt_out_apply(
    *, customer: Customer, lists: list[str], actor: Actor, channel: str, source: str
) -> Ticket:
    """Stop the chosen mailings and record it as an auto-resolved `opt_out` ticket.

    Idempotent in effect: lists already off change nothing and send no confirmation; the
    request is still recorded as a ticket.
    """
    names = _opt_out_lists_clean(lists)
    locked = customer_lock(pk=customer.pk)
    ticket = ticket_create(
        kind=Ticket.Kind.OPT_OUT,
        subject=OPT_OUT_SUBJECT,
        actor=actor,
        customer=locked,
        contact_email=locked.email,
        channel=channel,
        details={"lists": names, "source": source},
    )
    rows = _opt_out_set(locked, names, actor=actor, ticket=ticket, how=source)
    _transition(
        ticket,
        to=S.RESOLVED,
        actor="system",
        reason="mailings stopped" if rows else "these mailings were already off",
    )
    return ticket


@transaction.atomic
def preferences_update(
    *, customer: Customer, product_mailings: bool, reseller_newsletters: bool, actor: Actor
) -> Ticket | None:
    """Set both mailing lists from the preferences page; returns the opt-out ticket, if any.

    Newsletters are a reseller list: for other customers that choice is ignored.
    """
    locked = customer_lock(pk=customer.pk)
    wanted = {"product_mailings": bool(product_mailings)}
    if locked.is_reseller:
        wanted["reseller_newsletters"] = bool(reseller_newsletters)
    offs = [name for name, value in wanted.items() if not value and getattr(locked, name)]
    ons = [name for name, value in wanted.items() if value and not getattr(locked, name)]
    ticket = None
    if offs:
        ticket = opt_out_apply(
            customer=locked,
            lists=offs,
            actor=actor,
            channel=Ticket.Channel.PORTAL,
            source="preferences",
        )
    if ons:
        rows = _mailing_flags_set(
            locked, dict.fromkeys(ons, True), actor=actor, ticket=None, how="preferences"
        )
        notification_queue(
            template="opt_in_confirmed",
            recipient=locked.email,
            context={"lists": [row["list"] for row in rows], "preferences_url": _preferences_url()},
            language=locked.language,
        )
    return ticket


@transaction.atomic
def request_opt_out(
    *, email: str, lists: list[str], client_key: str, actor: Actor, channel: str
) -> Ticket:
    """Log an opt-out asked for without a login; a link goes to the email on record.

    The answer is the same whether or not the address is on record; for an unknown address
    nothing is sent and the ticket simply expires. Raises ValidationError keyed `email` or
    `lists`, RateLimited past the request limits.
    """
    rate_limit_hit(scope="request_per_client", key=client_key)
    email = email.strip() if isinstance(email, str) else ""
    if "@" not in email or len(email) > 254 or _CONTROL_CHARACTERS.search(email):
        raise ValidationError({"email": [gettext(OPT_OUT_EMAIL_INVALID)]})
    names = _opt_out_lists_clean(lists)
    rate_limit_hit(scope="request_per_email", key=email_canonical(email))
    owner = customer_get_by_email(email=email)
    ticket = ticket_create(
        kind=Ticket.Kind.OPT_OUT,
        subject=OPT_OUT_SUBJECT,
        actor=actor,
        customer=owner,
        # The record, not what was typed: the confirmation goes there.
        contact_email=owner.email if owner else "",
        channel=channel,
        status=S.AWAITING_VERIFICATION,
    )
    audit_record(actor=actor, action="optout.requested", ticket=ticket, details={"lists": names})
    if owner is not None:
        verification_start(ticket=ticket, send_to=owner.email)
    return ticket


def _opt_out_verified(*, ticket: Ticket, verification: Verification, actor: Actor) -> None:
    """The requester proved they read the email on record: stop the mailings asked for."""
    requested = (
        ActionLog.objects.filter(ticket=ticket, action="optout.requested")
        .order_by("-sequence")
        .first()
    )
    asked = (requested.details.get("lists") or []) if requested else []
    names = [name for name in asked if name in OPT_OUT_LISTS]
    if ticket.customer_id is None or not names:
        return
    # The ticket is locked already; the customer comes second, as everywhere else.
    customer = customer_lock(pk=ticket.customer_id)
    rows = _opt_out_set(customer, names, actor=actor, ticket=ticket, how="verified request")
    _transition(
        ticket,
        to=S.RESOLVED,
        actor="system",
        reason="mailings stopped" if rows else "these mailings were already off",
    )


VERIFIED_HANDLERS[Ticket.Kind.OPT_OUT] = _opt_out_verified


def unsubscribe_token(*, customer: Customer, list_name: str) -> str:
    """A signed, URL-safe token naming one customer and one list (no database row)."""
    return signing.dumps([customer.number, list_name], salt=_UNSUBSCRIBE_SALT)


def unsubscribe_url(*, customer: Customer, list_name: str) -> str:
    """The one-click unsubscribe link for one customer and list, on SITE_URL."""
    token = unsubscribe_token(customer=customer, list_name=list_name)
    return settings.SITE_URL + reverse("portal:unsubscribe", args=[token])


def unsubscribe_token_read(*, token: str) -> tuple[Customer, str]:
    """The customer and list a token names; ApplicationError when it is forged or altered."""
    try:
        payload = signing.loads(token, salt=_UNSUBSCRIBE_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        payload = None
    customer = None
    if (
        isinstance(payload, list)
        and len(payload) == 2
        and all(isinstance(part, str) for part in payload)
        and payload[1] in OPT_OUT_LISTS
    ):
        customer = Customer.objects.filter(number=payload[0]).first()
    if customer is None:
        raise ApplicationError(gettext(UNSUBSCRIBE_INVALID))
    return customer, payload[1]


@transaction.atomic
def unsubscribe_by_token(*, token: str) -> Ticket | None:
    """One-click unsubscribe; None when that list was already off (nothing recorded again)."""
    customer, list_name = unsubscribe_token_read(token=token)
    # Checked under the lock, so two clicks at once make one ticket.
    locked = customer_lock(pk=customer.pk)
    if not getattr(locked, list_name):
        return None
    return opt_out_apply(
        customer=locked,
        lists=[list_name],
        actor="anonymous",
        channel=Ticket.Channel.EMAIL,
        source="one-click",
    )


def _mailing_headers(list_name: str, link: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058 headers: the signed one-click link and a mailto fallback."""
    address = (
        settings.BILLING_EMAIL if list_name == "reseller_newsletters" else settings.SUPPORT_EMAIL
    )
    return {
        "List-Unsubscribe": f"<{link}>, <mailto:{address}?subject=unsubscribe>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Precedence": "bulk",
    }


def mailing_default_id(*, list_name: str, subject: str, body_text: str) -> str:
    """A stable id for a mailing: the same list, subject and body give the same id."""
    digest = hashlib.sha256(f"{list_name}\n{subject}\n{body_text}".encode()).hexdigest()
    return f"{list_name}-{digest[:16]}"


def _mailing_recipients(list_name: str) -> QuerySet[Customer]:
    recipients = Customer.objects.filter(**{list_name: True}).exclude(
        account_status=Customer.AccountStatus.CLOSED
    )
    if list_name == "reseller_newsletters":
        recipients = recipients.filter(is_reseller=True)
    return recipients


@transaction.atomic
def _mailing_batch(
    *,
    mailing_id: str,
    list_name: str,
    subject: str,
    body_text: str,
    after: int,
    size: int,
    actor: Actor,
    number: int,
) -> tuple[int, int, int]:
    """Queue one batch; returns (customers seen, rows queued now, last customer pk)."""
    # Locked so a customer opting out right now is either skipped here or queued before.
    batch = list(
        _mailing_recipients(list_name)
        .filter(pk__gt=after)
        .order_by("pk")
        .select_for_update(of=("self",))[:size]
    )
    if not batch:
        return 0, 0, after
    keys = {customer.pk: f"mailing:{mailing_id}:{customer.number}" for customer in batch}
    done = set(
        Notification.objects.filter(idempotency_key__in=keys.values()).values_list(
            "idempotency_key", flat=True
        )
    )
    queued = 0
    for customer in batch:
        if keys[customer.pk] in done:
            continue
        # One token per email: the header and the body carry the same link.
        link = unsubscribe_url(customer=customer, list_name=list_name)
        notification_queue(
            template="mailing",
            recipient=customer.email,
            context={
                "subject": subject,
                "body": body_text,
                "list_name": list_name,
                "full_name": customer.full_name,
                "customer": customer.number,
                "unsubscribe_url": link,
                "preferences_url": _preferences_url(),
            },
            key=keys[customer.pk],
            language=customer.language,
            headers=_mailing_headers(list_name, link),
        )
        queued += 1
    if queued:
        audit_record(
            actor=actor,
            action="mailing.batch_queued",
            details={
                "mailing": mailing_id,
                "list": list_name,
                "batch": number,
                "queued": queued,
                "already_queued": len(batch) - queued,
            },
        )
    return len(batch), queued, batch[-1].pk


def mailing_send(
    *,
    list_name: str,
    subject: str,
    body_text: str,
    actor: Actor,
    mailing_id: str | None = None,
    batch_size: int = MAILING_BATCH_SIZE,
) -> int:
    """Queue a mailing to every customer still subscribed to `list_name`; the worker sends it.

    Idempotent by unique key: each outbox row is keyed `mailing:<mailing id>:<customer
    number>`, so running it again (after a crash, or twice) queues only the ones missing.
    The id defaults to a digest of list, subject and body. Returns how many rows this run queued.
    """
    if list_name not in OPT_OUT_LISTS:
        raise ApplicationError(
            MAILING_UNKNOWN_LIST.format(name=list_name, lists=", ".join(OPT_OUT_LISTS))
        )
    if not subject.strip() or not body_text.strip():
        raise ApplicationError(MAILING_EMPTY)
    mailing_id = mailing_id or mailing_default_id(
        list_name=list_name, subject=subject, body_text=body_text
    )
    if not _MAILING_ID_SHAPE.match(mailing_id):
        raise ApplicationError(MAILING_BAD_ID)
    after, total, batch_number, conflicts = 0, 0, 0, 0
    while True:
        try:
            seen, queued, last = _mailing_batch(
                mailing_id=mailing_id,
                list_name=list_name,
                subject=subject,
                body_text=body_text,
                after=after,
                size=batch_size,
                actor=actor,
                number=batch_number + 1,
            )
        except IntegrityError:
            # Another run of the same mailing queued some of this batch first: redo it.
            conflicts += 1
            if conflicts > 3:
                raise
            continue
        if not seen:
            break
        batch_number += 1
        total += queued
        after = last
        logger.info(
            "mailing %s batch %d: %d queued, %d already queued (%d queued in this run)",
            mailing_id,
            batch_number,
            queued,
            seen - queued,
            total,
        )
    logger.info("mailing %s done: %d queued in this run", mailing_id, total)
    return total


# --- inbound email ---------------------------------------------------------------------------

INBOUND_ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
INBOUND_ATTACHMENT_TYPES = frozenset(
    {
        "application/pdf",
        "text/plain",
        "text/csv",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "image/tiff",
        "image/heic",
        "image/heif",
    }
)
# Names a browser or desktop would run or render as active content.
INBOUND_DANGEROUS_EXTENSIONS = frozenset(
    {
        "exe", "com", "bat", "cmd", "scr", "pif", "msi", "msp", "dll", "cpl", "jar", "js",
        "jse", "mjs", "vbs", "vbe", "wsf", "wsh", "ps1", "psm1", "hta", "lnk", "reg", "sh",
        "php", "py", "pl", "html", "htm", "xhtml", "shtml", "svg", "svgz", "xml", "xsl",
        "swf", "iso", "img", "vhd", "docm", "xlsm", "pptm", "apk", "app", "dmg", "msc",
    }
)  # fmt: skip
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
_DAEMON_SENDERS = frozenset({"mailer-daemon", "postmaster"})
_REPORT_TYPES = frozenset(
    {"message/delivery-status", "message/disposition-notification", "message/feedback-report"}
)
_REFERENCE_IN_SUBJECT = re.compile(r"(?<![A-Z0-9])HD-[0-9A-HJKMNP-TV-Z]{8}(?![A-Z0-9])")
_ANGLE_IDS = re.compile(r"<([^<>\s]{1,250})>")
_OPT_OUT_WORDS = re.compile(
    r"\b(?:unsubscribe|opt[\s_-]?out|stop (?:sending|mailing|emailing)|remove me from)\b",
    re.IGNORECASE,
)
_HTML_BREAKS = re.compile(r"(?i)<br\s*/?>|</(?:p|div|li|tr|h[1-6]|blockquote)\s*>")
_NO_REPLY_STATUSES = frozenset({S.CLOSED, S.EXPIRED, S.REJECTED})


def _inbound_headers(headers: dict[str, Any]) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in (headers or {}).items()}


def _inbound_ignore_reason(
    from_email: str, headers: dict[str, str], attachments: list[tuple[str, str, bytes]]
) -> str:
    """Why a message is an auto-reply, bounce or report that must never make a ticket, or ""."""
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
    if sender.rpartition("@")[0] in _DAEMON_SENDERS:
        return "sent by a mail server (mailer-daemon or postmaster)"
    if headers.get("content-type", "").strip().lower().startswith("multipart/report"):
        return "multipart/report (delivery or read report)"
    if any(str(ctype).lower() in _REPORT_TYPES for _, ctype, _ in attachments):
        return "delivery or read report part"
    return ""


def _inbound_message_key(message_id: str) -> str | None:
    """The unique key a Message-ID is stored under (long ids are hashed to fit)."""
    value = (message_id or "").strip()
    if not value:
        return None
    if len(value) > 255:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value


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


def _inbound_filename(raw: str) -> str:
    name = re.split(r"[/\\]", raw or "")[-1]
    name = _CONTROL_CHARACTERS.sub("", name).strip().strip(".")
    return name[:200] or "attachment"


def _inbound_attachment_refusal(filename: str, content_type: str, content: bytes) -> str:
    extensions = [part.lower().strip() for part in filename.split(".")[1:]]
    if any(extension in INBOUND_DANGEROUS_EXTENSIONS for extension in extensions):
        return "file type not accepted"
    if len(content) > INBOUND_ATTACHMENT_MAX_BYTES:
        return "larger than 10 MB"
    if content_type not in INBOUND_ATTACHMENT_TYPES:
        return f"type {content_type or 'unknown'} not accepted"
    return ""


def _inbound_attachments_sort(
    attachments: list[tuple[str, str, bytes]],
) -> tuple[list[tuple[str, str, bytes]], list[dict[str, str]]]:
    """Split attachments into the ones kept and the refused ones (with the reason)."""
    kept, refused = [], []
    for raw_name, raw_type, content in attachments or []:
        filename = _inbound_filename(str(raw_name or ""))
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


def _inbound_opt_out_lists(recipients: list[str], subject: str, body: str) -> list[str]:
    """Lists an email to support@ or billing@ asks to leave, judged by its subject or its text."""
    unquoted = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith(">"))
    if not (_OPT_OUT_WORDS.search(subject) or _OPT_OUT_WORDS.search(unquoted[:1000])):
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
        if ticket.status not in _NO_REPLY_STATUSES and _sender_matches(ticket, sender):
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
    names = _inbound_opt_out_lists(recipients, subject, body)
    text = body or INBOUND_NO_TEXT
    ticket: Ticket | None
    if names:
        ticket, message, outcome = _inbound_opt_out(
            names=names, sender=sender, subject=subject, body=text, key=key
        )
    else:
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
    for filename, content_type, data in kept:
        Attachment.objects.create(
            message=message,
            filename=filename,
            content_type=content_type,
            size=len(data),
            content=data,
        )
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

    Auto-replies, bounces and reports are dropped (None, audited as inbound.ignored). Idempotent
    by unique key: a redelivered Message-ID returns the ticket it made the first time.
    """
    headers = _inbound_headers(headers)
    sender = (from_email or "").strip()[:254]
    reason = _inbound_ignore_reason(sender, headers, attachments or [])
    if reason:
        with transaction.atomic():
            audit_record(
                actor=_INBOUND_ACTOR,
                action="inbound.ignored",
                details={"reason": reason, "from": sender, "message_id": (message_id or "")[:255]},
            )
        return None
    key = _inbound_message_key(message_id)
    existing = _inbound_existing(key)
    if existing is not None:
        return existing
    subject = " ".join(_CONTROL_CHARACTERS.sub(" ", subject or "").split())
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
    except IntegrityError:
        # The same message arriving twice at once: the other delivery stored it.
        existing = _inbound_existing(key)
        if existing is None:
            raise
        return existing


# --- staff -----------------------------------------------------------------------------------

DISCLOSURE_FORBIDDEN = gettext_noop("Only a supervisor can record a disclosure.")
DISCLOSURE_INCOMPLETE = gettext_noop("Say what was disclosed, to whom, and on what legal basis.")
EXPORT_FORBIDDEN = gettext_noop("Only a supervisor can export a customer's data.")


class StaffForbidden(ApplicationError):
    """The staff member's role does not allow this (HTTP 403)."""

    status_code = 403


@transaction.atomic
def disclosure_record(
    *,
    customer: Customer,
    actor: User,
    disclosed_to: str,
    information: str,
    legal_basis: str,
    reference: str = "",
    disclosed_at: datetime | None = None,
) -> Disclosure:
    """Enter a disclosure of a customer's information in the register, and audit it."""
    if not is_staff_member(actor) or not actor.has_perm("tickets.manage_disclosures"):
        raise StaffForbidden(DISCLOSURE_FORBIDDEN)
    values = [disclosed_to.strip(), information.strip(), legal_basis.strip()]
    if not all(values):
        raise ApplicationError(DISCLOSURE_INCOMPLETE)
    disclosure = Disclosure(
        customer=customer,
        recorded_by=actor,
        disclosed_to=values[0],
        information=values[1],
        legal_basis=values[2],
        reference=reference.strip(),
        disclosed_at=disclosed_at or timezone.now(),
    )
    disclosure.full_clean()
    disclosure.save(force_insert=True)
    audit_record(
        actor=actor,
        action="disclosure.recorded",
        customer=customer,
        details={
            "disclosure": disclosure.pk,
            "disclosed_to": disclosure.disclosed_to,
            "information": disclosure.information,
            "legal_basis": disclosure.legal_basis,
            "reference": disclosure.reference,
            "disclosed_at": disclosure.disclosed_at.isoformat(),
        },
    )
    return disclosure


@transaction.atomic
def customer_export(*, customer: Customer, actor: User) -> dict[str, Any]:
    """Everything held on a customer, for a subject-access request; the export is audited."""
    if not is_staff_member(actor) or not actor.has_perm("tickets.export_customer"):
        raise StaffForbidden(EXPORT_FORBIDDEN)
    data = customer_export_data(customer=customer)
    audit_record(
        actor=actor,
        action="customer.exported",
        customer=customer,
        details={"tickets": len(data["tickets"]), "audit_rows": len(data["audit"])},
    )
    return data
