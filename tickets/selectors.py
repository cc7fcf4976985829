"""Every read of tickets. Customer scoping lives here and nowhere else."""

from django.db.models import Prefetch, QuerySet

from accounts.selectors import customer_for_user, is_staff_member
from tickets.models import ActionLog, Message, Ticket


def ticket_list(*, user) -> QuerySet[Ticket]:
    """Tickets the user may see: all for staff, their own for a customer, none otherwise."""
    base = Ticket.objects.select_related("customer", "domain", "assignee")
    if is_staff_member(user):
        return base
    customer = customer_for_user(user)
    if customer is None:
        return base.none()
    return base.filter(customer=customer)


def ticket_get(*, user, reference: str) -> Ticket | None:
    """One ticket by reference if the user may see it (None otherwise: callers answer 404)."""
    staff = is_staff_member(user)
    messages = Message.objects.all() if staff else Message.objects.filter(internal=False)
    return (
        ticket_list(user=user)
        .prefetch_related(
            "changes",
            Prefetch("messages", queryset=messages.select_related("author_user")),
        )
        .filter(reference=reference)
        .first()
    )


def ticket_events(*, ticket: Ticket) -> QuerySet[ActionLog]:
    return ActionLog.objects.filter(ticket=ticket).order_by("sequence")
