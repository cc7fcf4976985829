"""Email change -> registration change: keep OpenSRS's contacts in step, in the same request.

When a change request moves a customer's email and some of their domains' registration records
name the old address, the request offers those domains (`RegistrationChange` rows). Only the
owner chooses, per domain, whether the owner and/or admin email at OpenSRS change too: with the
verification link, or in their own session. Nothing is sent to OpenSRS before staff approve the
email change; then the worker makes each chosen change once (MODIFY DOMAIN data=contact_info)
and records OpenSRS's answer on the row and the audit log. A change whose outcome is unknown is
never repeated: it becomes a task for staff.
"""

import hmac
from collections.abc import Iterable, Mapping

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts.models import Customer
from domains.models import RegistrationChange
from helpdesk.exceptions import ApplicationError
from tickets.audit import Actor, audit_record
from tickets.lock_objects import registration_changes_offered_lock, tickets_and_customers_lock
from tickets.models import Ticket
from tickets.selectors.registration import registration_domains_of
from tickets.services.lifecycle import account_locked_out_refusal
from tickets.services.publishing import registration_changes_publish
from tickets.services.transitions import ticket_needs_owner
from tickets.services.verification import verification_confirm
from tickets.tokens import token_hash_if_wellformed

RC = RegistrationChange.Status
S = Ticket.Status

REGISTRATION_CHOICE_CLOSED = gettext_noop(
    "The registration records of this request can no longer be chosen: the email change was "
    "already decided."
)
REGISTRATION_OWNER_ONLY = gettext_noop(
    "Only the customer can choose to change a domain's registration record."
)


# --- offering and choosing ------------------------------------------------------------------


def registration_changes_offer(*, ticket: Ticket, customer: Customer, new_email: str) -> int:
    """List the customer's domains whose registration record names their current email.

    Called in the transaction that records an email change request; nothing is chosen yet.
    """
    offer = registration_domains_of(customer=customer)
    RegistrationChange.objects.bulk_create(
        RegistrationChange(
            ticket=ticket,
            domain_id=row["id"],
            old_email=customer.email,
            new_email=new_email,
            owner_matches=row["owner"],
            admin_matches=row["admin"],
        )
        for row in offer
    )
    if offer:
        audit_record(
            actor="system",
            action="registration.offered",
            ticket=ticket,
            details={
                "domains": [
                    {"domain": r["name"], "owner": r["owner"], "admin": r["admin"]} for r in offer
                ]
            },
        )
    return len(offer)


def _registration_choose(
    ticket: Ticket, choices: Mapping[str, Iterable[str]], actor: Actor, via: str
) -> None:
    """Store the owner's choice on a locked, verified ticket whose email change is pending.

    The caller locked the ticket's customer first: a frozen or closed account chooses nothing,
    nor does a choice the freeze or the closure overtook (AccountLockedOut, saying which).
    """
    refusal = account_locked_out_refusal(ticket.customer) if ticket.customer else None
    if refusal is not None:
        raise refusal
    email_pending = ticket.changes.filter(field="email", applied_at__isnull=True).exists()
    if ticket_needs_owner(ticket) or not email_pending or not ticket.is_open:
        raise ApplicationError(REGISTRATION_CHOICE_CLOSED)
    changes = registration_changes_offered_lock(ticket=ticket)
    chosen = []
    now = timezone.now()
    for change in changes:
        kinds = set(choices.get(change.domain.name, ()))
        change.update_owner = change.owner_matches and "owner" in kinds
        change.update_admin = change.admin_matches and "admin" in kinds
        change.chosen_at = now
        change.save(update_fields=["update_owner", "update_admin", "chosen_at", "updated_at"])
        chosen.append(
            {
                "domain": change.domain.name,
                "owner": change.update_owner,
                "admin": change.update_admin,
            }
        )
    if changes:
        audit_record(
            actor=actor,
            action="registration.chosen",
            ticket=ticket,
            details={"via": via, "domains": chosen},
        )


@transaction.atomic
def registration_choose_by_owner(
    *, ticket: Ticket, customer: Customer, choices: Mapping[str, Iterable[str]]
) -> None:
    """The owner, in their own session, chooses which registration records change too."""
    [locked] = tickets_and_customers_lock(ticket.pk)
    if locked.customer_id != customer.pk:
        raise ApplicationError(REGISTRATION_OWNER_ONLY)
    _registration_choose(locked, choices, customer, "session")


def _registration_offered(ticket: Ticket) -> bool:
    """Whether the owner still has registration changes to choose on `ticket`; reads only."""
    return RegistrationChange.objects.filter(
        ticket=ticket, purpose=RegistrationChange.Purpose.CHANGE, status=RC.OFFERED
    ).exists()


def registration_confirm(
    *, token: str, choices: Mapping[str, Iterable[str]], client_key: str, actor: Actor
) -> Ticket:
    """Confirm a verification link and store the choice made on its page.

    The link is confirmed first (its own transaction: a refused token counts as a failed try);
    the choice is stored only for a request this very link just verified.
    """
    # A frozen or closed account's link confirms nothing (AccountLockedOut, from confirming).
    ticket = verification_confirm(token=token, client_key=client_key, actor=actor)
    with transaction.atomic():
        [locked] = tickets_and_customers_lock(ticket.pk)
        # The owner's own link, not another of the ticket's (the new address confirms with one
        # too, and may not choose what changes at OpenSRS).
        digest = token_hash_if_wellformed(token) or ""
        verified_by_this_link = (
            locked.verified_by == Ticket.VerifiedBy.EMAIL_LINK
            and locked.verification is not None
            and hmac.compare_digest(locked.verification.token_hash, digest)
        )
        if (
            locked.kind == Ticket.Kind.MODIFY_INFO
            and verified_by_this_link
            and _registration_offered(locked)
        ):
            _registration_choose(locked, choices, actor, "verification link")
    return ticket


# --- approval ---------------------------------------------------------------------------------


def registration_changes_queue(*, ticket: Ticket, actor: Actor) -> list[int]:
    """The email change was applied: queue the chosen registration changes for the worker.

    Called in the approving transaction (`_modify_apply`), so a change goes out only for a
    verified request whose email change staff approved. Unchosen ones are closed as skipped.
    """
    changes = registration_changes_offered_lock(ticket=ticket)
    queued = [c.pk for c in changes if c.chosen]
    now = timezone.now()
    RegistrationChange.objects.filter(pk__in=queued).update(status=RC.QUEUED, updated_at=now)
    RegistrationChange.objects.filter(pk__in=[c.pk for c in changes if not c.chosen]).update(
        status=RC.SKIPPED, response_text="not chosen by the customer", updated_at=now
    )
    if changes:
        audit_record(
            actor=actor,
            action="registration.queued",
            ticket=ticket,
            details={
                "queued": [c.domain.name for c in changes if c.chosen],
                "not_chosen": [c.domain.name for c in changes if not c.chosen],
            },
        )
    if queued:
        transaction.on_commit(lambda: registration_changes_publish(queued))
    return queued
