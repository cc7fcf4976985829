"""Stored addresses that fail the one address rule (rows older than it, or written around it).

`helpdesk.validators.validate_address` guards every write today; an address stored before it
stays as it was. A customer whose email on record fails the rule gets no mail and cannot make
a request without logging in. These reads find every such address for `addresses_invalid`,
which only lists them: each changes through the flow that verifies it.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from accounts.models import Customer
from domains.models import Domain, RegistrationChange
from helpdesk.validators import validate_address
from tickets.models import OPEN_STATUS_VALUES, FieldChange, Ticket

# The registration changes still to be sent to OpenSRS.
REGISTRATION_CHANGE_PENDING = (
    RegistrationChange.Status.OFFERED,
    RegistrationChange.Status.QUEUED,
    RegistrationChange.Status.SENDING,
)


@dataclass(frozen=True)
class InvalidAddress:
    """Where an address is stored, the address as stored, and why the rule refuses it."""

    model: str  # the model's label, such as `accounts.customer`
    key: str  # what names the row: a customer number, a ticket reference, a pk
    field: str
    address: str
    reason: str


def address_refusal(address: str) -> str:
    """The rule's message for `address`, or "" when it passes."""
    try:
        validate_address(address)
    except ValidationError as exc:
        return " ".join(str(message) for message in exc.messages)
    return ""


def _invalid(
    model: str, rows: Iterable[tuple[Any, ...]], fields: tuple[str, ...]
) -> Iterator[InvalidAddress]:
    """The addresses of `rows` (a key, then one value per field) that fail the rule.

    Judged once per address in a run: many tickets share their contact address.
    """
    refusal = lru_cache(maxsize=65536)(address_refusal)
    for key, *addresses in rows:
        for field, address in zip(fields, addresses, strict=True):
            reason = refusal(address) if address else ""
            if reason:
                yield InvalidAddress(model, str(key), field, address, reason)


def addresses_invalid(*, chunk_size: int = 2000) -> Iterator[InvalidAddress]:
    """Every stored address the rule refuses, but those of tickets not open (counted apart).

    Customers' emails on record, open tickets' contact addresses, logins' emails, domains'
    registration emails, the new address of a pending email change (its ticket's reference)
    and both addresses of a registration change not yet sent (its pk). Each table is read
    once, in chunks, its key and address columns only.
    """
    customers = Customer.objects.order_by("pk").values_list("number", "email")
    yield from _invalid("accounts.customer", customers.iterator(chunk_size), ("email",))
    tickets = (
        Ticket.objects.filter(status__in=OPEN_STATUS_VALUES)
        .exclude(contact_email="")
        .order_by("pk")
        .values_list("reference", "contact_email")
    )
    yield from _invalid("tickets.ticket", tickets.iterator(chunk_size), ("contact_email",))
    logins = User.objects.exclude(email="").order_by("pk").values_list("username", "email")
    yield from _invalid("auth.user", logins.iterator(chunk_size), ("email",))
    domains = Domain.objects.order_by("pk").values_list("name", "registrant_email", "admin_email")
    yield from _invalid(
        "domains.domain", domains.iterator(chunk_size), ("registrant_email", "admin_email")
    )
    email_changes = (
        FieldChange.objects.filter(
            field="email", applied_at__isnull=True, ticket__status__in=OPEN_STATUS_VALUES
        )
        .order_by("pk")
        .values_list("ticket__reference", "new_value")
    )
    yield from _invalid("tickets.fieldchange", email_changes.iterator(chunk_size), ("new_value",))
    registration_changes = (
        RegistrationChange.objects.filter(status__in=REGISTRATION_CHANGE_PENDING)
        .order_by("pk")
        .values_list("pk", "old_email", "new_email")
    )
    yield from _invalid(
        "domains.registrationchange",
        registration_changes.iterator(chunk_size),
        ("old_email", "new_email"),
    )


def tickets_closed_addresses_invalid(*, chunk_size: int = 2000) -> int:
    """How many tickets not open hold a contact address the rule refuses (read, not listed).

    In no order: the database reads the table through rather than walk an index.
    """
    tickets = (
        Ticket.objects.exclude(status__in=OPEN_STATUS_VALUES)
        .exclude(contact_email="")
        .order_by()
        .values_list("reference", "contact_email")
    )
    found = _invalid("tickets.ticket", tickets.iterator(chunk_size), ("contact_email",))
    return sum(1 for _ in found)
