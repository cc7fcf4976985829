"""Verification against the email on record."""

import hmac
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from helpdesk.exceptions import ApplicationError
from helpdesk.links import site_url
from helpdesk.ratelimit import rate_limit_hit
from tickets.audit import Actor, audit_record
from tickets.lock_objects import ticket_lock, tickets_and_customers_lock, verification_lock
from tickets.models import Message, Ticket, Verification
from tickets.selectors.status_page import ticket_address_matching
from tickets.selectors.verification import verification_refusal, verification_summary
from tickets.services.lifecycle import AccountLockedOut, account_locked_out_refusal
from tickets.services.outbox import ON_RECORD_OF, notification_queue
from tickets.services.transitions import ticket_move
from tickets.tokens import token_hash_if_wellformed, verification_token_hash

S = Ticket.Status


VERIFICATION_INVALID = gettext_noop(
    "This link is not valid: it may have been used already or have expired. "
    "Please make a new request."
)
_VERIFY_TEMPLATES: dict[str, str] = {
    Verification.Purpose.REQUESTER: "verify_request",
    Verification.Purpose.NEW_EMAIL: "verify_new_email",
}


def verification_issue(
    *,
    ticket: Ticket,
    purpose: str,
    send_to: str,
    ttl: timedelta,
    resolution_at: datetime | None = None,
) -> tuple[Verification, str]:
    """Store a new single-use link's hash and audit it; returns the row and the token.

    :param resolution_at: the resolution a satisfaction link asks about (Verification).
    """
    token = secrets.token_urlsafe(32)
    verification = Verification(
        ticket=ticket,
        purpose=purpose,
        sent_to=send_to,
        token_hash=verification_token_hash(token),
        expires_at=timezone.now() + ttl,
        resolution_at=resolution_at,
    )
    # The fields' own rules (the address above all); not the two reads that would ask whether
    # the ticket exists (the caller holds it) and whether 32 random bytes hash like a stored
    # token's (the unique index refuses that, failing the transaction): two round trips a link.
    verification.full_clean(exclude={"ticket"}, validate_unique=False)
    verification.save(force_insert=True)
    audit_record(
        actor="system",
        action="verification.sent",
        ticket=ticket,
        details={"purpose": purpose, "to": send_to, "expires_at": verification.expires_at},
    )
    return verification, token


def verification_link_issue(
    *, ticket: Ticket, purpose: str, send_to: str, ttl: timedelta, view: str
) -> str:
    """Issue a single-use link (verification_issue) and return its URL: `view` with the token."""
    _verification, token = verification_issue(
        ticket=ticket, purpose=purpose, send_to=send_to, ttl=ttl
    )
    return site_url(view, token)


def verification_link_lock_live(*, verification: Verification) -> Ticket | None:
    """Lock the link's ticket, then the link: the ticket while the link is still live, else None.

    For a write made with a reusable link (status, satisfaction) inside the caller's transaction:
    a freeze ends such links under these locks, and an email change moves the ticket's contact
    under the ticket's, so a write checked here never crosses either.
    """
    ticket = ticket_lock(pk=verification.ticket_id)
    if verification_lock(pk=verification.pk).expires_at <= timezone.now():
        return None
    if not ticket_address_matching(ticket, verification.sent_to):
        return None
    return ticket


