"""Merging a duplicate general-help ticket into another: messages, files and history move."""

from django.db import transaction
from django.utils.translation import gettext, gettext_noop

from accounts.selectors import customer_get_by_email, email_canonical
from helpdesk.exceptions import ApplicationError, TransitionNotAllowed
from tickets.audit import Actor, audit_record
from tickets.lock_objects import tickets_and_customers_lock
from tickets.models import Message, Ticket
from tickets.selectors.messages import requester_words_without_proof
from tickets.selectors.tickets import listed_by_address
from tickets.services.search import ticket_search_documents_update
from tickets.services.transitions import (
    NO_REPLY_STATUSES,
    TRANSITIONS,
    staff_actor_check,
    ticket_actions,
    ticket_move,
)
from tickets.services.versions import ticket_change_save, ticket_version_check

S = Ticket.Status

MERGE_SELF = gettext_noop("A ticket cannot be merged into itself.")
MERGE_ONLY_GENERAL = gettext_noop(
    "Only an open general-help ticket can be merged into another ticket."
)
MERGE_TARGET_CLOSED = gettext_noop(
    "The ticket to merge into is closed or merged itself; choose an open one."
)
MERGE_OTHER_CUSTOMER = gettext_noop(
    "These tickets come from different requesters (another customer or email address); they "
    "cannot be merged, as each requester would read the other's messages."
)


def _addresses(ticket: Ticket) -> set[str]:
    """The addresses that read `ticket` (status page, mail): its contact's, its customer's."""
    addresses = {email_canonical(ticket.contact_email)}
    if ticket.customer is not None:
        addresses.add(email_canonical(ticket.customer.email))
    return addresses - {""}


def _portal_reader(ticket: Ticket) -> int | None:
    """The customer whose portal lists `ticket` (as tickets.selectors.ticket_list does).

    Its own, or the one whose email on record lists it (tickets.selectors.listed_by_address).
    """
    if ticket.customer_id is not None:
        return ticket.customer_id
    owner = customer_get_by_email(email=ticket.contact_email)
    if owner is None:
        return None
    theirs = Ticket.objects.filter(listed_by_address(owner), pk=ticket.pk).exists()
    return owner.pk if theirs else None


def _same_requester(source: Ticket, target: Ticket) -> bool:
    """Whether everyone who reads `target` may read what `source`'s requester wrote.

    Whoever reads the survivor (a customer on the portal, an address on the status page and in
    its mail) must already read the duplicate: a stranger's question, or one its address's
    earlier holder sent, never lands in a customer's ticket, nor a customer's in a stranger's,
    whichever way round; nor, of two tickets of one customer, one to the address on record in
    one whose replies go to another address they gave (a colleague's).
    """
    customers = {source.customer_id, target.customer_id}
    if None not in customers and len(customers) > 1:
        return False
    reader = _portal_reader(target)
    if reader is not None and reader != _portal_reader(source):
        return False
    addresses = _addresses(target)
    return bool(addresses) and addresses <= _addresses(source)


@transaction.atomic
def ticket_merge(
    *, ticket: Ticket, into: Ticket, actor: Actor, expected_version: int | None = None
) -> Ticket:
    """Merge a duplicate into another ticket; returns the survivor.

    The duplicate's messages (and so their attachments) move to the survivor; the duplicate is
    closed and points to it, and each ticket's audit trail records the merge. Neither ticket's
    confirmation by its customer changes: what each message proves moves with it.
    """
    staff_actor_check(actor)
    if ticket.pk == into.pk:
        raise ApplicationError(gettext(MERGE_SELF))
    source, target = tickets_and_customers_lock(ticket.pk, into.pk)
    ticket_version_check(source, expected_version)
    if not ticket_actions(source).merge:
        raise TransitionNotAllowed(gettext(MERGE_ONLY_GENERAL), {"kind": source.kind})
    if target.merged_into_id or target.status in NO_REPLY_STATUSES:
        raise TransitionNotAllowed(gettext(MERGE_TARGET_CLOSED), {"status": target.status})
    if not _same_requester(source, target):
        raise ApplicationError(gettext(MERGE_OTHER_CUSTOMER))
    if source.customer_id is None and target.customer_id is not None:
        # Words sent on no account now reach the survivor's customer: held from them as a
        # request linked to them by its address is (contact_link), until they confirm them.
        Message.objects.filter(requester_words_without_proof(), ticket=source).update(unproven=True)
    moved = Message.objects.filter(ticket=source).update(ticket=target)
    ticket_search_documents_update(ticket_ids=[source.pk, target.pk])
    source.merged_into = target
    source.save(update_fields=["merged_into", "updated_at"])
    if S.CLOSED not in TRANSITIONS[source.status]:
        ticket_move(source, to=S.RESOLVED, actor=actor, reason="merged")
    ticket_move(source, to=S.CLOSED, actor=actor, reason="merged")
    audit_record(
        actor=actor,
        action="ticket.merged",
        ticket=source,
        details={"to": target.reference, "messages": moved},
    )
    # The survivor keeps what it proves: each moved message keeps its own mark
    # (Message.unproven), so words nobody proved its customer's stay held from them until
    # they confirm the survivor, and their own words stay theirs to read.
    target.merged_from_any = True
    ticket_change_save(
        target,
        ["merged_from_any"],
        actor=actor,
        action="ticket.merged_in",
        details={"from": source.reference, "messages": moved},
    )
    return target
