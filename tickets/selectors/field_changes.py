"""A change request's field diff, as the portal, staff and verification pages show it."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from tickets.lookalikes import value_lookalike
from tickets.models import FieldChange
from tickets.request_fields import MODIFY_FIELD_LABELS


@dataclass(frozen=True)
class ChangeRow:
    """One field of a change request, old value beside new.

    `label` is the field's label msgid: a page translates it where it renders the row
    (`{% translate change.label %}`), so it reads in the reader's language, and the verification
    summary keeps it as is for the email rendered later in the recipient's. `lookalike`: how the
    new value reads as another (tickets.lookalikes: a word mixing alphabets, or one whose letters
    all look Latin among Latin text); "" when it does not.
    """

    field: str
    label: str
    old: str
    new: str
    applied_at: datetime | None
    lookalike: str


def field_change_rows(changes: Iterable[FieldChange]) -> list[ChangeRow]:
    """The rows of `changes`, in their order (the caller reads them, with its own prefetch)."""
    return [
        ChangeRow(
            field=change.field,
            label=MODIFY_FIELD_LABELS.get(change.field, change.field),
            old=change.old_value,
            new=change.new_value,
            applied_at=change.applied_at,
            lookalike=value_lookalike(change.new_value, change.old_value),
        )
        for change in changes
    ]