@transaction.atomic
def verification_start(
    *, ticket: Ticket, purpose: str = Verification.Purpose.REQUESTER, send_to: str
) -> Verification:
    """Mail a single-use link for `ticket` to `send_to`, an address taken from the record."""
    verification, token = verification_issue(
        ticket=ticket, purpose=purpose, send_to=send_to, ttl=settings.VERIFICATION_TTL
    )
    # Imported here: the status link is issued through this module.
    from tickets.services.status_link import status_link_context

    follow = (
        status_link_context(recipient=send_to) if purpose == Verification.Purpose.REQUESTER else {}
    )
    owner = ticket.customer
    if purpose == Verification.Purpose.REQUESTER and owner and owner.email == send_to:
        # The owner's email on record (the new address of an email change is not): sent only
        # while it still is, for it summarises the changes asked for.
        follow[ON_RECORD_OF] = owner.number

    notification_queue(
        ticket=ticket,
        template=_VERIFY_TEMPLATES[purpose],
        recipient=send_to,
        context={
            "subject": ticket.subject,
            "summary": verification_summary(ticket=ticket, purpose=purpose),
            "link": site_url("portal:verify", token),
            "hours": int(settings.VERIFICATION_TTL.total_seconds() // 3600),
            **follow,
        },
        key=f"verify:{verification.pk}",
    )
    return verification


def verification_locked_out(ticket: Ticket) -> AccountLockedOut | None:
    """The refusal of a live link whose ticket's account is frozen or closed; None otherwise.

    Such a link confirms nothing, whatever its ticket asks: its changes, an opt-out, a new
    address, a choice of registration records. It stays unused, and works once a freeze is
    lifted (before it expires). Reads only; its page asks it before showing the button, and
    confirming asks it again under the customer's lock.
    """
    return account_locked_out_refusal(ticket.customer) if ticket.customer is not None else None


def _verification_consume(digest: str, actor: Actor) -> Ticket | None:
    # Committed even when refused: a refusal counts as a failed attempt.
    with transaction.atomic():
        found = Verification.objects.filter(token_hash=digest).values("pk", "ticket_id").first()
        if found is None:
            return None
        # The customer too: the flow goes on to change it (modify_verified, opt_out_verified).
        [ticket] = tickets_and_customers_lock(found["ticket_id"])
        verification = verification_lock(pk=found["pk"])
        if not hmac.compare_digest(verification.token_hash, digest):
            return None
        refusal = verification_refusal(ticket, verification)
        if refusal:
            Verification.objects.filter(pk=verification.pk).update(attempts=F("attempts") + 1)
            audit_record(
                actor=actor,
                action="verification.refused",
                ticket=ticket,
                details={"purpose": verification.purpose, "reason": refusal},
            )
            return None
        # Read under the customer's lock: a freeze or a closure committed meanwhile is seen.
        locked_out = verification_locked_out(ticket)
        if locked_out is not None:
            raise locked_out  # nothing written: the holder read the mail, and may come back
        verification.used_at = timezone.now()
        verification.save(update_fields=["used_at", "updated_at"])
        audit_record(
            actor=actor,
            action="verification.confirmed",
            ticket=ticket,
            details={"purpose": verification.purpose, "address": verification.sent_to},
        )
        if verification.purpose == Verification.Purpose.NEW_EMAIL:
            # Not the requester: the new address of an email change answered its link.
            from tickets.services.modify import modify_new_email_confirmed  # modify imports us

            modify_new_email_confirmed(ticket=ticket)
            return ticket
        ticket.verified_at = verification.used_at
        ticket.verified_by = Ticket.VerifiedBy.EMAIL_LINK
        ticket.verification = verification
        ticket.save(update_fields=["verified_at", "verified_by", "verification", "updated_at"])
        # The owner of the email on record stands behind the request: its words are theirs to
        # read now (its note, held while anyone could have typed their address).
        Message.objects.filter(ticket=ticket, unproven=True).update(unproven=False)
        ticket_move(ticket, to=S.OPEN, actor=actor, reason="verified by the email on record")
        _verified_flow_continue(ticket, actor=actor)
        return ticket


def _verified_flow_continue(ticket: Ticket, *, actor: Actor) -> None:
    """Go on with the ticket's flow once its requester proved they read the email on record.

    Runs in the confirming transaction. The flows import this module, so theirs are imported here.
    """
    if ticket.kind == Ticket.Kind.MODIFY_INFO:
        from tickets.services.modify import modify_verified

        modify_verified(ticket=ticket, actor=actor)
    elif ticket.kind == Ticket.Kind.OPT_OUT:
        from tickets.services.opt_out import opt_out_verified

        opt_out_verified(ticket=ticket, actor=actor)


def verification_confirm(*, token: str, client_key: str, actor: Actor) -> Ticket:
    """Use a verification link: the ticket leaves awaiting_verification and its flow goes on.

    AccountLockedOut (409, saying which) for a live link of a frozen or closed account.
    """
    rate_limit_hit(scope="verify_per_client", key=client_key)
    digest = token_hash_if_wellformed(token)
    ticket = _verification_consume(digest, actor) if digest is not None else None
    if ticket is None:
        raise ApplicationError(gettext(VERIFICATION_INVALID))
    return ticket


def verifications_expire(*, batch_size: int = 500) -> int:
    """Expire tickets still awaiting verification once their last link has expired."""
    now = timezone.now()
    # A status-page link is no confirmation link: it must not keep a request waiting.
    live = Verification.objects.filter(ticket=OuterRef("pk"), expires_at__gt=now).exclude(
        purpose__in=[Verification.Purpose.STATUS, Verification.Purpose.SATISFACTION]
    )
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
            ticket_move(ticket, to=S.EXPIRED, actor="system", reason="not verified in time")
            expired += 1
    return expired
