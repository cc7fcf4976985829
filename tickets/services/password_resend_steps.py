"""The steps of a password resend the worker records, each in its own transaction.

Every step locks the ticket first (then its PasswordResend row) and acts only on a resend
still waiting for the worker (state guard), so a redelivered task changes nothing twice.
"""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Customer
from accounts.selectors import customer_account_open, email_canonical
from domains.models import Domain
from domains.opensrs import (
    DomainNotInAccount,
    OpenSRSAuthError,
    OpenSRSError,
    OpenSRSTransientError,
)
from domains.services import domain_contacts_refresh_queue
from domains.validators import domain_display
from helpdesk.exceptions import RetryLater
from helpdesk.validators import address_valid
from tickets.audit import audit_record
from tickets.lock_objects import customer_lock, domain_lock, password_resend_lock, ticket_lock
from tickets.models import PasswordResend, Ticket
from tickets.services.outbox import notification_queue
from tickets.services.transitions import ticket_move
from tickets.services.versions import ticket_system_note_add

S = Ticket.Status
Stage = PasswordResend.Stage
Outcome = PasswordResend.Outcome

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
RESEND_SEND_MARK = "opensrs.send_password"


def resend_state(ticket_id: int) -> PasswordResend:
    """The resend row of a ticket, unlocked (`password_resend_lock` locks it)."""
    return PasswordResend.objects.get(ticket_id=ticket_id)


