"""Tickets sent without logging in from a customer's email on record, linked to that customer."""

from django.db import transaction

from accounts.models import Customer
from tickets.lock_objects import ticket_lock
from tickets.selectors.tickets import (
    customers_after,
    sent_from_address_on_record,
    tickets_to_link_by_contact,
)
from tickets.services.shared import ticket_change_save


def _link(ticket_id: int, customer: Customer) -> bool:
    ticket = ticket_lock(pk=ticket_id)
    # Read again under the lock: linked meanwhile, or sent before the address was theirs.
    still = type(ticket).objects.filter(sent_from_address_on_record(customer), pk=ticket.pk)
    if ticket.customer_id is not None or not still.exists():
        return False
    ticket.customer = customer
    ticket.customer_by_contact = True
    ticket_change_save(
        ticket,
        ["customer", "customer_by_contact"],
        actor="system",
        action="ticket.customer_linked",
        details={"customer": customer.number, "by": "contact_email"},
    )
    return True


@transaction.atomic
def tickets_link_by_contact(*, after: int = 0, batch_size: int = 200) -> tuple[int, int | None]:
    """Link one batch of customers' tickets sent without a login from their email on record.

    The tickets ticket_create links today, for those made before it did: general-help tickets
    without a customer whose contact address is the customer's email and that were sent while
    the address was theirs (selectors.tickets.sent_from_address_on_record). Idempotent: a
    linked ticket is never looked at again. Returns (tickets linked, the last customer id of
    the batch, or None after the last batch).

    :param after: the customer id the previous batch ended at.
    """
    customers = customers_after(pk=after, limit=batch_size)
    linked = 0
    for customer in customers:
        for ticket_id in tickets_to_link_by_contact(customer=customer):
            linked += _link(ticket_id, customer)
    last = customers[-1].pk if len(customers) == batch_size else None
    return linked, last
