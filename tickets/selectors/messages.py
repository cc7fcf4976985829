"""Which messages of a ticket its requester is shown (the portal, the status page, the API)."""

from django.db.models import Q


def message_shown_to_requester(prefix: str = "") -> Q:
    """The messages a ticket's customer or status-link holder may read; staff read them all.

    Neither an internal note nor an email whose sender our mail server could not authenticate
    while authentication is required (its stored verdict not `trusted`, inbound_auth): anyone
    can write a ticket's reference and its requester's address into a mail, and its text must
    not reach the requester from our own pages or mail as part of their conversation ("call
    this number"). Staff see it, marked. `prefix` names the message from another model
    ("message__").
    """
    verdict = f"{prefix}sender_authentication"
    return Q(**{f"{prefix}internal": False}) & (
        Q(**{f"{verdict}__isnull": True}) | Q(**{f"{verdict}__trusted": True})
    )
