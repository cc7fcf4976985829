"""Reads for verification links: what a link confirms, and the live link behind a token.

The owner sees what they confirm: the verification email and the page at `/verify/<token>/` both
show the ticket reference and, for a change of personal information, each field with its old
value (masked where personal) and its new value. The summary holds plain strings only: it is
stored in the outbox row's JSON context and translated when the email is rendered (labels are
msgids, translated with `{% translate %}`).
"""

import re
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from accounts.selectors import email_canonical
from tickets.models import AnonymousRequest, Ticket, Verification
from tickets.request_fields import MODIFY_SENSITIVE, OPT_OUT_LIST_LABELS, modify_change_low_risk
from tickets.selectors.field_changes import ChangeRow, field_change_rows
from tickets.selectors.registration import registration_offer_summary
from tickets.tokens import token_hash_if_wellformed

S = Ticket.Status

# Old values of these fields are masked; the others (city, state, postcode, country) are
# shown as they are.
_MASKED_BY_WORD = frozenset({"full_name", "address_line1", "address_line2"})

# What confirming does to a field: made at once, or left for staff (a supervisor for a name or
# email change; then every change of the ticket waits for the supervisor's approval).
NEXT_AT_ONCE = "at_once"
NEXT_STAFF = "staff"
NEXT_SUPERVISOR = "supervisor"


def mask_email(address: str) -> str:
    """`alice@example.test` -> `a***@example.test`."""
    if not address:
        return ""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(number: str) -> str:
    """Only the last 3 digits: `+60312345678` -> `***678`."""
    digits = re.sub(r"\D", "", number)
    return f"***{digits[-3:]}" if digits else ""


def mask_words(text: str) -> str:
    """The first letter of each word: `12 Jalan Ampang` -> `1*** J*** A***`."""
    return " ".join(f"{word[:1]}***" for word in text.split())


def mask_field_value(field: str, value: str) -> str:
    """A value on record as the summary shows it: masked for the personal fields."""
    if field == "email":
        return mask_email(value)
    if field == "phone":
        return mask_phone(value)
    if field in _MASKED_BY_WORD:
        return mask_words(value)
    return value


def _next_step(row: ChangeRow, *, needs_supervisor: bool) -> str:
    if settings.MODIFY_AUTO_APPLY_LOW_RISK and modify_change_low_risk(
        field=row.field, new_value=row.new
    ):
        return NEXT_AT_ONCE
    return NEXT_SUPERVISOR if needs_supervisor else NEXT_STAFF


def _modify_summary(ticket: Ticket) -> dict[str, Any]:
    pending = field_change_rows(ticket.changes.filter(applied_at__isnull=True).order_by("id"))
    needs_supervisor = any(row.field in MODIFY_SENSITIVE for row in pending)
    changes = [
        {
            "field": row.field,
            "label": row.label,
            "old": mask_field_value(row.field, row.old),
            "new": row.new,
            "next": _next_step(row, needs_supervisor=needs_supervisor),
        }
        for row in pending
    ]
    return {
        "changes": changes,
        "at_once": any(c["next"] == NEXT_AT_ONCE for c in changes),
        "needs_staff": any(c["next"] == NEXT_STAFF for c in changes),
        "needs_supervisor": needs_supervisor,
        "new_email": any(c["field"] == "email" for c in changes),
    }


def _opt_out_lists(ticket: Ticket) -> list[str]:
    asked = (
        AnonymousRequest.objects.filter(ticket=ticket).values_list("lists", flat=True).first() or []
    )
    return [label for name, label in OPT_OUT_LIST_LABELS.items() if name in asked]


def verification_summary(
    *, ticket: Ticket, purpose: str = Verification.Purpose.REQUESTER
) -> dict[str, Any]:
    """What a verification link of `purpose` confirms on `ticket`, as JSON-ready plain values.

    Always `reference`, `kind` and `purpose`. A link to the owner for a `modify_info` ticket adds
    `changes` (each `field`, `label`, `old` masked where personal, `new` in full, and `next`:
    `at_once`, `staff` or `supervisor`) and flags for what happens next; a resend adds `domain`,
    an opt-out its `lists` (label msgids). A link to a new email address says only that.
    """
    summary: dict[str, Any] = {
        "reference": ticket.reference,
        "kind": ticket.kind,
        "purpose": purpose,
    }
    if purpose != Verification.Purpose.REQUESTER:
        return summary  # the new address learns nothing of the record
    if ticket.kind == Ticket.Kind.MODIFY_INFO:
        summary.update(_modify_summary(ticket))
        summary["registration"] = registration_offer_summary(ticket=ticket)
    elif ticket.kind == Ticket.Kind.RESEND_PASSWORD:
        summary["domain"] = ticket.requested_domain
    elif ticket.kind == Ticket.Kind.OPT_OUT:
        summary["lists"] = _opt_out_lists(ticket)
    return summary


# Kinds whose link went to the customer's email on record (a resend's went to the domain's).
_ACCOUNT_KINDS = frozenset({Ticket.Kind.MODIFY_INFO, Ticket.Kind.OPT_OUT})
_OWN_PAGE_PURPOSES = frozenset(
    {
        Verification.Purpose.NOT_ME,
        Verification.Purpose.STATUS,
        Verification.Purpose.SATISFACTION,
    }
)


def verification_refusal(ticket: Ticket, verification: Verification) -> str:
    """Why a presented token may not be used, or "" when it may."""
    failures = (
        Verification.objects.filter(ticket=ticket).aggregate(total=Sum("attempts"))["total"] or 0
    )
    if failures >= settings.VERIFICATION_MAX_ATTEMPTS:
        return "locked"
    if verification.purpose in _OWN_PAGE_PURPOSES:
        return "wrong_purpose"  # freeze, status and satisfaction links only work at their own pages
    if verification.used_at is not None:
        return "used"
    if verification.expires_at <= timezone.now():
        return "expired"
    if verification.purpose == Verification.Purpose.REQUESTER:
        if ticket.status != S.AWAITING_VERIFICATION:
            return "ticket_not_awaiting_verification"
        if (
            ticket.kind in _ACCOUNT_KINDS
            and ticket.customer is not None
            and email_canonical(verification.sent_to) != email_canonical(ticket.customer.email)
        ):
            return "no_longer_the_email_on_record"  # the account's address changed since
    elif ticket.status not in (S.OPEN, S.AWAITING_CUSTOMER):
        return "ticket_not_open"
    return ""


# What a refused link's page says, by the reason confirming would give (see
# `verification_refusal`); anything not listed reads as an unknown link.
_LINK_STATES = {
    "used": "used",
    "expired": "expired",
    "locked": "locked",
    "ticket_not_awaiting_verification": "settled",
    "ticket_not_open": "settled",
    "no_longer_the_email_on_record": "superseded",
}


def verification_link_state(*, token: str) -> tuple[str, Verification | None]:
    """What a verification link is, so its page can say so before any button; reads only.

    ("live", row) for a link that confirming would accept; ("used" | "expired" | "locked" |
    "settled" | "superseded", row) for one it would refuse; ("unknown", None) for a token that
    is malformed, unknown, or a link of another page (freeze, status).
    """
    digest = token_hash_if_wellformed(token)
    if digest is None:
        return "unknown", None
    verification = Verification.objects.select_related("ticket").filter(token_hash=digest).first()
    if verification is None:
        return "unknown", None
    refusal = verification_refusal(verification.ticket, verification)
    if not refusal:
        return "live", verification
    state = _LINK_STATES.get(refusal, "unknown")
    return state, verification if state != "unknown" else None
