"""Password resend through the OpenSRS reseller API: the request, and the worker's run.

The steps the worker records (each in its own transaction) are in password_resend_steps.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.selectors import email_canonical
from domains.models import Domain
from domains.opensrs import (
    DomainNotInAccount,
    OpenSRSClient,
    OpenSRSError,
    OpenSRSExchange,
    OpenSRSOutcomeUnknown,
    OwnerContact,
    client_from_settings,
)
from domains.validators import domain_display, domain_name_bare, normalize_domain_name
from helpdesk.ratelimit import rate_limit_hits
from helpdesk.validators import address_normalised
from tickets.audit import Actor, audit_record
from tickets.lock_objects import domain_lock, ticket_lock
from tickets.models import Notification, PasswordResend, Ticket
from tickets.redaction import contains_card_number
from tickets.services import password_resend_steps as steps
from tickets.services.lifecycle import ticket_create
from tickets.services.outbox import notification_queue, notification_task
from tickets.services.publishing import tasks_publish, tasks_publish_each
from tickets.services.requester_mail import acknowledgement_allowed
from tickets.services.status_link import status_link_context
from tickets.tasks import password_resend_process as password_resend_task

S = Ticket.Status


RESEND_SUBJECT = "Password resend for {domain}"
RESEND_DETAIL = gettext_noop(
    "Your request is logged. If this domain is registered with us, a password reset link will be "
    "sent to the email address on its registration record, never to any other address."
)
RESEND_INVALID_DOMAIN = gettext_noop("Enter a domain name such as example.com.")
RESEND_INVALID_EMAIL = gettext_noop("Enter a valid email address, or leave it empty.")
RESEND_CARD_NUMBER = gettext_noop(
    "This looks like a card number, not a domain name. Never type card details here."
)
_RESEND_REFERRABLE = (S.OPEN, S.RESOLVED)
Stage = PasswordResend.Stage
Outcome = PasswordResend.Outcome


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
    tasks_publish_each(
        password_resend_task, due, key="ticket_id", what="password resends", sweep=True
    )
    return len(due)


def _resend_domain(domain: object) -> tuple[str, str]:
    """The domain name as stored and "", or "" and why it is refused."""
    try:
        name = normalize_domain_name(domain if isinstance(domain, str) else "")
    except ValidationError as exc:
        return "", exc.messages[0]  # why IDNA 2008 refuses it, if it says
    if contains_card_number(name):
        # Digits make a valid label: refused, or the number is kept in the ticket, the audit
        # chain and the acknowledgement.
        return "", gettext(RESEND_CARD_NUMBER)
    return (name, "") if name else ("", gettext(RESEND_INVALID_DOMAIN))


def _resend_contact_email(contact_email: str) -> str:
    contact_email = (contact_email or "").strip()
    if contact_email:
        try:
            contact_email = address_normalised(contact_email)
        except ValidationError:
            raise ValidationError({"contact_email": [gettext(RESEND_INVALID_EMAIL)]}) from None
    return contact_email


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
    name, refusal = _resend_domain(domain)
    # Per client and in all, never per domain: past the domain limits a request is coalesced
    # by the worker, so nobody can lock a domain's owner out.
    rate_limit_hits(("request_per_client", client_key), ("request_global", "all"))
    if not name:
        raise ValidationError({"domain": [refusal]})
    contact_email = _resend_contact_email(contact_email)
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
    tasks: list[tuple[Any, dict[str, Any]]] = [(password_resend_task, {"ticket_id": ticket.pk})]
    if contact_email and acknowledgement_allowed(contact_email, client_key=client_key):
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

    Each step it records is a transaction of its own in password_resend_steps. Raises
    PasswordResendRetry when OpenSRS was unreachable and nothing was sent.
    """
    ticket = (
        Ticket.objects.filter(pk=ticket_id, kind=Ticket.Kind.RESEND_PASSWORD, status=S.NEW)
        .select_related("customer")
        .first()
    )
    if ticket is None:
        return "skipped"
    if steps.resend_state(ticket_id).stage == Stage.STARTED:
        # An earlier delivery died between asking OpenSRS and recording the answer.
        return steps.resend_outcome_unknown(ticket_id, error="the worker stopped mid-call")
    name = ticket.requested_domain
    last = steps.resend_last_reset(name, timezone.now())
    if last is not None:
        return steps.resend_coalesce(ticket_id, last)
    client = client_from_settings(audit_hook=_opensrs_audit_hook(ticket))
    try:
        name, owner = _resend_owner_contact(client, ticket_id, name)
    except OpenSRSError as exc:
        return steps.resend_opensrs_failed(ticket_id, exc, stage="get_owner")

    outcome, locked = steps.resend_prepare(ticket_id, owner.email)
    if outcome == "coalesce":
        last = steps.resend_last_reset(name, timezone.now())
        return "skipped" if last is None else steps.resend_coalesce(ticket_id, last)
    if locked is None:
        return outcome
    try:
        reply = client.send_password(name, send_to="owner")
    except OpenSRSOutcomeUnknown as exc:
        steps.resend_record_stage(ticket_id, Stage.UNKNOWN, {"error": str(exc)[:500]})
        return steps.resend_outcome_unknown(ticket_id, error=str(exc))
    except OpenSRSError as exc:
        # Every other typed error means OpenSRS did not send anything.
        steps.resend_record_stage(
            ticket_id, Stage.NOT_SENT, {"code": exc.code, "error": str(exc)[:500]}
        )
        return steps.resend_opensrs_failed(ticket_id, exc, stage="send_password")
    return steps.resend_finish(ticket_id, registrant_email=owner.email, response_code=reply.code)


@dataclass(frozen=True)
class NoticeBounce:
    """What a bounced notice to a registration address changes, locked."""

    ticket: Ticket
    tickets: list[Ticket]
    domain: Domain | None  # set when the address that bounced is still the domain's


def password_resend_notice_bounce_lock(*, notification: Notification) -> NoticeBounce | None:
    """Lock what a bounced notice changes: its ticket, the domain's open resends, the domain.

    Tickets first, then the domain, before anything is recorded (tickets.lock_objects).
    """
    if notification.ticket_id is None:
        return None
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
    tickets = [ticket_lock(pk=pk) for pk in sorted(pks)]
    # `current` is true only with a domain.
    locked_domain = domain_lock(pk=cast(Domain, domain).pk) if current else None
    return NoticeBounce(ticket=ticket, tickets=tickets, domain=locked_domain)


def password_resend_notice_bounced(*, bounce: NoticeBounce, reason: str) -> None:
    """Our notice to a registration address bounced: that address is dead, refer its tickets."""
    for locked in bounce.tickets:
        if locked.kind == Ticket.Kind.RESEND_PASSWORD and locked.status in _RESEND_REFERRABLE:
            steps.resend_refer(
                locked, reason="our notice to the registration email address bounced"
            )
    domain = bounce.domain
    if domain is not None and domain.registrant_email_status != Domain.EmailStatus.BOUNCING:
        domain.registrant_email_status = Domain.EmailStatus.BOUNCING
        domain.save(update_fields=["registrant_email_status", "updated_at"])
        audit_record(
            actor="worker",
            action="domain.registrant_email_bouncing",
            ticket=bounce.ticket,
            details={
                "domain": domain.name,
                "registrant_email": domain.registrant_email,
                "reason": reason[:500],
            },
        )
