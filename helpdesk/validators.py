"""Rules for text any path may store: the model fields and the services' inputs share them."""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy, gettext_noop

# Characters no typed address or value may hold: C0 controls, DEL, lone surrogates; the bidi
# embeddings, overrides and isolates, which make a name or subject read backwards on the staff
# pages ("Ali\u202eecila"); the line and paragraph separators; and the byte-order mark. Joiners
# (U+200C/U+200D) stay: Tamil, Persian and emoji need them.
CONTROL_CHARACTERS = re.compile(
    "[\x00-\x1f\x7f\ud800-\udfff\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]"
)
# The same in text of several lines (a note, a comment): tabs and line breaks are its own.
HIDDEN_CHARACTERS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]"
)
INVALID_CHARACTERS = gettext_noop("Remove the control characters from this value.")


def without_control_characters(value: str) -> None:
    """Refuse a one-line value holding CONTROL_CHARACTERS (a field validator)."""
    if CONTROL_CHARACTERS.search(value):
        raise ValidationError(gettext_lazy(INVALID_CHARACTERS), code="control_characters")


def without_hidden_characters(value: str) -> None:
    """Refuse text of several lines holding HIDDEN_CHARACTERS (a field validator)."""
    if HIDDEN_CHARACTERS.search(value):
        raise ValidationError(gettext_lazy(INVALID_CHARACTERS), code="control_characters")


def without_nul(text: str) -> str:
    """`text` without NUL characters, which no PostgreSQL text (or JSON) column can hold.

    For what other programs send us (mail, ESP events), which is read rather than refused.
    """
    return text.replace("\x00", "")
