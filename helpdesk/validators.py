"""Rules for text any path may store: the model fields and the services' inputs share them."""

import re
import unicodedata

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


# --- email addresses --------------------------------------------------------------------------

# The local part of an address every program reads alike (RFC 5322 dot-atom, ASCII): no quoted
# string, no comment, no blank, no "\". Two characters of atext are left out too: "%" and "!",
# which some relays still route by (`victim%evil.example@relay`, `evil!victim@relay`).
_ADDRESS_LOCAL = re.compile(r"[A-Za-z0-9#$&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9#$&'*+/=?^_`{|}~-]+)*\Z")
# What may not be in the domain as typed, Unicode width folded: what makes it a literal
# ("[192.0.2.1]"), a route, a port, a path, or a second address.
_ADDRESS_DOMAIN_REFUSED = re.compile(r"[\s@\[\]\\/?#:,;<>()\"%!]")
# RFC 5321 section 4.5.3.1: a local part of at most 64 octets, a path of at most 256 (the
# address in its angle brackets: 254 without them).
ADDRESS_LOCAL_MAX = 64
ADDRESS_MAX = 254
ADDRESS_INVALID = gettext_noop(
    "Enter a valid email address, such as name@example.com: no quotes, spaces, comments or IP "
    "addresses."
)


def _address_invalid() -> ValidationError:
    return ValidationError(gettext_lazy(ADDRESS_INVALID), code="invalid_address")


def _invisible_in(domain: str) -> bool:
    """Whether `domain` holds a format character IDNA would drop unseen (U+200B, U+00AD).

    The joiners stay: IDNA allows them where a script needs them, and judges that itself.
    """
    return any(unicodedata.category(char) == "Cf" and char not in "\u200c\u200d" for char in domain)


def address_normalised(value: object) -> str:
    """The address as it is stored and mailed, or ValidationError (code `invalid_address`).

    The one rule for every address that enters (models, forms, serializers, the admin, inbound
    mail, the outbox): one "@", a plain dot-atom local part of at most 64 characters, then a
    domain name with a top-level domain (no IP literal), at most 254 characters in all, no
    control or blank character anywhere. Anything a mail client, the ESP or our own inbound
    parser could read otherwise than we store it is refused, so a secret cannot go to another
    mailbox than the one on record. Surrounding blanks are dropped; the domain is stored in
    its IDNA 2008 ASCII form (`normalize_domain_name`), the local part as typed.
    """
    # Imported here: the domains app's models use these validators.
    from domains.validators import normalize_domain_name

    address = value.strip() if isinstance(value, str) else ""
    local, at, domain = address.partition("@")
    if (
        not at
        or CONTROL_CHARACTERS.search(address)
        or len(address) > ADDRESS_MAX
        or len(local) > ADDRESS_LOCAL_MAX
        or not _ADDRESS_LOCAL.match(local)
        or _ADDRESS_DOMAIN_REFUSED.search(unicodedata.normalize("NFKC", domain))
        or domain.startswith(".")
        or domain.endswith(".")
        or _invisible_in(domain)
    ):
        raise _address_invalid()
    try:
        domain = normalize_domain_name(domain)
    except ValidationError:
        raise _address_invalid() from None
    normalised = f"{local}@{domain}"
    if len(normalised) > ADDRESS_MAX:
        raise _address_invalid()
    return normalised


def validate_address(value: str) -> None:
    """A field validator: `value` must be an address `address_normalised` takes, as it is."""
    if value != value.strip():
        raise _address_invalid()
    address_normalised(value)


def address_valid(value: str) -> bool:
    """Whether `value` is an address by the one rule (`address_normalised`)."""
    try:
        validate_address(value)
    except ValidationError:
        return False
    return True
