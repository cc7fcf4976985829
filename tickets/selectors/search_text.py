"""What a search's text is: whether it is looked for inside values, and its words."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

# Shorter texts match whole values only: a trigram index finds nothing to narrow on in "ab".
PARTIAL_MIN_LENGTH = 3
# What pg_trgm takes for a word's characters: letters and digits; anything else parts words.
_WORD = re.compile(r"[^\W_]+")
# websearch_to_tsquery never raises on what people type ("quotes", -minus, or).
MESSAGE_TSQUERY = (
    "(websearch_to_tsquery('english'::regconfig, %s)"
    " || websearch_to_tsquery('simple'::regconfig, %s))"
)


def search_text_partial(text: str) -> bool:
    """Whether `text` is long enough to be looked for inside values (not only as a whole)."""
    return len(text) >= PARTIAL_MIN_LENGTH


def search_text_in_addresses(text: str) -> bool:
    r"""Whether `text` is looked for inside email addresses, not only as a whole address.

    Not for a whole address (an agent pasting one means that person, not "joann@…" for
    "ann@…"), nor for a text with a blank: every address is validated before it is stored
    (validate_email), and a valid one holds a blank only escaped inside quotes
    (`"a\ b"@example.com`). Either way the trigram read of the addresses, the slowest part of
    a search when its words are in most addresses ("customer", "example"), is left out.
    """
    if not search_text_partial(text):
        return False
    if "\\" not in text and any(character.isspace() for character in text):
        return False
    try:
        validate_email(text)
    except ValidationError:
        return True
    return False


def search_text_words(text: str) -> list[str]:
    """The words of `text` a trigram index can look for: runs of letters and digits, 3 or more.

    Each once, in the order they come.
    """
    return list(dict.fromkeys(w for w in _WORD.findall(text) if len(w) >= PARTIAL_MIN_LENGTH))
