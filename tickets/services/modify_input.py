"""A change request's input: which fields, and how each new value is checked and cleaned."""

import re
from typing import Any, cast

import phonenumbers
import pycountry
from django.core.exceptions import ValidationError
from django.db.models import Field
from django.utils.translation import gettext, gettext_noop

from accounts.models import Customer
from helpdesk.validators import (
    CONTROL_CHARACTERS,
    HIDDEN_CHARACTERS,
    INVALID_CHARACTERS,
    address_normalised,
)
from tickets.models import (
    Ticket,
)
from tickets.redaction import contains_card_number, redact_card_numbers
from tickets.request_fields import MODIFY_FIELDS, MODIFY_SENSITIVE

S = Ticket.Status


MODIFY_UNKNOWN_FIELD = "Unknown field: {field}"
MODIFY_NO_CHANGES = gettext_noop("Give at least one field to change and its new value.")
MODIFY_SAME_VALUES = gettext_noop(
    "These are already the details we hold; there is nothing to change."
)
MODIFY_INVALID_PHONE = gettext_noop("Enter a valid phone number, e.g. +60 3-1234 5678.")
MODIFY_INVALID_COUNTRY = gettext_noop("Enter a country name or its two-letter code, e.g. MY.")
MODIFY_INVALID_EMAIL = gettext_noop("Enter a valid email address.")
MODIFY_INVALID_CHARACTERS = INVALID_CHARACTERS
MODIFY_REQUIRED = gettext_noop("This cannot be empty.")
MODIFY_TOO_LONG = gettext_noop("Use at most {limit} characters.")


def _modify_value_error(field: str, message: str, **params: Any) -> ValidationError:
    # The code names the field so forms can show the message next to it.
    return ValidationError(
        "%(field)s: %(error)s",
        code=field,
        params={"field": field, "error": gettext(message).format(**params)},
    )


_PHONE_SHAPE = re.compile(r"\+?[0-9 ().\-/]{6,30}")
_E164_MAX_DIGITS = 15


def _modify_clean_phone(value: str) -> str:
    """A phone number in E.164, from any usual way of writing it (Malaysia when no +code).

    A number is accepted when its length is possible for its country; the lite metadata's
    number ranges would refuse real numbers (even `+60 3-1234 5678`), so they are not used.
    """
    number = None
    if _PHONE_SHAPE.fullmatch(value):
        try:
            number = phonenumbers.parse(value, "MY")
        except phonenumbers.NumberParseException:
            number = None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if number else ""
    if (
        number is None
        or not phonenumbers.is_possible_number(number)
        or phonenumbers.region_code_for_country_code(number.country_code or 0) == "ZZ"
        or len(set(str(number.national_number))) == 1  # 0000000, 1111111
        # No phone number is longer (ITU-T E.164), while most card numbers are: typed with a +,
        # "+6225 9058 …" (UnionPay) or "+4925 …" (Visa) reads as a possible Indonesian or
        # German number, by the lengths the metadata allows.
        or len(e164) - 1 > _E164_MAX_DIGITS
    ):
        raise _modify_value_error("phone", MODIFY_INVALID_PHONE)
    return e164


def _modify_clean_value(field: str, raw: Any) -> str:
    """One submitted value, normalised as the record stores it; raises ValidationError."""
    if not isinstance(raw, str):
        raise _modify_value_error(field, MODIFY_REQUIRED)
    value = raw.strip()
    if CONTROL_CHARACTERS.search(value):
        raise _modify_value_error(field, MODIFY_INVALID_CHARACTERS)
    if field == "full_name":
        value = " ".join(value.split())
    elif field == "phone" and value:
        value = _modify_clean_phone(value)
    elif field == "country" and value:
        try:
            value = pycountry.countries.lookup(value).alpha_2
        except LookupError:
            raise _modify_value_error(field, MODIFY_INVALID_COUNTRY) from None
    elif field == "email" and value:
        value = _modify_clean_email(value)
    if not value and field in MODIFY_SENSITIVE:
        raise _modify_value_error(field, MODIFY_REQUIRED)
    # Every field in MODIFY_FIELDS is a CharField with a max_length.
    limit = cast(int, cast("Field[Any, Any]", Customer._meta.get_field(field)).max_length)
    if len(value) > limit:
        raise _modify_value_error(field, MODIFY_TOO_LONG, limit=limit)
    return value


def _modify_clean_email(value: str) -> str:
    try:
        return address_normalised(value)
    except ValidationError:
        raise _modify_value_error("email", MODIFY_INVALID_EMAIL) from None


def modify_input_has_card(*, changes: Any, note: str) -> bool:
    """Whether the request carried a card number (it is redacted; the requester is told)."""
    texts = [note or ""]
    if isinstance(changes, dict):
        texts += [str(k) for k in changes] + [
            value
            for field, value in changes.items()
            if isinstance(value, str) and not (field == "phone" and _is_phone_number(value))
        ]
    return contains_card_number(*texts)


def _is_phone_number(value: str) -> bool:
    """Whether a phone field's value is a possible number of its country.

    A card number is rarely one: Malaysian numbers are shorter, and no number is longer than
    E.164's 15 digits, which most cards are (16 to 19). One in ten real 13-15 digit numbers
    passes Luhn, so a phone number is never read as a card number.
    """
    try:
        _modify_clean_phone(value.strip())
    except ValidationError:
        return False
    return True


def modify_validate(changes: Any, current: dict[str, str] | None = None) -> dict[str, str]:
    """Redact card numbers, refuse unknown fields, normalise every value.

    Values typed exactly as `current` holds them are kept as they are, so an owner re-sending a
    prefilled form is not refused over a value on record that predates today's rules.
    """
    if not isinstance(changes, dict) or not changes:
        raise ValidationError({"changes": [gettext(MODIFY_NO_CHANGES)]})
    unknown = [redact_card_numbers(str(k))[0][:64] for k in changes if k not in MODIFY_FIELDS]
    if unknown:
        raise ValidationError(
            {"changes": [MODIFY_UNKNOWN_FIELD.format(field=name) for name in unknown]}
        )
    cleaned: dict[str, str] = {}
    errors: list[ValidationError] = []
    for field in MODIFY_FIELDS:
        if field not in changes:
            continue
        raw = changes[field]
        if isinstance(raw, str) and not (field == "phone" and _is_phone_number(raw)):
            raw = redact_card_numbers(raw)[0]
            if current is not None and raw.strip() == current[field]:
                cleaned[field] = current[field]
                continue
        try:
            cleaned[field] = _modify_clean_value(field, raw)
        except ValidationError as exc:
            errors.append(exc)
    if errors:
        raise ValidationError({"changes": errors})
    return cleaned


def modify_note_clean(note: str) -> str:
    """The note as stored: card numbers redacted; one that hides or reverses text is refused."""
    note = redact_card_numbers(note or "")[0].replace("\x00", "")
    note = note.encode("utf-8", "replace").decode("utf-8").strip()
    if HIDDEN_CHARACTERS.search(note):
        raise ValidationError({"note": [gettext(INVALID_CHARACTERS)]})
    return note


def customer_values(customer: Customer) -> dict[str, str]:
    return {field: getattr(customer, field) for field in MODIFY_FIELDS}