def _resend_set(state: PasswordResend, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(state, name, value)
    state.save(update_fields=[*fields, "updated_at"])


def _resend_locked_new(ticket_id: int) -> Ticket | None:
    """Lock the ticket; None unless it is a resend still waiting for the worker (state guard)."""
    locked = ticket_lock(pk=ticket_id)
    if locked.kind != Ticket.Kind.RESEND_PASSWORD or locked.status != S.NEW:
        return None
    return locked


@transaction.atomic
def resend_to_staff(
    ticket_id: int, *, action: str, note: str, details: dict[str, Any], reason: str
) -> str:
    """Hand a resend the worker cannot finish to staff: audit, internal note, open."""
    locked = _resend_locked_new(ticket_id)
    if locked is None:
        return "skipped"
    audit_record(actor="worker", action=action, ticket=locked, details=details)
    ticket_system_note_add(locked, actor="worker", body=note)
    _resend_set(password_resend_lock(ticket_id=ticket_id), outcome=Outcome.TO_STAFF)
    ticket_move(locked, to=S.OPEN, actor="worker", reason=reason)
    return "to_staff"


@transaction.atomic
def resend_unknown_domain(ticket_id: int) -> str:
    locked = _resend_locked_new(ticket_id)
    if locked is None:
        return "skipped"
    audit_record(
        actor="worker",
        action="resend.unknown_domain",
        ticket=locked,
        details={"domain": locked.requested_domain},
    )
    _resend_set(password_resend_lock(ticket_id=ticket_id), outcome=Outcome.UNKNOWN_DOMAIN)
    ticket_move(locked, to=S.RESOLVED, actor="worker", reason="domain not in our OpenSRS account")
    return "unknown_domain"


def resend_transient(ticket_id: int, exc: OpenSRSError, *, stage: str) -> str:
    """Record an OpenSRS failure that sent nothing; raise PasswordResendRetry or give up."""
    with transaction.atomic():
        locked = _resend_locked_new(ticket_id)
        if locked is None:
            return "skipped"
        state = password_resend_lock(ticket_id=ticket_id)
        attempt = state.attempts + 1
        countdown = min(600, 30 * 2 ** (attempt - 1))
        _resend_set(
            state, attempts=attempt, next_try_at=timezone.now() + timedelta(seconds=countdown)
        )
        audit_record(
            actor="worker",
            action="resend.opensrs_error",
            ticket=locked,
            details={"stage": stage, "code": exc.code, "error": str(exc)[:500], "try": attempt},
        )
        if attempt < PASSWORD_RESEND_MAX_TRIES:
            ticket_system_note_add(
                locked,
                actor="worker",
                body=RESEND_NOTE_RETRYING.format(
                    attempt=attempt, tries=PASSWORD_RESEND_MAX_TRIES, error=exc
                ),
            )
    if attempt >= PASSWORD_RESEND_MAX_TRIES:
        return password_resend_give_up(ticket_id=ticket_id, error=str(exc))
    raise PasswordResendRetry(countdown, str(exc))


def _resend_domain_refresh(locked: Ticket, email: str) -> Domain:
    """Update (or create) the cached registration record from what OpenSRS just said."""
    name = locked.requested_domain
    now = timezone.now()
    email = email[:254]
    domain, created = Domain.objects.get_or_create(
        name=name,
        defaults={"registrant_email": email, "synced_at": now},
    )
    domain = domain_lock(pk=domain.pk)
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
    # A registration address read from OpenSRS: one the ESP could read otherwise is referred.
    return bool(email) and address_valid(email)


def resend_refer(locked: Ticket, *, reason: str) -> None:
    """Move a locked resend ticket to referred, for staff.

    Nothing more is mailed to the typed contact address: its acknowledgement already said what
    to do when no reset arrives (the direct request to OpenSRS), in the same words for every
    domain, so it never learns that a domain is ours or that its address bounces.
    """
    ticket_move(locked, to=S.REFERRED, actor="worker", reason=reason)
    audit_record(actor="worker", action="resend.referred", ticket=locked, details={"why": reason})
    PasswordResend.objects.filter(ticket_id=locked.pk).update(
        outcome=Outcome.REFERRED, updated_at=timezone.now()
    )


def resend_last_reset(name: str, now: datetime) -> PasswordResend | None:
    """The last reset asked for `name` when one more now would pass the per-domain limits.

    A try OpenSRS answered with an error sent nothing (NOT_SENT): it spends none of the
    limits, or its own retry would be coalesced with it and the owner would never be mailed.
    """
    asked = PasswordResend.objects.filter(domain_name=name, asked_at__isnull=False).exclude(
        stage=Stage.NOT_SENT
    )
    for scope in ("resend_per_domain", "resend_per_domain_day"):
        limit, seconds = settings.RATE_LIMITS[scope]
        if asked.filter(asked_at__gt=now - timedelta(seconds=seconds)).count() >= limit:
            return asked.order_by("-asked_at", "-pk").first()
    return None


@transaction.atomic
def resend_coalesce(ticket_id: int, last: PasswordResend) -> str:
    """Answer a request past the domain's limits with the last reset: no OpenSRS call, no mail."""
    locked = _resend_locked_new(ticket_id)
    if locked is None:
        return "skipped"
    _resend_set(
        password_resend_lock(ticket_id=ticket_id),
        outcome=Outcome.COALESCED,
        coalesced_with_id=last.ticket_id,
    )
    audit_record(
        actor="worker",
        action="resend.coalesced",
        ticket=locked,
        details={"domain": locked.requested_domain, "with": last.ticket.reference},
    )
    ticket_move(
        locked,
        to=S.RESOLVED,
        actor="worker",
        reason=f"a reset for this domain was sent recently ({last.ticket.reference})",
    )
    return "coalesced"


def _resend_owner_lock(ticket_id: int) -> Customer | None:
    """Lock the customer whose cached record is the requested domain's, if any."""
    owner_id = (
        Domain.objects.filter(
            name__in=Ticket.objects.filter(pk=ticket_id).values("requested_domain"),
            customer__isnull=False,
        )
        .values_list("customer_id", flat=True)
        .first()
    )
    return None if owner_id is None else customer_lock(pk=owner_id)


@transaction.atomic
def resend_prepare(ticket_id: int, owner_email: str) -> tuple[str, Ticket | None]:
    """Refresh the record and either refer the ticket or mark SEND_PASSWORD as started."""
    # The account is read under its lock, taken before the ticket's (tickets.lock_objects): a
    # freeze being written commits first, and a reset is never sent on the account it froze.
    owner = _resend_owner_lock(ticket_id)
    locked = _resend_locked_new(ticket_id)
    if locked is None:
        return "skipped", None
    state = password_resend_lock(ticket_id=ticket_id)
    if state.stage not in (Stage.PENDING, Stage.NOT_SENT):
        return "skipped", None
    domain = _resend_domain_refresh(locked, owner_email)
    if domain.customer_id is None:
        owner = None
    elif owner is None or owner.pk != domain.customer_id:
        # Given to another customer between the two reads: rare, and out of order only then.
        owner = customer_lock(pk=domain.customer_id)
    if not customer_account_open(owner):
        # Whoever took the account over may have moved the registration address to their own.
        resend_refer(locked, reason="the domain's account is suspended or closed")
        return "referred", None
    if domain.registrant_email_status == Domain.EmailStatus.BOUNCING:
        resend_refer(locked, reason="the registration email address is bouncing")
        return "referred", None
    if not _email_deliverable(owner_email):
        resend_refer(locked, reason="the registration record has no usable email address")
        return "referred", None
    # Counted again under the domain's lock (taken by the refresh): two workers for one
    # domain cannot both pass the limits.
    now = timezone.now()
    last = resend_last_reset(locked.requested_domain, now)
    if last is not None:
        return "coalesce", None
    # Committed before the call: a redelivered task that finds it never calls OpenSRS again.
    _resend_set(state, stage=Stage.STARTED, asked_at=now)
    audit_record(
        actor="worker",
        action=RESEND_SEND_MARK,
        ticket=locked,
        details={"stage": "started", "domain": locked.requested_domain, "send_to": "owner"},
    )
    return "send", locked


@transaction.atomic
def resend_record_stage(ticket_id: int, stage: str, details: dict[str, Any]) -> None:
    locked = ticket_lock(pk=ticket_id)
    _resend_set(password_resend_lock(ticket_id=ticket_id), stage=stage)
    audit_record(
        actor="worker", action=RESEND_SEND_MARK, ticket=locked, details={"stage": stage, **details}
    )


@transaction.atomic
def resend_finish(ticket_id: int, *, registrant_email: str, response_code: int) -> str:
    """SEND_PASSWORD succeeded: tell the registration address ourselves and resolve."""
    locked = ticket_lock(pk=ticket_id)
    state = password_resend_lock(ticket_id=ticket_id)
    _resend_set(state, stage=Stage.SENT)
    audit_record(
        actor="worker",
        action=RESEND_SEND_MARK,
        ticket=locked,
        details={"stage": "sent", "response_code": response_code},
    )
    if locked.status != S.NEW:
        return "skipped"
    _resend_set(state, outcome=Outcome.SENT)
    customer = locked.domain.customer if locked.domain else None
    notification_queue(
        ticket=locked,
        template="password_resend_notice",
        recipient=registrant_email,
        context={"domain": domain_display(locked.requested_domain)},
        key=f"password_resend_notice:{locked.reference}",
        language=customer.language if customer else "en",
    )
    audit_record(
        actor="worker",
        action="resend.sent",
        ticket=locked,
        details={"domain": locked.requested_domain, "send_to": "owner", "to": registrant_email},
    )
    ticket_move(
        locked, to=S.RESOLVED, actor="worker", reason="OpenSRS sent a reset link to the owner"
    )
    if locked.domain_id is not None:
        domain_contacts_refresh_queue(domain_ids=[locked.domain_id])
    return "sent"


def password_resend_give_up(*, ticket_id: int, error: str) -> str:
    """Hand a resend to staff when the worker could not finish it (OpenSRS down, crash)."""
    if not Ticket.objects.filter(pk=ticket_id).exists():
        return "skipped"
    return resend_to_staff(
        ticket_id,
        action="resend.gave_up",
        note=RESEND_NOTE_GAVE_UP.format(tries=PASSWORD_RESEND_MAX_TRIES, error=error),
        details={"error": error[:500]},
        reason="OpenSRS unreachable",
    )


class PasswordResendRetry(RetryLater):
    """OpenSRS could not be reached and nothing was sent."""


def resend_outcome_unknown(ticket_id: int, *, error: str) -> str:
    """SEND_PASSWORD may or may not have been sent: never again by us, staff decide."""
    return resend_to_staff(
        ticket_id,
        action="resend.outcome_unknown",
        note=RESEND_NOTE_OUTCOME_UNKNOWN.format(error=error),
        details={"error": error[:500]},
        reason="SEND_PASSWORD outcome unknown",
    )


def resend_opensrs_failed(ticket_id: int, exc: OpenSRSError, *, stage: str) -> str:
    """OpenSRS answered `stage` with an error and sent nothing: close, retry or hand to staff."""
    if isinstance(exc, DomainNotInAccount):
        return resend_unknown_domain(ticket_id)
    if isinstance(exc, OpenSRSTransientError):
        return resend_transient(ticket_id, exc, stage=stage)
    auth = isinstance(exc, OpenSRSAuthError)
    return resend_to_staff(
        ticket_id,
        action="resend.opensrs_auth_error" if auth else "resend.opensrs_refused",
        note=(RESEND_NOTE_AUTH if auth else RESEND_NOTE_REFUSED).format(error=exc),
        details={"stage": stage, "code": exc.code, "error": str(exc)[:500]},
        reason="OpenSRS refused our credentials" if auth else "OpenSRS refused the request",
    )
