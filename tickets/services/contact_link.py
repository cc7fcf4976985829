"""Tickets sent without logging in from a customer's email on record, linked to that customer."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.models import Customer
from accounts.selectors import customer_of_address, email_canonical
from helpdesk.exceptions import TransitionNotAllowed
from tickets.audit import Actor
from tickets.lock_objects import ticket_lock
from tickets.models import Message, Ticket, Verification
from tickets.selectors.messages import requester_words_without_proof
from tickets.selectors.tickets import (
    customers_after,
    sent_from_address_on_record,
    tickets_to_link_by_contact,
)
from tickets.services.lifecycle import customer_account_open_locked
from tickets.services.status_link import STATUS_LINK_INVALID, StatusLinkInvalid
from tickets.services.verification import verification_link_lock_live
from tickets.services.versions import ticket_change_save

OPENER_CONFIRMED = gettext_noop(
    "Thank you: this request is marked as yours, and what it says is shown to you from now on."
)
OPENER_NOTHING_TO_CONFIRM = gettext_noop("There is nothing to confirm on this request.")


def _link(ticket: Ticket, customer: Customer) -> bool:
    # Read again under the lock: linked meanwhile, sent before the address was theirs, or the
    # account frozen or closed since the batch was read.
    still = type(ticket).objects.filter(sent_from_address_on_record(customer), pk=ticket.pk)
    account = customer_of_address(email=customer.email)
    if ticket.customer_id is not None or account != customer or not still.exists():
        return False
    ticket.customer = customer
    ticket.customer_by_contact = True
    # Its opener is unproven from now on, and so are the words they wrote (selectors.messages).
    Message.objects.filter(requester_words_without_proof(), ticket=ticket).update(unproven=True)
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


def _opener_confirm(locked: Ticket, *, actor: Actor, by: str, link: Verification | None) -> None:
    """Show the customer the words of `locked` they were asked to confirm, and say who did.

    The opener of a request linked by its address is recorded as confirmed (`verified_at`),
    which is all a general request asks; held messages (merged in, or a change request's note)
    are shown from now on. Nothing else: a change request's changes still wait for the
    verification link mailed to the email on record.
    """
    held = Message.objects.filter(ticket=locked, unproven=True)
    shown = list(held.order_by("pk").values_list("pk", flat=True))
    if not locked.opener_unproven and not shown:
        return  # confirmed already, or never in doubt: nothing changes
    fields: list[str] = []
    if locked.opener_unproven:
        locked.verified_at = timezone.now()
        locked.verified_by = by
        locked.verification = link
        fields = ["verified_at", "verified_by", "verification"]
    held.update(unproven=False)
    ticket_change_save(
        locked,
        fields,
        actor=actor,
        action="ticket.opener_confirmed",
        details={"verified_by": by, **({"messages": shown} if shown else {})},
    )


@transaction.atomic
def ticket_opener_confirm(*, ticket: Ticket, customer: Customer) -> Ticket:
    """The customer, signed in, says a request sent from their address without a login is theirs.

    From then on its subject and its opener's messages are shown to them (selectors.messages).
    Idempotent by state guard: a ticket of theirs confirmed already is left as it is. One not
    linked to them (a resend of their domain, sent from their address, stays on no account)
    is refused with TransitionNotAllowed, as the status link refuses it. Refused too once the
    account is frozen or closed, as every other write of the customer's own session.
    """
    customer_account_open_locked(customer)
    locked = ticket_lock(pk=ticket.pk)
    if locked.customer_id != customer.pk:
        raise TransitionNotAllowed(gettext(OPENER_NOTHING_TO_CONFIRM))
    _opener_confirm(locked, actor=customer, by=Ticket.VerifiedBy.SESSION, link=None)
    return locked


@transaction.atomic
def ticket_opener_confirm_by_link(*, verification: Verification) -> Ticket:
    """The same, by the status link mailed to the customer's email on record (its holder).

    A link mailed to another address (a contact address since changed) confirms nothing:
    StatusLinkInvalid, as for a link no longer live. Idempotent as ticket_opener_confirm.
    """
    locked = verification_link_lock_live(verification=verification)
    customer = locked.customer if locked is not None else None
    sent_to = email_canonical(verification.sent_to)
    if locked is None or customer is None or email_canonical(customer.email) != sent_to:
        raise StatusLinkInvalid(STATUS_LINK_INVALID)
    _opener_confirm(
        locked,
        actor=f"status-link:{verification.sent_to}",
        by=Ticket.VerifiedBy.EMAIL_LINK,
        link=verification,
    )
    return locked
