"""Celery tasks: each loads ids, calls one service, and returns."""

from collections.abc import Callable
from typing import Any

from celery import Task, shared_task
from django.db import OperationalError

from helpdesk.exceptions import RetryLater
from tickets.scanning import ScannerUnavailable

# Celery retries a task with these itself, on the errors it names: five more tries, waiting at
# most 1, 2, 4, 8 and 16 s (jitter picks a time below each).
_RETRIED_WITH_BACKOFF: dict[str, Any] = {
    "retry_backoff": True,
    "retry_jitter": True,
    "max_retries": 5,
}


def _retried_by_its_service(*, name: str, on_failure: Callable[..., None]) -> Any:
    """A task whose service counts the tries: it raises RetryLater until it gives up by itself.

    So Celery sets no limit of its own; `on_failure` hands the row over should the task fail
    in some other way.
    """
    return shared_task(  # type: ignore[call-overload]  # celery-types' overloads lack on_failure
        bind=True, name=name, acks_late=True, max_retries=None, on_failure=on_failure
    )


def _run_retrying(task: Task, service: Callable[..., str], **ids: int) -> str:
    """Call `service`; when it raises RetryLater, run the task again after the countdown it set."""
    try:
        return service(**ids)
    except RetryLater as exc:
        raise task.retry(exc=exc, countdown=exc.countdown) from exc


def _notification_send_failure(self, exc, task_id, args, kwargs, einfo) -> None:
    from tickets.services import notification_mark_failed

    notification_mark_failed(notification_id=kwargs["notification_id"], error=f"task failed: {exc}")


@_retried_by_its_service(name="tickets.notification_send", on_failure=_notification_send_failure)
def notification_send(self, *, notification_id: int) -> str:
    """Send one outbox row (the service stops at NOTIFICATION_MAX_ATTEMPTS).

    Idempotent by claim: the service flips the row pending -> sending with a conditional
    update and does nothing if another delivery of this task got there first.
    """
    from tickets.services import notification_send as notification_send_service

    return _run_retrying(self, notification_send_service, notification_id=notification_id)


@shared_task(name="tickets.notifications_sweep", acks_late=True)
def notifications_sweep() -> int:
    """Re-queue outbox rows left pending; idempotent because sending claims each row."""
    from tickets.services import notifications_requeue_due

    return notifications_requeue_due()


@shared_task(name="tickets.verifications_expire", acks_late=True)
def verifications_expire() -> int:
    """Expire tickets whose verification links all expired; idempotent by state guard."""
    from tickets.services import verifications_expire as verifications_expire_service

    return verifications_expire_service()


@shared_task(name="tickets.ticket_stats_rebuild_recent", acks_late=True)
def ticket_stats_rebuild_recent() -> int:
    """Recompute the dashboard's daily rows of the last few days from the tickets.

    Idempotent: the rows of those days are replaced by what the tickets say, and their months'
    rows by those days' sums, under the audit chain lock, so a second run writes the same rows.
    """
    from tickets.services.stats import ticket_stats_rebuild_recent as rebuild

    return rebuild()


def _password_resend_failure(self, exc, task_id, args, kwargs, einfo) -> None:
    from tickets.services import password_resend_give_up

    password_resend_give_up(ticket_id=kwargs["ticket_id"], error=f"task failed: {exc}")


@_retried_by_its_service(
    name="tickets.password_resend_process", on_failure=_password_resend_failure
)
def password_resend_process(self, *, ticket_id: int) -> str:
    """Do the OpenSRS work of one password-resend ticket (up to PASSWORD_RESEND_MAX_TRIES).

    Idempotent by state guard: the service acts only on a ticket still `new`, and records
    SEND_PASSWORD before calling it, so a redelivered task never asks OpenSRS twice.
    """
    from tickets.services import password_resend_process as password_resend_process_service

    return _run_retrying(self, password_resend_process_service, ticket_id=ticket_id)


@shared_task(name="tickets.password_resend_sweep", acks_late=True)
def password_resend_sweep() -> int:
    """Queue resend tickets whose task was lost; idempotent by the ticket's status guard."""
    from tickets.services import password_resend_requeue_due

    return password_resend_requeue_due()


