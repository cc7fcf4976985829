"""Stored text that still holds characters the validators now refuse (rows older than them).

`without_control_characters` and `without_hidden_characters` guard every write today; rows
written before them may still hold a bidi override or a control character. These reads find
them for `clean_hidden_characters`, which cleans them through tickets.services.stored_text.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.auth.models import Group, User
from django.db.models import Model, Q

from accounts.models import ApiToken, Customer
from helpdesk.validators import CONTROL_CHARACTERS, HIDDEN_CHARACTERS
from tickets.models import Disclosure, FieldChange, Message, Satisfaction, SavedView, Ticket
from tickets.request_fields import MODIFY_FIELDS


@dataclass(frozen=True)
class StoredText:
    """The typed text fields of a model, by how they are cleaned.

    `by_hand` fields are reported and never cleaned: an address on record or a requested
    value changes only through the flow that verifies it.
    """

    model: type[Model]
    one_line: tuple[str, ...] = ()
    several_lines: tuple[str, ...] = ()
    by_hand: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    def fields(self) -> tuple[str, ...]:
        return (*self.one_line, *self.several_lines, *self.by_hand)

    def pattern(self, field: str) -> re.Pattern[str]:
        return HIDDEN_CHARACTERS if field in self.several_lines else CONTROL_CHARACTERS


STORED_TEXT = (
    StoredText(
        Customer,
        one_line=tuple(field for field in MODIFY_FIELDS if field != "email"),
        by_hand=("email",),
    ),
    StoredText(User, one_line=("first_name", "last_name"), by_hand=("email",)),
    StoredText(Group, one_line=("name",)),
    StoredText(ApiToken, one_line=("name",)),
    StoredText(Ticket, one_line=("subject",), by_hand=("contact_email",)),
    StoredText(Message, several_lines=("body",)),
    StoredText(FieldChange, by_hand=("new_value",)),
    StoredText(
        Disclosure,
        one_line=("disclosed_to", "legal_basis", "reference"),
        several_lines=("information",),
    ),
    StoredText(Satisfaction, several_lines=("comment",)),
    StoredText(SavedView, one_line=("name",)),
)

# The characters as escapes both SQLite's REGEXP (Python's re) and PostgreSQL's `~` read; NUL
# and lone surrogates cannot be in PostgreSQL text, and SQLite's are found by the exact check.
_SQL_ONE_LINE = r"[\x01-\x1f\x7f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]"
_SQL_SEVERAL_LINES = r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]"


@dataclass(frozen=True)
class StoredTextRow:
    """A row with hidden characters: which fields hold them, and their values."""

    kind: StoredText
    pk: int
    values: dict[str, str]


def _candidates(kind: StoredText) -> Q:
    found = Q()
    for field in kind.fields():
        regex = _SQL_SEVERAL_LINES if field in kind.several_lines else _SQL_ONE_LINE
        found |= Q(**{f"{field}__regex": regex})
    return found


def stored_text_rows(*, batch_size: int = 500) -> Iterator[StoredTextRow]:
    """Every row of STORED_TEXT holding a character its field now refuses, in pk order.

    The database narrows by regular expression; each value is confirmed with the validators'
    own pattern.
    """
    for kind in STORED_TEXT:
        rows = (
            kind.model._default_manager.filter(_candidates(kind))
            .order_by("pk")
            .values_list("pk", *kind.fields())
        )
        for pk, *values in rows.iterator(chunk_size=batch_size):
            held = {
                field: value
                for field, value in zip(kind.fields(), values, strict=True)
                if value and kind.pattern(field).search(value)
            }
            if held:
                yield StoredTextRow(kind=kind, pk=pk, values=held)


def stored_text_kind(label: str) -> StoredText:
    """The STORED_TEXT entry of a model label (`tickets.ticket`)."""
    return next(kind for kind in STORED_TEXT if kind.label == label)
