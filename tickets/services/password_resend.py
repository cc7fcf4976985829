"""Password resend through the OpenSRS reseller API."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.selectors import email_canonical
from domains.models import Domain
from domains.opensrs import (
    DomainNotInAccount,
    OpenSRSAuthError,
    OpenSRSClient,
    OpenSRSError,
    OpenSRSExchange,
    OpenSRSOutcomeUnknown,
    OpenSRSTransientError,
    OwnerContact,
    client_from_settings,
)
from domains.services import domain_contacts_refresh_queue
from domains.validators import domain_display, domain_name_bare, normalize_domain_name
from helpdesk.ratelimit import rate_limit_hits
from tickets.audit import Actor, audit_record
from tickets.lock_objects import ticket_lock
from tickets.models import Message, Notification, PasswordResend, Ticket
from tickets.services.lifecycle import ticket_create
from tickets.services.outbox import notification_queue, notification_task
from tickets.services.shared import PUBLISH_BATCH, tasks_publish, ticket_move
from tickets.services.status_link import status_link_context

S = Ticket.Status


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
Stage = PasswordResend.Stage
Outcome = PasswordResend.Outcome


class PasswordResendRetry(Exception):
    """OpenSRS could not be reached and nothing was sent: try again after `countdown` s."""

    def __init__(self, countdown: int, error: str) -> None:
        super().__init__(error)
        self.countdown = countdown


def _password_resend_task(ticket_id: int) -> tuple[Any, dict[str, Any]]:
    from tickets.tasks import password_resend_process as password_resend_task

    return password_resend_task, {"ticket_id": ticket_id}


def password_resend_requeue_due(*, batch_size: int = 200) -> int:
    """Queue the OpenSRS work of resend tickets whose task was lost (broker down at commit).

    A resend is picked once its next try is older than the sweep delay: a task waiting for
    its retry is not due yet, and one running twice asks OpenSRS once (the stage guard).
    """
    cutoff = timezone.now() - settings.NOTIFICATION_SWEEP_AFTER
    due = list(
        PasswordResend.objects.filter(
            outcome=Outcome.NONE,
            next_try_at__lt=cutoff,
            stage__in=(Stage.PENDING, Stage.NOT_SENT),
            ticket__status=S.NEW,
        )
        .order_by("next_try_at")
        .values_list("ticket_id", flat=True)[:batch_size]
    )
    for start in range(0, len(due), PUBLISH_BATCH):
        batch = due[start : start + PUBLISH_BATCH]
        tasks_publish(
            [_password_resend_task(pk) for pk in batch],
            what=f"password resends {batch[:5]}",
            sweep=True,
        )
    return len(due)


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
    refusal = gettext(RESEND_INVALID_DOMAIN)
    try:
        name = normalize_domain_name(domain if isinstance(domain, str) else "")
    except ValidationError as exc:
        name, refusal = "", exc.messages[0]  # why IDNA 2008 refuses it, if it says
    # Per client and in all, never per domain: past the domain limits a request is coalesced
    # by the worker, so nobody can lock a domain's owner out.
    rate_limit_hits(("request_per_client", client_key), ("request_global", "all"))
    if not name:
        raise ValidationError({"domain": [refusal]})
    contact_email = (contact_email or "").strip()
    if contact_email:
        try:
            validate_email(contact_email)
        except ValidationError:
            raise ValidationError({"contact_email": [gettext(RESEND_INVALID_EMAIL)]}) from None
    display = domain_display(name)
    # Nothing is looked up here (not even whether the domain is ours): the worker does that,
    # so the answer takes the same time for every domain.
    ticket = ticket_create(
        kind=Ticket.Kind.RESEND_PASSWORD,
        subject=RESEND_SUBJECT.format(domain=display),
        actor=actor,
        contact_email=contact_email,
        requested_domain=name,
        channel=channel,
        status=S.NEW,
        language=language,
        details={"domain": name},
    )
    PasswordResend.objects.create(ticket=ticket, domain_name=name, next_try_at=ticket.created_at)
    tasks = [_password_resend_task(ticket.pk)]
    if contact_email:
        received = notification_queue(
            ticket=ticket,
            template="password_resend_received",
            recipient=contact_email,
            context={
                "domain": display,
                "direct_request_url": settings.OPENSRS_DIRECT_REQUEST_URL,
                **status_link_context(recipient=contact_email),
            },
            key=f"password_resend_received:{ticket.reference}",
            publish=False,
        )
        tasks.append(notification_task(received.pk))
    # Both tasks in one round trip to the broker.
    transaction.on_commit(lambda: tasks_publish(tasks, what=f"password resend {ticket.reference}"))
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


def _resend_state(ticket_id: int, *, lock: bool = False) -> PasswordResend:
    """The resend row of a ticket (locked with `lock`; the ticket is locked first)."""
    rows = PasswordResend.objects.select_for_update() if lock else PasswordResend.objects
    return rows.get(ticket_id=ticket_id)


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
def _resend_to_staff(
    ticket_id: int, *, action: str, note: str, details: dict[str, Any], reason: str
) -> str:
    """Hand a resend the worker cannot finish to staff: audit, internal note, open."""
    locked = _resend_locked_new(ticket_id)
    if locked is None:
        return "skipped"
    audit_record(actor="worker", action=action, ticket=locked, details=details)
    _resend_note(locked, note)
    _resend_set(_resend_state(ticket_id, lock=True), outcome=Outcome.TO_STAFF)
    ticket_move(locked, to=S.OPEN, actor="worker", reason=reason)
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
    _resend_set(_resend_state(ticket_id, lock=True), outcome=Outcome.UNKNOWN_DOMAIN)
    ticket_move(locked, to=S.RESOLVED, actor="worker", reason="domain not in our OpenSRS account")
    return "unknown_domain"


def _resend_transient(ticket_id: int, exc: OpenSRSError, *, stage: str) -> str:
    """Record an OpenSRS failure that sent nothing; raise PasswordResendRetry or give up."""
    with transaction.atomic():
        locked = _resend_locked_new(ticket_id)
        if locked is None:
            return "skipped"
        state = _resend_state(ticket_id, lock=True)
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
            _resend_note(
                locked,
                RESEND_NOTE_RETRYING.format(
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


def _resend_last_reset(name: str, now: datetime) -> PasswordResend | None:
    """The last reset asked for `name` when one more now would pass the per-domain limits."""
    asked = PasswordResend.objects.filter(domain_name=name, asked_at__isnull=False)
    for scope in ("resend_per_domain", "resend_per_domain_day"):
        limit, seconds = settings.RATE_LIMITS[scope]
        if asked.filter(asked_at__gt=now - timedelta(seconds=seconds)).count() >= limit:
            return asked.order_by("-asked_at", "-pk").first()
    return None


@transaction.atomic
def _resend_coalesce(ticket_id: int, last: PasswordResend) -> str:
    """Answer a request past the domain's limits with the last reset: no OpenSRS call, no mail."""
    locked = _resend_locked_new(ticket_id)
    if locked is None:
        return "skipped"
    _resend_set(
        _resend_state(ticket_id, lock=True),
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


@transaction.atomic
def _resend_prepare(ticket_id: int, owner_email: str) -> tuple[str, Ticket | None]:
    """Refresh the record and either refer the ticket or mark SEND_PASSWORD as started."""
    locked = _resend_locked_new(ticket_id)
    if locked is None:
        return "skipped", None
    state = _resend_state(ticket_id, lock=True)
    if state.stage not in (Stage.PENDING, Stage.NOT_SENT):
        return "skipped", None
    domain = _resend_domain_refresh(locked, owner_email)
    if domain.registrant_email_status == Domain.EmailStatus.BOUNCING:
        _resend_refer(locked, reason="the registration email address is bouncing")
        return "referred", None
    if not _email_deliverable(owner_email):
        _resend_refer(locked, reason="the registration record has no usable email address")
        return "referred", None
    # Counted again under the domain's lock (taken by the refresh): two workers for one
    # domain cannot both pass the limits.
    now = timezone.now()
    last = _resend_last_reset(locked.requested_domain, now)
    if last is not None:
        return "coalesce", None
    # Committed before the call: a redelivered task that finds it never calls OpenSRS again.
    _resend_set(state, stage=Stage.STARTED, asked_at=now)
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
    _resend_set(_resend_state(ticket_id, lock=True), stage=stage)
    audit_record(
        actor="worker", action=_RESEND_SEND_MARK, ticket=locked, details={"stage": stage, **details}
    )


@transaction.atomic
def _resend_finish(ticket_id: int, *, registrant_email: str, response_code: int) -> str:
    """SEND_PASSWORD succeeded: tell the registration address ourselves and resolve."""
    locked = ticket_lock(pk=ticket_id)
    state = _resend_state(ticket_id, lock=True)
    _resend_set(state, stage=Stage.SENT)
    audit_record(
        actor="worker",
        action=_RESEND_SEND_MARK,
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


def _resend_owner_contact(
    client: OpenSRSClient, ticket_id: int, name: str
) -> tuple[str, OwnerContact]:
    """The registration record's owner; `www.example.com` is `example.com` when that is ours.

    Raises DomainNotInAccount when neither name is in our reseller account.
    """
    try:
        return name, client.get_owner_contact(name)
    except DomainNotInAccount:
        bare = domain_name_bare(name)
        if bare is None:
            raise
        owner = client.get_owner_contact(bare)
    with transaction.atomic():
        locked = ticket_lock(pk=ticket_id)
        locked.requested_domain = bare
        locked.save(update_fields=["requested_domain", "updated_at"])
        PasswordResend.objects.filter(ticket_id=ticket_id).update(
            domain_name=bare, updated_at=timezone.now()
        )
        audit_record(
            actor="worker",
            action="resend.domain_resolved",
            ticket=locked,
            details={"typed": name, "registered": bare},
        )
    return bare, owner


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
    state = _resend_state(ticket_id)
    if state.stage == Stage.STARTED:
        # An earlier delivery died between asking OpenSRS and recording the answer.
        return _resend_to_staff(
            ticket_id,
            action="resend.outcome_unknown",
            note=RESEND_NOTE_OUTCOME_UNKNOWN.format(error="the worker stopped mid-call"),
            details={"error": "worker stopped during SEND_PASSWORD"},
            reason="SEND_PASSWORD outcome unknown",
        )
    name = ticket.requested_domain
    last = _resend_last_reset(name, timezone.now())
    if last is not None:
        return _resend_coalesce(ticket_id, last)
    client = client_from_settings(audit_hook=_opensrs_audit_hook(ticket))
    try:
        name, owner = _resend_owner_contact(client, ticket_id, name)
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
    if outcome == "coalesce":
        last = _resend_last_reset(name, timezone.now())
        if last is not None:
            return _resend_coalesce(ticket_id, last)
        return "skipped"
    if locked is None:
        return outcome
    try:
        reply = client.send_password(name, send_to="owner")
    except OpenSRSOutcomeUnknown as exc:
        _resend_record_stage(ticket_id, Stage.UNKNOWN, {"error": str(exc)[:500]})
        return _resend_to_staff(
            ticket_id,
            action="resend.outcome_unknown",
            note=RESEND_NOTE_OUTCOME_UNKNOWN.format(error=exc),
            details={"error": str(exc)[:500]},
            reason="SEND_PASSWORD outcome unknown",
        )
    except OpenSRSError as exc:
        # Every other typed error means OpenSRS did not send anything.
        _resend_record_stage(ticket_id, Stage.NOT_SENT, {"code": exc.code, "error": str(exc)[:500]})
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


def password_resend_notice_bounced(*, notification: Notification, reason: str) -> None:
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
