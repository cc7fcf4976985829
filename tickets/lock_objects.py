"""Every row lock the tickets services take; each helper says where it stands among the others.

One order for all, so that two transactions never each hold a row the other waits for:

1. customers, in pk order (`tickets_and_customers_lock` takes a ticket's customer before it);
2. tickets, in pk order;
3. the rows that hang off a ticket (verification, resend, satisfaction, registration changes),
   domains, logins;
4. the audit chain head, last: every writer waits on it, so a lock taken after a transaction's
   first audit row can wait on a transaction that waits on the head. A flow takes every lock it
   will need before it records anything. (The daily statistics rows come after the head: only
   its holder writes them, see tickets.services.stats.)

Rows that other rows point at (customers, tickets, verification links, domains, logins) are
locked FOR NO KEY UPDATE, never FOR UPDATE: a transaction checks the foreign keys of what it
wrote when it commits (FOR KEY SHARE on the rows they point at), holding the audit chain head
by then, and that check must not wait for a row whose holder waits for the head.
"""

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db.models import Model, QuerySet

from accounts.models import Customer
from domains.models import Domain, RegistrationChange, RegistrationWarning
from tickets.models import (
    AnonymousRequest,
    AuditChainHead,
    Message,
    Notification,
    PasswordResend,
    Satisfaction,
    SavedView,
    Ticket,
    Verification,
)


def ticket_lock(*, pk: int) -> Ticket:
    """Lock one ticket row for the rest of the transaction; concurrent actions queue behind it."""
    # NO KEY UPDATE: the foreign-key checks of audit rows (FOR KEY SHARE) written by a
    # transaction holding the audit chain head must not wait on it (deadlock otherwise).
    return (
        Ticket.objects.select_for_update(of=("self",), no_key=True)
        .select_related("customer", "domain", "assignee")
        .get(pk=pk)
    )


def message_ticket_lock(*, message_id: int) -> Ticket:
    """Lock the ticket a message is on now (a ticket lock, in its place among the others).

    A merge moves messages to another ticket while it holds both: read under the lock again,
    and follow the message if it moved before the lock was granted.
    """
    while True:
        ticket_id = Message.objects.values_list("ticket_id", flat=True).get(pk=message_id)
        ticket = ticket_lock(pk=ticket_id)
        if Message.objects.filter(pk=message_id, ticket_id=ticket.pk).exists():
            return ticket


