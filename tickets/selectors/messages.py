"""What of a ticket its requester is shown (the portal, the status page, the API, search)."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Q
from django.utils.translation import gettext, gettext_noop

from tickets.models import CHANGE_REQUEST_KINDS, Message, Ticket

# The same words as the portal's (templates/partials/requester_subject.html).
UNPROVEN_SUBJECT = gettext_noop("%(kind)s (sent from your address without signing in)")


def ticket_opener_unproven(prefix: str = "") -> Q:
    """Tickets sent from a customer's address by someone who has not proved they are them.

    Linked to the customer only because the address typed on the web form, or the From of an
    email our mail server could not authenticate, is their email on record
    (`customer_by_contact`), and not confirmed since by their own session or by a link mailed
    to that address (`verified_at`). Their customer is told such a request was made, but the
    opener's words (its subject, its messages) are shown to staff only until then. SQL form
    of `Ticket.opener_unproven`; `prefix` names the ticket from another model ("ticket__").
    """
    return Q(**{f"{prefix}customer_by_contact": True, f"{prefix}verified_at__isnull": True})


def message_shown_to_requester(prefix: str = "") -> Q:
    """The messages a ticket's customer or status-link holder may read; staff read them all.

    Neither an internal note nor an email whose sender our mail server could not authenticate
    while authentication is required (its stored verdict not `trusted`, inbound_auth): anyone
    can write a ticket's reference and its requester's address into a mail, and its text must
    not reach the requester from our own pages or mail as part of their conversation ("call
    this number"). Nor a requester's message written by someone not shown to be the ticket's
    customer (`Message.unproven`, marked as it is written by `message_written_unproven`) until
    the customer confirms it. Staff see them, marked. `prefix` names the message from another
    model ("message__").
    """
    verdict = f"{prefix}sender_authentication"
    return (
        Q(**{f"{prefix}internal": False})
        & (Q(**{f"{verdict}__isnull": True}) | Q(**{f"{verdict}__trusted": True}))
        & Q(**{f"{prefix}unproven": False})
    )


def message_written_unproven(
    *,
    ticket: Ticket,
    author: str,
    author_user: User | None = None,
    sender_authentication: dict[str, Any] | None = None,
) -> bool:
    """Whether a message about to be written on `ticket` is held from its customer (unproven).

    The requester's words written without a login or authenticated mail on a ticket whose
    requester nobody proved to be its customer: a request linked to them by its address alone
    (`ticket_opener_unproven`), or a change of their details asked for without a login whose
    link mailed to the email on record has not been followed (its note, its files). Whoever
    typed the address in wrote them. Marked on the message, not read from the ticket, so that
    what each message proves moves with it: a merge neither shows a stranger's words in a
    request the customer made signed in, nor hides the customer's own words in the request
    they are merged into.
    """
    unverified_change = ticket.kind in CHANGE_REQUEST_KINDS and ticket.verified_at is None
    return (
        author == Message.Author.CUSTOMER
        and author_user is None
        and sender_authentication is None
        and (ticket.opener_unproven or unverified_change)
    )


def requester_words_without_proof() -> Q:
    """The requester's messages written without a login or mail our server authenticated.

    The SQL form of message_written_unproven's test of the message: those of a ticket that is
    linked to a customer by its address afterwards are marked as the ticket_create would have.
    """
    return Q(
        author=Message.Author.CUSTOMER,
        author_user__isnull=True,
        sender_authentication__isnull=True,
    )


@dataclass(frozen=True)
class HeldWords:
    """What of a ticket's words its customer is asked to confirm, told without the words."""

    messages: int  # the requester's messages held until then (Message.unproven)
    words: bool  # its opener's words or messages are held: there is something to confirm


def ticket_held_words(ticket: Ticket) -> HeldWords:
    """How many of `ticket`'s messages are held, and whether any of its words are.

    Words its customer is asked to confirm before reading them: its opener's (its subject, its
    first message), or messages merged in or added since by someone not shown to be them. The
    pages and the API tell of them while there are any. Mail held because our server could not
    authenticate its sender is not among them: no confirmation shows it. Who may confirm is the
    confirmation's own rule (services.contact_link.opener_confirm_refusal).
    """
    held = Message.objects.filter(ticket=ticket, unproven=True).count()
    return HeldWords(messages=held, words=ticket.opener_unproven or held > 0)


def requester_subject(ticket: Ticket) -> str:
    """The subject a ticket's customer is shown: its kind, said so, while its opener is unproven."""
    if ticket.opener_unproven:
        return gettext(UNPROVEN_SUBJECT) % {"kind": ticket.get_kind_display()}
    return ticket.subject
