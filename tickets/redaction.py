"""Card numbers typed anywhere are found (Luhn) and redacted before anything is stored."""

import re

from django.utils.translation import gettext_noop

# What people put between a card's digit groups: spaces of any kind (a no-break space pasted
# from a web page or a PDF, a tab, two spaces), hyphens and dashes, dots; up to three of them
# ("4111 - 1111"). Not commas: a long amount written with them would read as a number.
_GROUP_SEPARATOR = r"[\s.\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d\uff0e]{0,3}"
# 13 to 19 digits, optionally grouped.
_CANDIDATE = re.compile(rf"(?<![\d-])(?:\d{_GROUP_SEPARATOR}){{12,18}}\d(?![\d-])")
REDACTED = "[card number removed]"
CARD_NOTICE = gettext_noop(
    "For your safety we removed what looked like a card number. Please never send card details "
    "to the help desk; update your card through billing instead."
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact_card_numbers(text: str) -> tuple[str, bool]:
    """Return the text with card numbers replaced, and whether any was found."""
    found = False

    def replace(match: re.Match[str]) -> str:
        nonlocal found
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            found = True
            return REDACTED
        return match.group()

    return _CANDIDATE.sub(replace, text or ""), found


def contains_card_number(*texts: str) -> bool:
    """Whether any of the texts holds a card number (the service redacts it; views say so)."""
    return any(redact_card_numbers(text)[1] for text in texts)
