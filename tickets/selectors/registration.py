"""Reads for registration changes: what a request offers, what the owner may choose, outcomes."""

import contextlib
import logging
from typing import Any, cast

from django.core.cache import cache
from django.db.models import Count, F, Q, QuerySet, Window
from django.db.models.functions import Lower

from accounts.models import Customer
from accounts.selectors import email_canonical
from domains.models import Domain, RegistrationChange
from helpdesk.exceptions import CACHE_DOWN_ERRORS
from tickets.models import CHANGE_REQUEST_KINDS, Ticket

logger = logging.getLogger(__name__)


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
        for change in RegistrationChange.objects.filter(
            ticket=ticket, purpose=RegistrationChange.Purpose.CHANGE
        )
        .select_related("domain")
        .order_by("domain__name")
    ]


def registration_changes_for_ticket(*, ticket: Ticket) -> list[RegistrationChange]:
    """A ticket's registration changes and put-backs with their domains, for the staff page.

    Only a change request offers changes (services.registration), and the ticket a freeze hands
    to a supervisor put-backs: that change request, or one the system opened. Other tickets read
    nothing.
    """
    if ticket.kind not in CHANGE_REQUEST_KINDS and ticket.channel != Ticket.Channel.SYSTEM:
        return []
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


def registration_problem_domains() -> QuerySet[Domain]:
    """Customers' domains whose registration email bounces or is not their email on record."""
    return (
        Domain.objects.alias(
            registrant_lower=Lower("registrant_email"), customer_lower=Lower("customer__email")
        )
        .filter(customer__isnull=False)
        .exclude(registrant_email="")
        .filter(
            Q(registrant_email_status=Domain.EmailStatus.BOUNCING)
            | ~Q(registrant_lower=F("customer_lower"))
        )
    )


# Rows the dashboard lists (the total is shown beside them).
REGISTRATION_PROBLEMS_SHOWN = 50
# The panel reads every customer's domain (10 to 30 ms at 5,000 domains) and changes only with
# the daily contacts refresh, a bounce or an approved email change: a minute old is fresh enough.
REGISTRATION_PROBLEMS_CACHE_SECONDS = 60
_PROBLEMS_KEY = "staff-dashboard:registration-problems"


def _registration_problems_read(limit: int) -> dict[str, Any]:
    rows = list(
        registration_problem_domains()
        .select_related("customer")
        .annotate(total=Window(Count("id")))
        .order_by("customer__full_name", "customer_id", "name")[:limit]
    )
    customers: dict[int, dict[str, Any]] = {}
    for domain in rows:
        customer = cast(Customer, domain.customer)  # registration_problem_domains(): never None
        entry = customers.setdefault(
            customer.pk,
            {
                "number": customer.number,
                "full_name": customer.full_name,
                "email": customer.email,
                "domains": [],
            },
        )
        entry["domains"].append(
            {
                "name": domain.unicode_name,
                "registrant_email": domain.registrant_email,
                "bouncing": domain.registrant_email_status == Domain.EmailStatus.BOUNCING,
            }
        )
    return {"total": rows[0].total if rows else 0, "customers": list(customers.values())}


def registration_problems(*, limit: int = REGISTRATION_PROBLEMS_SHOWN) -> dict[str, Any]:
    """Customers' domains whose registration email bounces or differs, by customer.

    Plain values: `total`, and `customers` (number, full_name, email, `domains`: name,
    registrant_email, bouncing), the first `limit` domains by customer name. One query, kept
    REGISTRATION_PROBLEMS_CACHE_SECONDS in the cache (read on each page when Redis is down).
    """
    key = f"{_PROBLEMS_KEY}:{limit}"
    try:
        found: dict[str, Any] | None = cache.get(key)
    except CACHE_DOWN_ERRORS as exc:
        logger.warning("registration problems cache unreachable: %s", exc)
        return _registration_problems_read(limit)
    if found is None:
        found = _registration_problems_read(limit)
        with contextlib.suppress(*CACHE_DOWN_ERRORS):
            cache.set(key, found, timeout=REGISTRATION_PROBLEMS_CACHE_SECONDS)
    return found
