"""Tickets sent without logging in from a customer's email on record, linked to that customer."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.models import Customer
from accounts.selectors import customer_of_address, email_canonical
from helpdesk.exceptions import ApplicationError, TransitionNotAllowed
from tickets.audit import Actor
from tickets.lock_objects import customer_lock, ticket_lock, tickets_and_customers_lock
from tickets.models import Message, Ticket, Verification
from tickets.selectors.messages import HeldWords, requester_words_without_proof
from tickets.selectors.tickets import (
    customers_after,
    sent_from_address_on_record,
    tickets_to_link_by_contact,
)
from tickets.services.lifecycle import account_locked_out_refusal
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


def opener_confirm_refusal(
    *, ticket: Ticket, customer: Customer | None, link: Verification | None = None
) -> ApplicationError | None:
    """Why `customer` may not say `ticket`, sent from their address, is theirs; None if they may.

    The one rule of the confirmation, by their session or by the status `link` mailed to their
    address: the services enforce it under their locks, and the API's `can_confirm` and the
    pages' button offer the confirmation by it (`ticket_opener_confirmable`), so none of them
    offers what the service refuses. A frozen or closed account confirms nothing, as it writes
    nothing (AccountLockedOut, saying which); a ticket not linked to them (a resend of their
    domain, sent from their address, stays on no account) has nothing to confirm; a link mailed
    to another address than their email on record (a contact address, or theirs before it
    changed) confirms nothing (StatusLinkInvalid, as a link no longer live). The link's address
    is asked first: its holder is told nothing of an account the link no longer speaks for.
    """
    if (
        link is not None
        and customer is not None
        and email_canonical(customer.email) != email_canonical(link.sent_to)
    ):
        return StatusLinkInvalid(STATUS_LINK_INVALID)
    if customer is not None:
        locked_out = account_locked_out_refusal(customer)
        if locked_out is not None:
            return locked_out
    if customer is None or ticket.customer_id != customer.pk:
        return TransitionNotAllowed(gettext(OPENER_NOTHING_TO_CONFIRM))
    return None


def ticket_opener_confirmable(
    *,
    ticket: Ticket,
    customer: Customer | None,
    held: HeldWords,
    link: Verification | None = None,
) -> bool:
    """Whether to offer the confirmation of `ticket`: words held, and nothing refusing it.

    :param held: `selectors.messages.ticket_held_words(ticket)`, which the caller shows too.
    """
    return (
        held.words and opener_confirm_refusal(ticket=ticket, customer=customer, link=link) is None
    )


@transaction.atomic
def ticket_opener_confirm(*, ticket: Ticket, customer: Customer) -> Ticket:
    """The customer, signed in, says a request sent from their address without a login is theirs.

    From then on its subject and its opener's messages are shown to them (selectors.messages).
    Idempotent by state guard: a ticket of theirs confirmed already is left as it is. Refused
    by `opener_confirm_refusal`, read under the account's lock and the ticket's (in that order):
    a frozen or closed account (its sign-in was checked when the request began; the freeze may
    have committed since), or a ticket not linked to them (TransitionNotAllowed), as the status
    link refuses it.
    """
    account = customer_lock(pk=customer.pk)
    locked = ticket_lock(pk=ticket.pk)
    refusal = opener_confirm_refusal(ticket=locked, customer=account)
    if refusal is not None:
        raise refusal
    _opener_confirm(locked, actor=customer, by=Ticket.VerifiedBy.SESSION, link=None)
    return locked


@transaction.atomic
def ticket_opener_confirm_by_link(*, verification: Verification) -> Ticket:
    """The same, by the status link mailed to the customer's email on record (its holder).

    Refused by `opener_confirm_refusal` as well: the holder confirms no more than the account's
    own session would (nothing while it is frozen or closed), and a link mailed to another
    address (a contact address since changed) confirms nothing: StatusLinkInvalid, as for a link
    no longer live. Idempotent as ticket_opener_confirm.
    """
    # The account before the ticket (the order in tickets.lock_objects), as the ticket points
    # now: linked since the link was read, its customer is locked all the same. Then the ticket
    # and its customer are read again, under both locks.
    tickets_and_customers_lock(verification.ticket_id)
    locked = verification_link_lock_live(verification=verification)
    if locked is None or locked.customer is None:
        raise StatusLinkInvalid(STATUS_LINK_INVALID)
    refusal = opener_confirm_refusal(ticket=locked, customer=locked.customer, link=verification)
    if refusal is not None:
        raise refusal
    _opener_confirm(
        locked,
        actor=f"status-link:{verification.sent_to}",
        by=Ticket.VerifiedBy.EMAIL_LINK,
        link=verification,
    )
    return locked
