from tickets.models import Notification, Ticket


def ticket_lock(*, pk: int) -> Ticket:
    """Lock one ticket row for the rest of the transaction; concurrent actions queue behind it."""
    return (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("customer", "domain", "assignee")
        .get(pk=pk)
    )


def notification_lock(*, pk: int) -> Notification:
    return Notification.objects.select_for_update().get(pk=pk)
