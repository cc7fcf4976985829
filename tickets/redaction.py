"""Card numbers typed anywhere are found (Luhn) and redacted before anything is stored."""

import re

from django.utils.translation import gettext_noop

# What people put between a card's digit groups: spaces of any kind (a no-break space pasted
# from a web page or a PDF, a tab, two spaces), hyphens and dashes, dots; up to three of them
# ("4111 - 1111"). Not commas: a long amount written with them would read as a number.
_SEPARATOR = r"[\s.\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d\uff0e]"
# A run of digit groups joined by separators. A card number is the whole run, or else whole
# groups of it: a hyphen or a dot before or after it ("ref-4111…", "4111….5", "… 1111. 5
# more") hides it no more than a space does; a group is never cut (20 digits hold no card).
_RUN = re.compile(rf"\d+(?:{_SEPARATOR}{{1,3}}\d+)*")
_GROUP = re.compile(r"\d+")
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


def _card_spans(run: str) -> list[tuple[int, int]]:
    """Where the card numbers of one run are: the whole run, or its longest groups from left."""
    groups = [(match.start(), match.end()) for match in _GROUP.finditer(run)]
    spans = []
    first = 0
    while first < len(groups):
        found, digits = None, ""
        for last in range(first, len(groups)):
            digits += run[groups[last][0] : groups[last][1]]
            if len(digits) > 19:
                break
            if len(digits) >= 13 and luhn_valid(digits):
                found = last
        if found is None:
            first += 1
            continue
        spans.append((groups[first][0], groups[found][1]))
        first = found + 1
    return spans


def redact_card_numbers(text: str) -> tuple[str, bool]:
    """Return the text with card numbers replaced, and whether any was found."""
    found = False

    def replace(match: re.Match[str]) -> str:
        nonlocal found
        run = match.group()
        spans = _card_spans(run)
        if not spans:
            return run
        found = True
        kept, at = [], 0
        for start, end in spans:
            kept += [run[at:start], REDACTED]
            at = end
        return "".join([*kept, run[at:]])

    return _RUN.sub(replace, text or ""), found


def contains_card_number(*texts: str) -> bool:
    """Whether any of the texts holds a card number (the service redacts it; views say so)."""
    return any(redact_card_numbers(text)[1] for text in texts)
