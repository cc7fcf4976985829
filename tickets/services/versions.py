"""Saving a change to a locked ticket: the version check, a new version, the audit row."""

from collections.abc import Sequence
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_noop

from helpdesk.exceptions import StaleVersion
from tickets.audit import Actor, audit_record
from tickets.models import Message, Ticket
from tickets.selectors.messages import message_shown_to_requester
from tickets.services.search import message_create

STALE_TICKET = gettext_noop(
    "This ticket was changed by someone else since you opened it. Reload and try again."
)


def ticket_version_check(
    ticket: Ticket, expected_version: int | None, *, requester: bool = False
) -> None:
    """Refuse (409) a change made against another version than the locked ticket's.

    Every staff path sends the version it read: the pages and bulk always, the API when its
    client gives one (recommended, not required by API v1). A customer (`requester`) read the
    requester's version, and is held to that one: what only staff see changed nothing they read.
    """
    current = ticket.requester_version if requester else ticket.version
    if expected_version is not None and current != expected_version:
        raise StaleVersion(STALE_TICKET, {"version": current})


def ticket_version_bump(ticket: Ticket, *, shown: bool = True, dated: bool = True) -> list[str]:
    """Move a ticket's version on for a change; the fields to save with it.

    The version moves with every change, so a form read before it is refused as stale. The
    requester's version and last update move only with a change they are `shown`: one only
    staff see (an internal note, mail held back because its sender was not authenticated)
    leaves them still. Words held until they confirm are shown as a count
    (`message_changes_requester_view`).

    :param dated: whether their last update moves with their version. Not for a change the
        status page hides from whoever typed the contact address (a resend referred once
        resolved, selectors.status_page.requester_status), which its "Last update" would
        tell of; the customer's own pages and the API show it, so their version moves.
    """
    ticket.version += 1
    if not shown:
        return ["version", "updated_at"]
    ticket.requester_version += 1
    if not dated:
        return ["version", "requester_version", "updated_at"]
    ticket.requester_updated_at = timezone.now()
    return ["version", "requester_version", "requester_updated_at", "updated_at"]


def message_changes_requester_view(message: Message) -> bool:
    """Whether adding `message` to a ticket changes what its requester reads of it.

    Its words, where they are shown to them (selectors.messages.message_shown_to_requester);
    or, held until they confirm the request is theirs (`Message.unproven`), the count of held
    messages they are told of (the API's `held_messages`, the pages' notice) and whether there
    is something to confirm. Either moves their version, so a client polling with If-None-Match
    learns of it; an internal note, or mail held because its sender was not authenticated,
    changes nothing they read.
    """
    if message.unproven:
        return True
    return Message.objects.filter(message_shown_to_requester(), pk=message.pk).exists()


def ticket_change_save(
    locked: Ticket,
    fields: Sequence[str] = (),
    *,
    actor: Actor,
    action: str,
    details: dict[str, Any],
    shown: bool = True,
) -> None:
    """Save a change to a locked ticket: `fields`, a new version, and the audit row saying why.

    :param shown: whether the requester is shown the change (ticket_version_bump).
    """
    locked.save(update_fields=[*fields, *ticket_version_bump(locked, shown=shown)])
    audit_record(actor=actor, action=action, ticket=locked, details=details)


def ticket_system_note_add(locked: Ticket, *, body: str, actor: Actor) -> Message:
    """An internal note for staff, written by the system on a locked ticket, and audited."""
    message = message_create(
        ticket=locked,
        author=Message.Author.SYSTEM,
        body=body,
        internal=True,
        channel=Ticket.Channel.SYSTEM,
    )
    ticket_change_save(
        locked,
        actor=actor,
        action="ticket.note_added",
        details={"message": message.pk, "author": Message.Author.SYSTEM, "channel": "system"},
        shown=False,
    )
    return message
