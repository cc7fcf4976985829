"""What a request can name: personal-information fields, their labels and review, mailing lists.

Read by the services that act on requests and by the selectors and pages that show them.
"""

from django.utils.translation import gettext_noop

from tickets.redaction import REDACTED

# Made as soon as the owner confirms (MODIFY_AUTO_APPLY_LOW_RISK, on by default), also when the
# same request holds a sensitive change, which alone waits for a supervisor; never on a frozen
# account, a value with a redacted card number, or one changed since the request.
MODIFY_LOW_RISK = frozenset(
    {"phone", "address_line1", "address_line2", "city", "state", "postcode", "country"}
)


def modify_change_low_risk(*, field: str, new_value: str) -> bool:
    """Whether the low-risk policy makes this change as soon as the owner confirms.

    The service applies by it, and the owner's confirmation summary says beforehand what it will
    do by it: a MODIFY_LOW_RISK field, with no redacted card number in the new value.
    """
    return field in MODIFY_LOW_RISK and REDACTED not in new_value


# A supervisor approves a change of these (and then the whole request).
MODIFY_SENSITIVE = frozenset({"full_name", "email"})
MODIFY_FIELD_LABELS = {
    "full_name": gettext_noop("Full name"),
    "email": gettext_noop("Email address"),
    "phone": gettext_noop("Phone"),
    "address_line1": gettext_noop("Address line 1"),
    "address_line2": gettext_noop("Address line 2"),
    "city": gettext_noop("City"),
    "state": gettext_noop("State"),
    "postcode": gettext_noop("Postcode"),
    "country": gettext_noop("Country"),
}
# The customer's fields a change request may name, in the order forms show them.
MODIFY_FIELDS = tuple(MODIFY_FIELD_LABELS)

OPT_OUT_LIST_LABELS = {
    "product_mailings": gettext_noop("Product mailings"),
    "reseller_newsletters": gettext_noop("Reseller newsletters"),
}
