"""Cleaning text stored before the validators refused hidden characters, on the audit chain."""

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_noop

from accounts.models import Customer
from helpdesk.exceptions import ApplicationError
from helpdesk.validators import CONTROL_CHARACTERS
from tickets.audit import Actor, audit_record
from tickets.lock_objects import stored_text_row_lock, ticket_lock
from tickets.models import Disclosure, Message, Satisfaction, Ticket
from tickets.selectors.messages import message_shown_to_requester
from tickets.selectors.stored_text import StoredText, stored_text_kind
from tickets.services.search import ticket_search_documents_update
from tickets.services.versions import ticket_change_save

STORED_TEXT_TAKEN = gettext_noop("Cleaned, this value is another row's: change it by hand.")

# What ends a line, in text of one line a space; in text of several, a line break.
_LINE_ENDS = re.compile("[\t\n\r\x0b\x0c\u2028\u2029]")


def stored_text_visible(value: str) -> str:
    """The value with each hidden character written out (`<U+202E>`), safe to show or log."""
    return CONTROL_CHARACTERS.sub(lambda found: f"<U+{ord(found.group()):04X}>", value)


def stored_text_cleaned(value: str, *, kind: StoredText, field: str) -> str:
    """`value` without the characters its field refuses.

    A line end becomes a space (one line) or a line break (several lines); the rest
    (overrides, isolates, the BOM, controls) are dropped.
    """
    if field in kind.several_lines:
        value = re.sub("[\u2028\u2029\x0b\x0c]", "\n", value)
    else:
        value = _LINE_ENDS.sub(" ", value)
    return kind.pattern(field).sub("", value).strip()


def _links(obj: Any) -> dict[str, Any]:
    """The ticket or customer an audit row about `obj` is filed under."""
    if isinstance(obj, Customer):
        return {"customer": obj}
    if isinstance(obj, Disclosure):
        return {"customer": obj.customer}
    if isinstance(obj, Satisfaction | Message):
        return {"ticket": obj.ticket}
    return {}


@transaction.atomic
def stored_text_clean(*, label: str, pk: int, actor: Actor) -> dict[str, dict[str, str]]:
    """Take the hidden characters out of one row's text fields, and record it; what changed.

    `by_hand` fields are left as they are. A value that cleaned would be empty or another
    row's is refused (ValidationError, ApplicationError) and nothing is saved.
    """
    kind = stored_text_kind(label)
    ticket = _message_ticket_lock(pk) if kind.model is Message else None
    obj = (
        ticket_lock(pk=pk)
        if kind.model is Ticket
        else stored_text_row_lock(model=kind.model, pk=pk)
    )
    if obj is None or (ticket is not None and getattr(obj, "ticket_id", None) != ticket.pk):
        return {}  # gone, or merged into another ticket meanwhile: the next run finds it
    changes: dict[str, dict[str, str]] = {}
    for field in (*kind.one_line, *kind.several_lines):
        value = getattr(obj, field)
        if value and kind.pattern(field).search(value):
            cleaned = stored_text_cleaned(value, kind=kind, field=field)
            changes[field] = {"from": stored_text_visible(value), "to": cleaned}
            setattr(obj, field, cleaned)
    if not changes:
        return {}
    others = [f.name for f in kind.model._meta.concrete_fields if f.name not in changes]
    obj.clean_fields(exclude=others)
    obj.validate_unique()
    details = {"model": label, "pk": pk, "changes": changes}
    if isinstance(obj, Ticket):
        ticket_change_save(obj, list(changes), actor=actor, action="text.cleaned", details=details)
        ticket_search_documents_update(ticket_ids=[obj.pk])
        return changes
    fields = [*changes, "updated_at"] if hasattr(obj, "updated_at") else list(changes)
    try:
        with transaction.atomic():
            obj.save(update_fields=fields)
    except IntegrityError:
        raise ApplicationError(STORED_TEXT_TAKEN) from None
    if ticket is not None:
        # A message is read on its ticket: the versions of whoever reads it there move.
        shown = Message.objects.filter(message_shown_to_requester(), pk=obj.pk).exists()
        ticket_change_save(ticket, actor=actor, action="text.cleaned", details=details, shown=shown)
        return changes
    audit_record(actor=actor, action="text.cleaned", details=details, **_links(obj))
    return changes


def _message_ticket_lock(pk: int) -> Ticket | None:
    """Lock the ticket of message `pk` (tickets before the rows that hang off them)."""
    ticket_id = Message.objects.filter(pk=pk).values_list("ticket_id", flat=True).first()
    return ticket_lock(pk=ticket_id) if ticket_id is not None else None
