"""Approving a change request: who may, and the one place a customer's record is changed."""

from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.lock_objects import user_lock
from accounts.models import Customer
from accounts.selectors import (
    customer_account_open,
    customer_get_by_email,
    email_canonical,
    is_staff_member,
    is_supervisor,
    login_with_address_exists,
)
from helpdesk.exceptions import ApplicationError, StaffForbidden, TransitionNotAllowed
from helpdesk.validators import address_valid
from tickets.audit import Actor, audit_record
from tickets.lock_objects import customer_lock, tickets_and_customers_lock, tickets_of_customer_lock
from tickets.models import (
    CHANGE_REQUEST_KINDS,
    FieldChange,
    Ticket,
    Verification,
)
from tickets.request_fields import MODIFY_FIELD_LABELS, MODIFY_SENSITIVE
from tickets.services.freeze import freeze_link_issue
from tickets.services.lifecycle import account_locked_out_refusal
from tickets.services.opt_out import unsubscribe_links_end
from tickets.services.outbox import ON_RECORD_OF, notification_queue
from tickets.services.registration import (
    registration_changes_queue,
)
from tickets.services.transitions import OWNER_NOT_VERIFIED, ticket_move, ticket_needs_owner
from tickets.services.versions import ticket_version_bump, ticket_version_check

S = Ticket.Status
# The statuses in which a verified change request waits for staff.
MODIFY_APPROVABLE_STATUSES = (S.OPEN, S.AWAITING_CUSTOMER)
MODIFY_STAFF_ONLY = gettext_noop("Only help-desk staff can approve changes.")
MODIFY_NEEDS_SUPERVISOR = gettext_noop(
    "Only a supervisor can approve a change of name or email address."
)
APPROVALS_FORBIDDEN = gettext_noop("Only a supervisor can see the changes waiting for approval.")
MODIFY_NEW_EMAIL_UNCONFIRMED = gettext_noop(
    "The new email address has not confirmed its link yet; the change cannot be applied."
)
MODIFY_CONFLICT = gettext_noop(
    "The details on record changed since this request was made ({fields}); nothing was applied. "
    "Reject the request and ask the customer to check their details."
)
MODIFY_EMAIL_TAKEN = gettext_noop("The new email address already belongs to another account.")
NOTHING_TO_APPROVE = gettext_noop("There is nothing to approve on this ticket.")
MODIFY_OWN_REQUEST = gettext_noop(
    "This change is to your own customer record: another member of staff must approve it."
)


MODIFY_EMAIL_NOT_PLAIN = gettext_noop(
    "The new email address is not a plain one every mail program reads alike (it has quotes, "
    "spaces, a comment or an IP address); it cannot be applied. Ask the customer for another."
)


class ApprovalForbidden(ApplicationError):
    """The actor's role may not approve this change (HTTP 403)."""

    status_code = 403


class ModifyConflict(ApplicationError):
    """The record changed since the request; staff must look again (HTTP 409)."""

    status_code = 409


def modify_pending(ticket: Ticket) -> list[FieldChange]:
    return list(ticket.changes.filter(applied_at__isnull=True).order_by("id"))


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


def modify_changes_apply(
    ticket: Ticket, customer: Customer, changes: list[FieldChange], *, actor: Actor, how: str
) -> None:
    """Write the changes to the locked customer, audit old and new values, tell the owner.

    Every path that changes a customer's record passes here, so the owner's verification is
    checked here too, whatever the caller already checked.
    """
    if ticket_needs_owner(ticket) or ticket.customer_id != customer.pk:
        raise TransitionNotAllowed(OWNER_NOT_VERIFIED, {"status": ticket.status})
    # Frozen, or closed: a closed account has left, and its address may be someone else's now.
    locked_out = account_locked_out_refusal(customer)
    if locked_out is not None:
        raise locked_out
    # Asked for before the one rule for addresses held (helpdesk.validators): never applied.
    if any(c.field == "email" and not address_valid(c.new_value) for c in changes):
        raise ApplicationError(gettext(MODIFY_EMAIL_NOT_PLAIN))
    old_email = customer.email
    rows = [
        {"field": c.field, "old": getattr(customer, c.field), "new": c.new_value} for c in changes
    ]
    for change in changes:
        setattr(customer, change.field, change.new_value)
    fields = [change.field for change in changes]
    email_changed = "email" in fields
    login = None
    followers: list[Ticket] = []
    if email_changed:
        fields.append(unsubscribe_links_end(customer))
        other = customer_get_by_email(email=customer.email)
        if other is not None and other.pk != customer.pk:
            raise ApplicationError(MODIFY_EMAIL_TAKEN)
        # Locked before anything is recorded (the order in tickets.lock_objects). All of the
        # account's tickets: a resolved one takes a reply from its status link (reopened, then
        # answered by mail), and a finished one's page still reads, as the freeze's reasons go.
        followers = tickets_of_customer_lock(
            customer=customer, statuses=Ticket.Status.values, exclude=ticket
        )
        login = modify_login_for(customer, old_email)
    try:
        # A savepoint: the address may be taken by an approval that committed since it was
        # looked up above, which the unique index says (having waited for that commit).
        with transaction.atomic():
            customer.save(update_fields=[*fields, "updated_at"])
            if login is not None:
                login.save(update_fields=["username", "email"])
    except IntegrityError:
        if not email_changed:
            raise
        raise ApplicationError(MODIFY_EMAIL_TAKEN) from None
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
    _modify_applied_tell(ticket, customer, rows, old_email=old_email if email_changed else "")
    if email_changed:
        _contact_follow_record(ticket, customer, followers, old_email, actor)
        registration_changes_queue(ticket=ticket, actor=actor)


