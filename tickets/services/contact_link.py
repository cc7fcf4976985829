"""Tickets sent without logging in from a customer's email on record, linked to that customer."""

from django.db import transaction

from accounts.models import Customer
from accounts.selectors import customer_of_address
from tickets.lock_objects import ticket_lock
from tickets.models import Ticket
from tickets.selectors.tickets import (
    customers_after,
    sent_from_address_on_record,
    tickets_to_link_by_contact,
)
from tickets.services.shared import ticket_change_save


def _link(ticket: Ticket, customer: Customer) -> bool:
    # Read again under the lock: linked meanwhile, sent before the address was theirs, or the
    # account frozen or closed since the batch was read.
    still = type(ticket).objects.filter(sent_from_address_on_record(customer), pk=ticket.pk)
    account = customer_of_address(email=customer.email)
    if ticket.customer_id is not None or account != customer or not still.exists():
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
    found = [
        (ticket_id, customer)
        for customer in customers
        for ticket_id in tickets_to_link_by_contact(customer=customer)
    ]
    # The whole batch, in pk order, before the first audit row (the order in tickets.lock_objects).
    locked = {pk: ticket_lock(pk=pk) for pk in sorted(pk for pk, _customer in found)}
    linked = sum(_link(locked[ticket_id], customer) for ticket_id, customer in found)
    last = customers[-1].pk if len(customers) == batch_size else None
    return linked, last