def tickets_and_customers_lock(*pks: int) -> list[Ticket]:
    """Lock these tickets' customers, then the tickets, each in pk order; in the order asked.

    Every flow that locks a customer, or more than one ticket, starts here: two flows on one
    customer then queue on its row, instead of each holding a ticket the other one waits for.
    """
    owners = Ticket.objects.filter(pk__in=pks, customer__isnull=False).values("customer_id")
    held = set(
        Customer.objects.select_for_update(of=("self",), no_key=True)
        .filter(pk__in=owners)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    locked = {pk: ticket_lock(pk=pk) for pk in sorted(set(pks))}
    for ticket in locked.values():
        # Linked to its customer between the two reads: rare, and out of order only then.
        if ticket.customer_id is not None and ticket.customer_id not in held:
            customer_lock(pk=ticket.customer_id)
    return [locked[pk] for pk in pks]


def tickets_of_customer_lock(
    *, customer: Customer, statuses: Iterable[str], exclude: Ticket, kind: str | None = None
) -> list[Ticket]:
    """Lock the customer's tickets in `statuses` (of `kind`) but `exclude`, in pk order.

    The caller holds the customer and has recorded nothing yet, so whoever holds one of these
    waits on nothing the caller holds.
    """
    rows = Ticket.objects.select_for_update(no_key=True).filter(
        customer=customer, status__in=statuses
    )
    if kind is not None:
        rows = rows.filter(kind=kind)
    return list(rows.exclude(pk=exclude.pk).order_by("pk"))


def notification_lock(*, pk: int) -> Notification:
    """Lock one notification row (an ESP event for it is being stored)."""
    return Notification.objects.select_for_update().get(pk=pk)


def verification_lock(*, pk: int) -> Verification:
    """Lock one verification link; callers take it after its ticket's lock."""
    return Verification.objects.select_for_update(no_key=True).get(pk=pk)


def anonymous_request_lock(*, ticket_id: int) -> AnonymousRequest:
    """Lock the anonymous request stored with a ticket; callers take it after the ticket's lock."""
    return AnonymousRequest.objects.select_for_update().get(ticket_id=ticket_id)


def password_resend_lock(*, ticket_id: int) -> PasswordResend:
    """Lock the resend row of a ticket; callers take it after the ticket's lock."""
    return PasswordResend.objects.select_for_update().get(ticket_id=ticket_id)


def satisfaction_lock(*, ticket: Ticket) -> Satisfaction | None:
    """Lock the ticket's satisfaction answer, if any; callers take it after the ticket's lock."""
    return Satisfaction.objects.select_for_update().filter(ticket=ticket).first()


def saved_view_lock(*, owner: User, name: str) -> SavedView | None:
    """Lock the owner's saved view of that name, if any (before the owner's login row)."""
    return SavedView.objects.select_for_update().filter(owner=owner, name=name).first()


def saved_view_lock_by_pk(*, owner: User, pk: int) -> SavedView | None:
    """Lock one of the owner's saved views by its id, if it is still there."""
    return SavedView.objects.select_for_update().filter(owner=owner, pk=pk).first()


def customer_lock(*, pk: int) -> Customer:
    """Lock a customer row before any of its tickets (again: a no-op wait for the holder)."""
    return Customer.objects.select_for_update(of=("self",), no_key=True).get(pk=pk)


def customer_warnings_lock(*, pk: int) -> Customer:
    """Lock a customer for its run of registration warnings (no ticket lock is held)."""
    return Customer.objects.select_for_update(no_key=True).get(pk=pk)


def customers_batch_lock(*, rows: QuerySet[Customer], after: int, size: int) -> list[Customer]:
    """Lock the next `size` customers of `rows` past pk `after`, in pk order."""
    return list(
        rows.filter(pk__gt=after).order_by("pk").select_for_update(of=("self",), no_key=True)[:size]
    )


def registration_changes_offered_lock(
    *, ticket: Ticket, purpose: str = RegistrationChange.Purpose.CHANGE
) -> list[RegistrationChange]:
    """Lock the registration changes (or put-backs) still offered on a ticket (it is held)."""
    return list(
        RegistrationChange.objects.select_for_update()
        .filter(ticket=ticket, purpose=purpose, status=RegistrationChange.Status.OFFERED)
        .select_related("domain")
        .order_by("pk")
    )


def registration_changes_queued_lock(*, customer: Customer) -> list[RegistrationChange]:
    """Lock the customer's registration changes waiting for the worker (the caller holds it).

    The worker claims a change by moving it from queued on; whoever changes it first wins.
    Put-backs after a freeze are not the customer's changes: they are not among them.
    """
    return list(
        RegistrationChange.objects.select_for_update(of=("self",))
        .filter(
            ticket__customer=customer,
            purpose=RegistrationChange.Purpose.CHANGE,
            status=RegistrationChange.Status.QUEUED,
        )
        .select_related("domain")
        .order_by("pk")
    )


def registration_change_claim_lock(*, pk: int) -> RegistrationChange | None:
    """Lock one registration change still queued (the worker's claim); after its customer's lock."""
    return (
        RegistrationChange.objects.select_for_update(of=("self",))
        .select_related("ticket__customer", "domain")
        .filter(pk=pk, status=RegistrationChange.Status.QUEUED)
        .first()
    )


def registration_warning_lock(*, domain: Domain, address: str, reason: str) -> RegistrationWarning:
    """Lock (made if new) the warning row of a domain's address; after the customer's lock."""
    warning, _created = RegistrationWarning.objects.select_for_update().get_or_create(
        domain=domain, address=address, reason=reason
    )
    return warning


def domain_lock(*, pk: int) -> Domain:
    """Lock a cached registration record; callers holding ticket locks take it after them."""
    return Domain.objects.select_for_update(no_key=True).get(pk=pk)


def stored_text_row_lock(*, model: type[Model], pk: int) -> Model | None:
    """Lock one row whose text is being cleaned (it holds the only lock, before the head).

    None when it is gone since it was found.
    """
    return model._default_manager.select_for_update(no_key=True).filter(pk=pk).first()


def audit_chain_head_lock() -> AuditChainHead:
    """Lock the audit chain head (made on a new database); writers of the chain queue on it."""
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        AuditChainHead.objects.get_or_create(pk=1)
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head
