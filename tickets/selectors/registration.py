"""Reads for registration changes: what a request offers, what the owner may choose, outcomes."""

from typing import Any

from accounts.models import Customer
from accounts.selectors import email_canonical
from domains.models import Domain, RegistrationChange
from tickets.models import Ticket


def registration_offer_summary(*, ticket: Ticket) -> list[dict[str, Any]]:
    """The domains a change request offers to update at OpenSRS, as JSON-ready plain values.

    Each: `domain` (Unicode name), `owner` / `admin` (whether that contact names the old
    address), and the owner's choice so far `update_owner` / `update_admin`.
    """
    return [
        {
            "domain": change.domain.unicode_name,
            "name": change.domain.name,
            "owner": change.owner_matches,
            "admin": change.admin_matches,
            "update_owner": change.update_owner,
            "update_admin": change.update_admin,
        }
        for change in RegistrationChange.objects.filter(ticket=ticket)
        .select_related("domain")
        .order_by("domain__name")
    ]


def registration_changes_for_ticket(*, ticket: Ticket) -> list[RegistrationChange]:
    """A ticket's registration changes with their domains, for the staff ticket page."""
    return list(
        RegistrationChange.objects.filter(ticket=ticket)
        .select_related("domain")
        .order_by("domain__name")
    )


def registration_domains_of(*, customer: Customer) -> list[dict[str, Any]]:
    """The customer's domains whose owner or admin contact names their email on record."""
    email = email_canonical(customer.email)
    rows = []
    for domain in Domain.objects.filter(customer=customer).order_by("name"):
        owner = email_canonical(domain.registrant_email) == email
        admin = email_canonical(domain.admin_email) == email
        if owner or admin:
            rows.append(
                {
                    "id": domain.pk,
                    "domain": domain.unicode_name,
                    "name": domain.name,
                    "owner": owner,
                    "admin": admin,
                }
            )
    return rows


def registration_choices_parse(values: list[str]) -> dict[str, set[str]]:
    """Form values `<domain>:owner` / `<domain>:admin` as {domain: {"owner", "admin"}}."""
    choices: dict[str, set[str]] = {}
    for value in values:
        name, _, kind = str(value).rpartition(":")
        if name and kind in ("owner", "admin"):
            choices.setdefault(name, set()).add(kind)
    return choices


# Rows the dashboard lists (the total is shown beside them).
REGISTRATION_PROBLEMS_SHOWN = 50


def registration_problems(*, limit: int = REGISTRATION_PROBLEMS_SHOWN) -> dict[str, Any]:
    """Customers' domains whose registration email bounces or differs, by customer: 2 queries."""
    from tickets.services.registration_warnings import registration_problem_domains

    rows = registration_problem_domains()
    return {
        "total": rows.count(),
        "domains": list(
            rows.select_related("customer").order_by("customer__full_name", "customer_id", "name")[
                :limit
            ]
        ),
    }
