"""Supervisor-only records: the disclosure register and the customer export."""

from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.models import Customer
from accounts.selectors import is_staff_member
from helpdesk.exceptions import ApplicationError, StaffForbidden
from tickets.audit import audit_record
from tickets.models import Disclosure
from tickets.redaction import redact_card_numbers
from tickets.selectors.export import customer_export_data, disclosures_keeper

DISCLOSURE_FORBIDDEN = gettext_noop("Only a supervisor can record a disclosure.")
DISCLOSURE_INCOMPLETE = gettext_noop("Say what was disclosed, to whom, and on what legal basis.")
EXPORT_FORBIDDEN = gettext_noop("Only a supervisor can export a customer's data.")
DISCLOSURE_WHEN = gettext_noop("Give a time from 1 January 2000 until now.")
# A record of what happened: not later than now, nor earlier than any customer record. Stored
# before year 1 in UTC (0001-01-01 in Kuala Lumpur), it could not be read back: the customer's
# page and their export failed.
DISCLOSURE_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def _disclosure_text(field: str, value: str) -> str:
    """A field of the record as typed, with any card number redacted, within its length."""
    text = redact_card_numbers(value.strip())[0]
    model_field = Disclosure._meta.get_field(field)
    return text[: model_field.max_length] if isinstance(model_field, models.Field) else text


@transaction.atomic
def disclosure_record(
    *,
    customer: Customer,
    actor: User,
    disclosed_to: str,
    information: str,
    legal_basis: str,
    reference: str = "",
    disclosed_at: datetime | None = None,
) -> Disclosure:
    """Enter a disclosure of a customer's information in the register, and audit it."""
    if not disclosures_keeper(actor):
        raise StaffForbidden(DISCLOSURE_FORBIDDEN)
    required = {
        "disclosed_to": _disclosure_text("disclosed_to", disclosed_to),
        "information": _disclosure_text("information", information),
        "legal_basis": _disclosure_text("legal_basis", legal_basis),
    }
    if not all(required.values()):
        raise ApplicationError(DISCLOSURE_INCOMPLETE)
    if disclosed_at is not None and not DISCLOSURE_EARLIEST <= disclosed_at <= timezone.now():
        raise ValidationError({"disclosed_at": [gettext(DISCLOSURE_WHEN)]})
    disclosure = Disclosure(
        customer=customer,
        recorded_by=actor,
        **required,
        reference=_disclosure_text("reference", reference),
        disclosed_at=disclosed_at or timezone.now(),
    )
    disclosure.full_clean()
    disclosure.save(force_insert=True)
    audit_record(
        actor=actor,
        action="disclosure.recorded",
        customer=customer,
        details={
            "disclosure": disclosure.pk,
            **required,
            "reference": disclosure.reference,
            "disclosed_at": disclosure.disclosed_at.isoformat(),
        },
    )
    return disclosure


@transaction.atomic
def customer_export(*, customer: Customer, actor: User) -> dict[str, Any]:
    """Everything held on a customer, for a subject-access request; the export is audited."""
    if not is_staff_member(actor) or not actor.has_perm("tickets.export_customer"):
        raise StaffForbidden(EXPORT_FORBIDDEN)
    data = customer_export_data(customer=customer)
    audit_record(
        actor=actor,
        action="customer.exported",
        customer=customer,
        details={"tickets": len(data["tickets"]), "audit_rows": len(data["audit"])},
    )
    return data
