"""Every write the help desk makes: one function per action, each owning its transaction."""

import logging
import random
from datetime import timedelta
from typing import Any

from anymail.exceptions import (
    AnymailAPIError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailRequestsAPIError,
)
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Customer
from domains.models import Domain
from helpdesk.exceptions import ApplicationError, TransitionNotAllowed
from tickets import emails
from tickets.audit import Actor, audit_record
from tickets.lock_objects import ticket_lock
from tickets.models import Message, Notification, Ticket

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

TRANSITION_NOT_ALLOWED = "This ticket is {status}; it cannot be moved to {target}."
STALE_TICKET = "This ticket was changed by someone else since you opened it. Reload and try again."
REPLY_TO_CLOSED = "This ticket is closed; please open a new request."
EMPTY_MESSAGE = "The message is empty."


def ticket_due_at(*, kind: str, priority: str, start=None):
    """When a ticket of this kind and priority is due under the SLA settings."""
    hours = settings.SLA_HOURS.get(priority, 24)
    hours = min(hours, settings.SLA_HOURS_BY_KIND.get(kind, hours))
    return (start or timezone.now()) + timedelta(hours=hours)


# --- notifications (the outbox) -------------------------------------------------------------


def _enqueue_notification(notification_id: int) -> None:
    from tickets.tasks import notification_send as notification_send_task

    try:
        notification_send_task.apply_async(kwargs={"notification_id": notification_id}, retry=False)
    except Exception as exc:
        logger.warning(
            "notification %s not queued (%s); the sweep will retry", notification_id, exc
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
) -> Notification:
    """Write an outbox row in the caller's transaction and send it once that commits."""
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
    transaction.on_commit(lambda: _enqueue_notification(notification.pk))
    return notification


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
    """Exponential backoff with full jitter: 0..min(600, 5 * 2^attempt) seconds."""
    return max(1, int(random.uniform(0, min(600, 5 * 2**attempt))))  # noqa: S311


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
    notification = Notification.objects.select_related("ticket").get(pk=notification_id)
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
    with transaction.atomic():
        Notification.objects.filter(pk=notification.pk).update(
            status=Notification.Status.SENT, esp_message_id=message_id, sent_at=timezone.now()
        )
        audit_record(
            actor="worker",
            action="notification.sent",
            ticket=notification.ticket,
            details={
                "notification": str(notification.uuid),
                "template": notification.template,
                "to": notification.recipient,
                "esp_message_id": message_id,
                "attempt": notification.attempts,
            },
        )
    return Notification.Status.SENT


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
    notification = Notification.objects.select_related("ticket").get(pk=notification_id)
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
    for pk in due:
        _enqueue_notification(pk)
    return len(due)


# --- tickets ---------------------------------------------------------------------------------


@transaction.atomic
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
            TRANSITION_NOT_ALLOWED.format(status=S(old).label, target=S(to).label),
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
        raise ApplicationError("Give the reason for the rejection; the requester will read it.")
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
    assignee: AbstractBaseUser | None,
    actor: Actor,
    expected_version: int | None = None,
) -> Ticket:
    """Give a ticket to a staff member (or nobody)."""
    if assignee is not None and not assignee.is_staff:
        raise ApplicationError("Tickets can only be assigned to staff.")
    locked = ticket_lock(pk=ticket.pk)
    _check_version(locked, expected_version)
    if not locked.is_open:
        raise TransitionNotAllowed(f"A {S(locked.status).label.lower()} ticket cannot be assigned.")
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
        raise ApplicationError(f"Unknown priority {priority!r}.")
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
    author_user: AbstractBaseUser | None = None,
    internal: bool = False,
    email_message_id: str | None = None,
    expected_version: int | None = None,
) -> Message:
    """Add a message to a ticket; a staff reply is mailed, a customer reply reopens it."""
    if not body.strip():
        raise ApplicationError(EMPTY_MESSAGE)
    locked = ticket_lock(pk=ticket.pk)
    _check_version(locked, expected_version)
    if locked.status in (S.CLOSED, S.EXPIRED, S.REJECTED) and not internal:
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
) -> Ticket:
    """Log a general help request and acknowledge it to the address given."""
    if not subject.strip() or not body.strip():
        raise ApplicationError("A subject and a message are both needed.")
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