def _modify_applied_tell(
    ticket: Ticket, customer: Customer, rows: list[dict[str, str]], *, old_email: str
) -> None:
    """Tell the owner what changed; a new email (`old_email` set) is told to both addresses."""
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
                ],
                ON_RECORD_OF: customer.number,
            },
        )
    if not old_email:
        return
    notification_queue(
        ticket=ticket,
        template="email_changed_old",
        recipient=old_email,
        context={
            "new_email_masked": _mask_email(customer.email),
            "link": freeze_link_issue(ticket=ticket, old_email=old_email),
            "days": settings.FREEZE_LINK_TTL.days,
        },
    )
    notification_queue(
        ticket=ticket, template="email_changed_new", recipient=customer.email, context={}
    )


def _contact_follow_record(
    ticket: Ticket, customer: Customer, others: list[Ticket], old_email: str, actor: Actor
) -> None:
    """Point the ticket, and those of the locked `others` that wrote to the old address, anew."""
    ticket.contact_email = customer.email
    ticket.save(update_fields=["contact_email", "updated_at"])
    old = email_canonical(old_email)
    for other in others:
        if email_canonical(other.contact_email) != old:
            continue
        other.contact_email = customer.email
        other.save(update_fields=["contact_email", *ticket_version_bump(other)])
        audit_record(
            actor=actor,
            action="ticket.contact_changed",
            ticket=other,
            details={"reason": "email on record changed", "by_ticket": ticket.reference},
        )


def modify_login_for(customer: Customer, old_email: str) -> Any:
    """The customer's portal login, updated in memory when it signs in with the old address."""
    if customer.user_id is None:
        return None
    user = user_lock(pk=customer.user_id)
    old = email_canonical(old_email)
    if email_canonical(user.get_username()) != old and email_canonical(user.email) != old:
        return None
    # No other login may hold the new address, as username or email, however written: a
    # password reset for it would mail that login's link too (accounts' login address rule).
    if login_with_address_exists(address=customer.email, exclude_pk=user.pk):
        raise ApplicationError(MODIFY_EMAIL_TAKEN)
    if email_canonical(user.get_username()) == old:
        user.username = customer.email
    user.email = customer.email
    return user


