"""Outbox: notification rows, sending them once, ESP tracking events."""

import logging
import random
import re
from datetime import timedelta
from typing import Any, cast

from anymail.exceptions import (
    AnymailAPIError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailRequestsAPIError,
)
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.selectors import customer_email_on_record, mailing_recipients
from helpdesk.exceptions import RetryLater
from helpdesk.validators import address_valid
from tickets import emails
from tickets.audit import audit_record
from tickets.models import Notification, Ticket
from tickets.selectors.status_page import ticket_address_matching
from tickets.selectors.tickets import attachments_for_email
from tickets.services.publishing import tasks_publish_each
from tickets.tasks import notification_send as notification_send_task

logger = logging.getLogger(__name__)


def notification_task(notification_id: int) -> tuple[Any, dict[str, Any]]:
    return notification_send_task, {"notification_id": notification_id}


def notifications_enqueue(notification_ids: list[int], *, sweep: bool = False) -> None:
    """Queue the send task of each of these outbox rows (after their commit, or by a sweep)."""
    tasks_publish_each(
        notification_send_task,
        notification_ids,
        key="notification_id",
        what="notifications",
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

    With `publish=False` the caller queues its task (`notification_task`) after the commit.
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
        transaction.on_commit(lambda: notifications_enqueue([notification.pk]))
    return notification


# An outbox row that is not an email: a password-reset request whose logins the worker looks
# up (login_password_reset.password_reset_resolve), so the request does the same work for every
# address.
PASSWORD_RESET_LOOKUP = "password_reset_lookup"  # noqa: S105 - a template name, not a secret


def _password_reset_lookup(notification: Notification) -> str:
    # Imported here: the reset flow queues its mail through this module.
    from tickets.services.login_password_reset import password_reset_resolve

    with transaction.atomic():
        mailed = password_reset_resolve(email=notification.recipient)
        Notification.objects.filter(pk=notification.pk).update(
            status=Notification.Status.SENT, sent_at=timezone.now()
        )
        audit_record(
            actor="worker",
            action="account.password_reset_looked_up",
            details={"notification": str(notification.uuid), "mailed": mailed},
        )
    return Notification.Status.SENT


# Context keys holding secrets (verification, password-reset, status-page and satisfaction links,
# the unsubscribe links mailed for an opt-out asked for by email).
SECRET_CONTEXT_KEYS = frozenset(
    {"link", "status_link", "satisfaction_yes", "satisfaction_no", "unsubscribe_links"}
)


def _without_keys(value: Any, keys: frozenset[str]) -> Any:
    """`value` with `keys` left out of every dict in it, however deep (a list of domains' links)."""
    if isinstance(value, dict):
        return {k: _without_keys(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without_keys(item, keys) for item in value]
    return value


def notification_context_public(context: dict[str, Any]) -> dict[str, Any]:
    """An outbox row's context without its live links: once the row is done, and for display.

    A link carries a live token (a verification, a freeze, a status page, a password reset, a
    registration warning's one-click request), needed only until the email is handed over;
    whoever reads the row must not be able to act as its recipient.
    """
    return cast(dict[str, Any], _without_keys(context, SECRET_CONTEXT_KEYS))


# A mailing's signed one-click unsubscribe link stays in its row once sent (in the context and
# the List-Unsubscribe header); whoever reads the row must not be able to unsubscribe its
# recipient either. Rows are shown with every web link in their headers replaced.
SHOWN_HIDDEN_CONTEXT_KEYS = SECRET_CONTEXT_KEYS | {"unsubscribe_url"}
_WEB_LINK = re.compile(r"https?://[^\s<>,]+")
LINK_HIDDEN = "[link hidden]"


def notification_shown(notification: Notification) -> dict[str, dict[str, Any]]:
    """An outbox row's context and headers as a reader of the row (the admin) sees them."""
    context = notification.context or {}
    return {
        "context": _without_keys(context, SHOWN_HIDDEN_CONTEXT_KEYS),
        "headers": {
            name: _WEB_LINK.sub(LINK_HIDDEN, str(value))
            for name, value in (notification.headers or {}).items()
        },
    }


class NotificationRetry(RetryLater):
    """A transient sending error."""


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
    if notification.template == PASSWORD_RESET_LOOKUP:
        return _password_reset_lookup(notification)
    if not address_valid(notification.recipient):
        # Stored before the one rule for addresses held: the ESP may read it as another mailbox.
        _notification_fail(notification, "the address is not a plain one (helpdesk.validators)")
        return Notification.Status.FAILED
    if _mailing_left_since(notification):
        _notification_fail(
            notification,
            "the recipient opted out, their address changed, or their account was frozen or "
            "closed, before it was sent",
        )
        return Notification.Status.FAILED
    if _record_address_left_since(notification):
        _notification_fail(notification, "the address is no longer the customer's or the ticket's")
        return Notification.Status.FAILED
    if _attachments_waiting(notification):
        # A reply goes out with its files, once they are scanned: not an attempt, wait.
        Notification.objects.filter(pk=notification.pk).update(
            status=Notification.Status.PENDING,
            attempts=F("attempts") - 1,
            next_attempt_at=timezone.now() + timedelta(seconds=ATTACHMENT_WAIT_SECONDS),
        )
        raise NotificationRetry(ATTACHMENT_WAIT_SECONDS, "attachments still being scanned")
    # Imported here: status links are issued by the verification flow, which queues mail here.
    from tickets.services.status_link import status_link_fill

    status_link_fill(notification)
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
        return _notification_send_failed(notification, exc)
    status = message.anymail_status
    # One recipient, so one id; the test backend's ids are integers.
    message_id = "" if isinstance(status.message_id, set | None) else str(status.message_id)
    if not notification_mark_sent(notification, message_id):
        logger.info("%s was already recorded from an ESP event", notification.uuid)
    logger.info("sent %s to %s (%s)", notification.template, notification.recipient, message_id)
    return Notification.Status.SENT


def _notification_send_failed(notification: Notification, exc: Exception) -> str:
    """The ESP did not take the email: fail it for good, or back to the outbox and retry."""
    if not _is_transient(exc):
        _notification_fail(notification, f"{type(exc).__name__}: {exc}")
        return Notification.Status.FAILED
    if notification.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
        _notification_fail(notification, f"gave up after {notification.attempts} attempts: {exc}")
        return Notification.Status.FAILED
    countdown = _backoff(notification.attempts)
    Notification.objects.filter(pk=notification.pk).update(
        status=Notification.Status.PENDING,
        last_error=f"{type(exc).__name__}: {exc}"[:2000],
        next_attempt_at=timezone.now() + timedelta(seconds=countdown),
    )
    raise NotificationRetry(countdown, str(exc)) from exc


# Rows that may still be marked sent: claimed, or handed back to the outbox by the sweep.
UNMARKED_STATUSES = (Notification.Status.PENDING, Notification.Status.SENDING)


def notification_details(notification: Notification, **extra: Any) -> dict[str, Any]:
    """What every audit row about an outbox row records of it, plus `extra`."""
    return {
        "notification": str(notification.uuid),
        "template": notification.template,
        "to": notification.recipient,
        **extra,
    }


def notification_mark_sent(notification: Notification, message_id: str, evidence: str = "") -> bool:
    """Record a handed-over email and its audit row, as soon after the hand-over as possible.

    Both the worker (right after the ESP accepted the email) and an ESP tracking event (for a
    row whose worker died before it could record the send: `evidence`) come here; whichever is
    first records it, once. False when the row was already recorded.
    """
    context = notification_context_public(notification.context)
    now = timezone.now()
    details = notification_details(
        notification, esp_message_id=message_id, attempt=notification.attempts
    )
    if evidence:
        details["recorded_from"] = evidence
    audit: dict[str, Any] = {
        "actor": "worker",
        "action": "notification.sent",
        "ticket": notification.ticket,
        "details": details,
    }
    with transaction.atomic():
        marked = Notification.objects.filter(
            pk=notification.pk, status__in=UNMARKED_STATUSES
        ).update(
            status=Notification.Status.SENT, esp_message_id=message_id, sent_at=now, context=context
        )
        if marked:
            audit_record(**audit)
    return bool(marked)


def _mailing_left_since(notification: Notification) -> bool:
    """Whether a queued mailing's recipient is no longer one of its list's recipients there."""
    context = notification.context
    if notification.template != "mailing" or "customer" not in context:
        return False
    list_name = context.get("list_name")
    if list_name not in ("product_mailings", "reseller_newsletters"):
        return False
    # Still at the address it was queued for: after an email change the old mailbox may be
    # no longer the owner's (the reason for a change), and its unsubscribe link has ended.
    recipients = mailing_recipients(list_name).filter(
        number=context["customer"], email__iexact=notification.recipient
    )
    return not recipients.exists()


# The context key of a mail about a customer's record sent to their email on record: the
# customer's number. It goes only while that address is still the one on record.
ON_RECORD_OF = "on_record_of"
# Mail to a ticket's requester (its contact or its customer's email on record): it goes only
# while the address is still one of the ticket's (`ticket_address_matching`). Each of them may
# carry a status link (`status_link_fill`), which an address the ticket left must not get, nor
# the mail without it.
TICKET_ADDRESS_TEMPLATES = frozenset(
    {
        "ticket_received",
        "ticket_reply",
        "ticket_resolved",
        "ticket_rejected",
        "status_link",
        "password_resend_received",
    }
)


def _record_address_left_since(notification: Notification) -> bool:
    """Whether a mail for a customer's or a ticket's address is no longer for one on record.

    After an email change the old mailbox may be no longer the owner's (the reason for a
    change); a link, an answer or a summary of the record queued before it must not reach
    it. As a mailing's address is read again at send time (`_mailing_left_since`).
    """
    number = notification.context.get(ON_RECORD_OF)
    if number:
        return not customer_email_on_record(number=number, email=notification.recipient)
    ticket = notification.ticket
    if ticket is None or notification.template not in TICKET_ADDRESS_TEMPLATES:
        return False
    return not ticket_address_matching(ticket, notification.recipient)


def _notification_end(notification: Notification, status: str, *, key: str, text: str) -> None:
    """Leave the row failed or bounced with `text` as its error.

    The audit row is `notification.failed` or `notification.bounced`, giving `text` as `key`.
    """
    Notification.objects.filter(pk=notification.pk).update(
        status=status,
        last_error=text[:2000],
        context=notification_context_public(notification.context),
    )
    audit_record(
        actor="worker",
        action=f"notification.{status}",
        ticket=notification.ticket,
        details=notification_details(notification, **{key: text[:500]}),
    )


def _notification_fail(notification: Notification, error: str) -> None:
    with transaction.atomic():
        _notification_end(notification, Notification.Status.FAILED, key="error", text=error)


def notification_mark_failed(*, notification_id: int, error: str) -> None:
    """Give up on a row whose task ran out of retries."""
    notification = Notification.objects.select_related("ticket__customer").get(pk=notification_id)
    if notification.status in UNMARKED_STATUSES:
        _notification_fail(notification, error)


@transaction.atomic
def notification_bounced(*, notification: Notification, reason: str) -> None:
    """Record a bounce or a send-time refusal, and let the flow that sent it react."""
    # Imported here: the resend flow queues its mail through this module.
    from tickets.services import password_resend

    # Sent to a domain's registration address, a bounce says that address is dead: what that
    # changes is locked before anything is recorded (tickets.lock_objects).
    resend_bounce = (
        password_resend.password_resend_notice_bounce_lock(notification=notification)
        if notification.template == "password_resend_notice"
        else None
    )
    _notification_end(notification, Notification.Status.BOUNCED, key="reason", text=reason)
    if resend_bounce is not None:
        password_resend.password_resend_notice_bounced(bounce=resend_bounce, reason=reason)


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
    notifications_enqueue(due, sweep=True)
    return len(due)


# How long a reply waits for its attachments' scan before looking again.
ATTACHMENT_WAIT_SECONDS = 15


def _attachments_waiting(notification: Notification) -> bool:
    ids = notification.context.get("attachments")
    return bool(ids) and attachments_for_email(attachment_ids=ids)[1]