@shared_task(name="tickets.anonymous_request_process", acks_late=True)
def anonymous_request_process(*, ticket_id: int) -> str:
    """Look up the record an anonymous request names and go on with its flow.

    Idempotent by state guard: the service acts only while the request row is unprocessed,
    under its lock.
    """
    from tickets.services import anonymous_request_process as anonymous_request_process_service

    return anonymous_request_process_service(ticket_id=ticket_id)


@shared_task(name="tickets.anonymous_requests_sweep", acks_late=True)
def anonymous_requests_sweep() -> int:
    """Queue anonymous requests whose lookup task was lost; idempotent by the state guard."""
    from tickets.services import anonymous_requests_requeue_due

    return anonymous_requests_requeue_due()


def _registration_change_failure(self, exc, task_id, args, kwargs, einfo) -> None:
    from tickets.services.registration_change import registration_change_give_up

    registration_change_give_up(change_id=kwargs["change_id"], error=f"task failed: {exc}")


@_retried_by_its_service(
    name="tickets.registration_change_process", on_failure=_registration_change_failure
)
def registration_change_process(self, *, change_id: int) -> str:
    """Make one chosen registration change at OpenSRS (MODIFY DOMAIN contact_info).

    The service stops at REGISTRATION_CHANGE_MAX_TRIES. Idempotent by claim: it flips the
    change queued -> sending with a conditional update before calling OpenSRS, so a redelivered
    task never sends it twice; one that finds it `sending` hands it to staff as an unknown
    outcome.
    """
    from tickets.services.registration_change import (
        registration_change_process as registration_change_process_service,
    )

    return _run_retrying(self, registration_change_process_service, change_id=change_id)


@shared_task(name="tickets.registration_changes_sweep", acks_late=True)
def registration_changes_sweep() -> int:
    """Queue registration changes whose task was lost; idempotent by the change's claim."""
    from tickets.services.registration_change import registration_changes_requeue_due

    return registration_changes_requeue_due()


@shared_task(name="tickets.registration_warnings_sweep", acks_late=True)
def registration_warnings_sweep() -> int:
    """Warn customers about dead or out-of-date registration addresses.

    Idempotent by state guard: each domain and address carries its notice count and last
    notice time, checked and bumped under a row lock in the transaction that queues the email.
    """
    from tickets.services.registration_warnings import (
        registration_warnings_sweep as registration_warnings_sweep_service,
    )

    return registration_warnings_sweep_service()


@shared_task(
    name="tickets.status_link_send",
    acks_late=True,
    # No row holds the request until its outbox row does, so no sweep finds it: a lost lock
    # race or a dropped connection is tried again here (the row's key keeps it to one email).
    autoretry_for=(OperationalError,),
    **_RETRIED_WITH_BACKOFF,
)
def status_link_send(*, reference: str, email: str, request_id: str) -> str:
    """Mail a ticket's status link asked for at /track/, if reference and address match.

    Idempotent by unique natural key: the outbox row is keyed by the request's id.
    """
    from tickets.services import status_link_send as status_link_send_service

    return status_link_send_service(reference=reference, email=email, request_id=request_id)


@shared_task(
    name="tickets.attachment_scan",
    acks_late=True,
    autoretry_for=(ScannerUnavailable,),
    **_RETRIED_WITH_BACKOFF,
)
def attachment_scan(*, attachment_id: int) -> str:
    """Scan one attachment for malware (clamd, or no check when none is configured).

    Idempotent by state guard: only a pending attachment is scanned, and its verdict is
    written by a conditional update from pending. A scanner that cannot answer is retried with
    backoff; past the retries the row stays pending and the sweep queues it again.
    """
    from tickets.services.attachments import attachment_scan as attachment_scan_service

    return attachment_scan_service(attachment_id=attachment_id)


@shared_task(name="tickets.attachments_scan_sweep", acks_late=True)
def attachments_scan_sweep() -> int:
    """Queue scans of attachments left pending; idempotent by the scan's state guard."""
    from tickets.services.attachments import attachments_scan_requeue_due

    return attachments_scan_requeue_due()