@dataclass(frozen=True)
class Approval:
    """Whether an actor may approve a ticket's change request now, and if not, why.

    `possible` says the ticket has a change waiting for staff at all (the page shows the
    button); `refusal` is the error approving would raise now (the button is disabled with its
    message). The service, the staff page and the API all read this one answer.
    """

    possible: bool
    needs_supervisor: bool
    refusal: ApplicationError | None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def modify_approval(ticket: Ticket, actor: Actor) -> Approval:
    """The approval rules for `ticket` and `actor`; reads only (the caller locks if it writes)."""
    # Only a change request has field changes: another kind's are not read at all.
    changes = ticket.changes.all() if ticket.kind in CHANGE_REQUEST_KINDS else []
    pending = [change for change in changes if change.applied_at is None]
    possible = (
        ticket.kind in CHANGE_REQUEST_KINDS
        and ticket.status in MODIFY_APPROVABLE_STATUSES
        and bool(pending)
        and ticket.customer_id is not None
    )
    needs_supervisor = bool(MODIFY_SENSITIVE & {change.field for change in pending})
    refusal: ApplicationError | None = None
    if isinstance(actor, str | Customer) or not is_staff_member(actor):
        refusal = ApprovalForbidden(MODIFY_STAFF_ONLY)
    elif pending and ticket_needs_owner(ticket):
        refusal = TransitionNotAllowed(OWNER_NOT_VERIFIED, {"status": ticket.status})
    elif not possible:
        refusal = TransitionNotAllowed(NOTHING_TO_APPROVE, {"status": ticket.status})
    elif ticket.customer is not None and not customer_account_open(ticket.customer):
        refusal = account_locked_out_refusal(ticket.customer)
    elif ticket.customer is not None and ticket.customer.user_id == actor.pk:
        # A customer's login given a staff role: the approval is another person's look.
        refusal = ApprovalForbidden(MODIFY_OWN_REQUEST)
    elif needs_supervisor and not is_supervisor(actor):
        refusal = ApprovalForbidden(MODIFY_NEEDS_SUPERVISOR)
    elif any(
        change.field == "email" and not _modify_new_email_is_confirmed(ticket, change.new_value)
        for change in pending
    ):
        refusal = TransitionNotAllowed(MODIFY_NEW_EMAIL_UNCONFIRMED)
    return Approval(possible=possible, needs_supervisor=needs_supervisor, refusal=refusal)


def modify_awaiting_supervisor() -> QuerySet[Ticket]:
    """Change requests only a supervisor may approve, oldest first, with their pending diff.

    The database form of `modify_approval`'s `possible and needs_supervisor`, kept next to it so
    the rule lives in one module (a test holds the two to the same answer).
    """
    pending = FieldChange.objects.filter(applied_at__isnull=True)
    return (
        Ticket.objects.filter(
            Exists(pending.filter(ticket=OuterRef("pk"), field__in=sorted(MODIFY_SENSITIVE))),
            kind=Ticket.Kind.MODIFY_INFO,
            status__in=MODIFY_APPROVABLE_STATUSES,
            customer__isnull=False,
        )
        .select_related("customer", "assignee")
        .prefetch_related(Prefetch("changes", queryset=pending.order_by("id")))
        .order_by("created_at", "id")
    )


def modify_approvals_waiting(*, user: User | AnonymousUser, limit: int) -> tuple[list[Ticket], int]:
    """The first `limit` of `modify_awaiting_supervisor`, and how many wait in all.

    The supervisors' list: anyone else is refused (StaffForbidden), whatever screen asks.
    """
    if not is_supervisor(user):
        raise StaffForbidden(APPROVALS_FORBIDDEN)
    waiting = modify_awaiting_supervisor()
    tickets = list(waiting[:limit])
    return tickets, len(tickets) if len(tickets) < limit else waiting.count()


@transaction.atomic
def modify_approve(*, ticket: Ticket, actor: Actor, expected_version: int | None = None) -> Ticket:
    """Apply a verified change request that waits for staff, atomically and at most once."""
    if isinstance(actor, str | Customer) or not is_staff_member(actor):
        raise ApprovalForbidden(MODIFY_STAFF_ONLY)
    [locked] = tickets_and_customers_lock(ticket.pk)
    ticket_version_check(locked, expected_version)
    approval = modify_approval(locked, actor)
    if approval.refusal is not None:
        raise approval.refusal
    pending = modify_pending(locked)
    customer = customer_lock(pk=cast(int, locked.customer_id))
    conflicts = [c.field for c in pending if getattr(customer, c.field) != c.old_value]
    if conflicts:
        raise ModifyConflict(
            gettext(MODIFY_CONFLICT).format(fields=", ".join(conflicts)), {"fields": conflicts}
        )
    modify_changes_apply(locked, customer, pending, actor=actor, how="approved by staff")
    ticket_move(locked, to=S.RESOLVED, actor=actor, reason="changes applied")
    return locked


def ticket_approve(*, ticket: Ticket, actor: Actor, expected_version: int | None = None) -> Ticket:
    """Approve what a ticket asks for; only change requests have anything to approve."""
    if ticket.kind == Ticket.Kind.MODIFY_INFO:
        return modify_approve(ticket=ticket, actor=actor, expected_version=expected_version)
    raise TransitionNotAllowed(NOTHING_TO_APPROVE, {"kind": ticket.kind})
