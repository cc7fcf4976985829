from accounts.models import Customer
from domains.models import RegistrationChange
from tickets.models import Notification, Ticket


def ticket_lock(*, pk: int) -> Ticket:
    """Lock one ticket row for the rest of the transaction; concurrent actions queue behind it."""
    # NO KEY UPDATE: the foreign-key checks of audit rows (FOR KEY SHARE) written by a
    # transaction holding the audit chain head must not wait on it (deadlock otherwise).
    return (
        Ticket.objects.select_for_update(of=("self",), no_key=True)
        .select_related("customer", "domain", "assignee")
        .get(pk=pk)
    )


def notification_lock(*, pk: int) -> Notification:
    return Notification.objects.select_for_update().get(pk=pk)


def customer_lock(*, pk: int) -> Customer:
    """Lock a customer row; callers holding a ticket lock take it after the ticket's."""
    return Customer.objects.select_for_update(of=("self",), no_key=True).get(pk=pk)


def registration_changes_offered_lock(*, ticket: Ticket) -> list[RegistrationChange]:
    """Lock the registration changes still offered on a ticket (the caller holds its lock)."""
    return list(
        RegistrationChange.objects.select_for_update()
        .filter(ticket=ticket, status=RegistrationChange.Status.OFFERED)
        .select_related("domain")
        .order_by("pk")
    )
