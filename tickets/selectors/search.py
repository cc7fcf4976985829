"""What a search of tickets matches."""

from typing import TypedDict

from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from accounts.models import Customer
from domains.models import Domain
from tickets.models import Ticket


class PkRow(TypedDict):
    pk: int


def ticket_search_ids(text: str) -> QuerySet[Ticket, PkRow]:
    """The ids of the tickets whose reference, contact email, subject or domain match `text`.

    Two parts, each answered from indexes of its own (trigram ones on PostgreSQL), joined by
    UNION ALL: one OR across tickets and domains would read the whole table.
    """
    own = Ticket.objects.filter(
        Q(reference=text.upper())  # references are upper-case
        | Q(contact_email__iexact=text)
        | Q(requested_domain__icontains=text)
        | Q(subject__icontains=text)
    )
    domains = Domain.objects.filter(name__contains=text.lower()).order_by().values("pk")
    by_domain = Ticket.objects.filter(domain__in=domains)  # domain names are lower-case
    return own.order_by().values("pk").union(by_domain.order_by().values("pk"), all=True)


def queue_search_conditions(text: str) -> list[Q]:
    """What the queue's search matches, in parts that each have indexes of their own.

    Whole reference, customer number or email, or contact email, in any case; or part of the
    domain, the requested domain or the subject (trigram indexes on PostgreSQL).
    """
    customers = (
        Customer.objects.alias(email_ci=Lower("email"))
        .filter(Q(number=text.upper()) | Q(email_ci=text.lower()))  # numbers are upper-case
        .values("pk")
    )
    domains = Domain.objects.filter(name__contains=text.lower()).values("pk")  # stored lower-case
    return [
        Q(reference=text.upper())  # references are upper-case
        | Q(contact_email__iexact=text)
        | Q(requested_domain__icontains=text)
        | Q(subject__icontains=text),
        Q(customer__in=customers),
        Q(domain__in=domains),
    ]
