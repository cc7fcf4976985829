"""What of a ticket its requester is shown (the portal, the status page, the API, search)."""

from django.db.models import Q
from django.utils.translation import gettext, gettext_noop

from tickets.models import Message, Ticket

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
    this number"). Nor, on a ticket whose opener is unproven (`ticket_opener_unproven`), a
    requester's message written without a login or authenticated mail: the opener's own.
    Staff see them, marked. `prefix` names the message from another model ("message__").
    """
    verdict = f"{prefix}sender_authentication"
    ticket = f"{prefix}ticket__"
    return (
        Q(**{f"{prefix}internal": False})
        & (Q(**{f"{verdict}__isnull": True}) | Q(**{f"{verdict}__trusted": True}))
        & (
            ~ticket_opener_unproven(ticket)
            | ~Q(**{f"{prefix}author": Message.Author.CUSTOMER})
            | Q(**{f"{prefix}author_user__isnull": False})
            | Q(**{f"{verdict}__isnull": False})
        )
    )


def requester_subject(ticket: Ticket) -> str:
    """The subject a ticket's customer is shown: its kind, said so, while its opener is unproven."""
    if ticket.opener_unproven:
        return gettext(UNPROVEN_SUBJECT) % {"kind": ticket.get_kind_display()}
    return ticket.subject
