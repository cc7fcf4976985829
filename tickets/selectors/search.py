"""What a search of tickets matches: one meaning for the staff queue and the API."""

from typing import TypedDict

from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from accounts.models import Customer
from domains.models import Domain
from domains.validators import domain_search_text
from tickets.models import Ticket


class PkRow(TypedDict):
    pk: int


def ticket_search_conditions(text: str) -> list[Q]:
    """What a search for `text` matches, in parts that each have indexes of their own.

    Whole reference, customer number or email, or contact email, in any case; or part of the
    domain, the requested domain or the subject (trigram indexes on PostgreSQL). One OR across
    tickets, customers and domains would read the whole table, so callers query each part.
    """
    customers = (
        Customer.objects.alias(email_ci=Lower("email"))
        .filter(Q(number=text.upper()) | Q(email_ci=text.lower()))  # numbers are upper-case
        .values("pk")
    )
    # Stored in the xn--, lower-case form.
    domains = Domain.objects.filter(name__contains=domain_search_text(text)).values("pk")
    return [
        Q(reference=text.upper())  # references are upper-case
        | Q(contact_email__iexact=text)
        | Q(requested_domain__icontains=domain_search_text(text))
        | Q(subject__icontains=text),
        Q(customer__in=customers),
        Q(domain__in=domains),
    ]


def ticket_search_ids(text: str) -> QuerySet[Ticket, PkRow]:
    """The ids of the tickets `text` matches: one query per part, joined by UNION ALL."""
    first, *rest = [
        Ticket.objects.filter(condition).order_by().values("pk")
        for condition in ticket_search_conditions(text)
    ]
    return first.union(*rest, all=True)
