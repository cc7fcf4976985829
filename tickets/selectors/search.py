"""What a search of tickets matches: one meaning for the staff queue and the API."""

import re
from typing import Any, TypedDict

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import (
    BooleanField,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.expressions import Expression, RawSQL
from django.db.models.functions import Coalesce, Lower
from django.db.models.lookups import IContains
from django.db.models.sql.compiler import SQLCompiler
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer
from domains.models import Domain
from domains.validators import domain_search_text
from tickets.models import Message, Ticket
from tickets.selectors.messages import message_shown_to_requester, ticket_opener_unproven
from tickets.selectors.search_statistics import Column, ticket_search_index_words
from tickets.selectors.search_text import (
    MESSAGE_TSQUERY,
    search_text_in_addresses,
    search_text_partial,
)


class PkRow(TypedDict):
    pk: int


REFERENCE_SHAPE = re.compile(r"HD-[0-9A-Z]{8}")
# What a stored domain name is made of (normalize_domain_name: xn-- form, lower-case labels).
DOMAIN_NAME_CHARACTERS = re.compile(r"[a-z0-9.-]+")
# The expression of the GIN index message_body_fts (migration 0015), character for character:
# English stems ("records" finds "record"); 'simple' for Malay, which PostgreSQL has no
# dictionary for, so Malay words match as written, lower-cased.
MESSAGE_TSVECTOR = (
    "(to_tsvector('english'::regconfig, body) || to_tsvector('simple'::regconfig, body))"
)

# What a search result says it matched, in the order it is said.
SEARCH_FIELDS = {
    "reference": _("reference"),
    "customer_number": _("customer number"),
    "customer_name": _("customer name"),
    "customer_email": _("customer email"),
    "contact_email": _("contact email"),
    "domain": _("domain"),
    "subject": _("subject"),
    "message": _("message text"),
}


def ticket_reference_shaped(text: str) -> str | None:
    """`text` as a ticket reference (upper-case) when it has a reference's shape, else None."""
    candidate = text.strip().upper()
    return candidate if REFERENCE_SHAPE.fullmatch(candidate) else None


class TicketDocumentMatches(Expression):
    """The ticket's search document (`tickets_ticket.search_vector`) matches `text`.

    The column is outside the model (tickets.services.search), so the expression names it on
    the alias the query gives the ticket table, which is "U0" and the like in a subquery.

    :param indexed: False for a test of each row read anyway, which neither the GIN index
        answers nor the planner estimates (inside a COALESCE).
    """

    output_field = BooleanField()
    conditional = True

    def __init__(self, text: str, *, indexed: bool = True) -> None:
        super().__init__()
        self.text, self.indexed = text, indexed

    def as_sql(self, compiler: SQLCompiler, connection: Any) -> tuple[str, list[str | int]]:
        column = f"{compiler.quote_name_unless_alias(compiler.query.base_table)}.search_vector"
        sql = f"{column} @@ {MESSAGE_TSQUERY}"
        return sql if self.indexed else f"COALESCE({sql}, false)", [self.text, self.text]


class SubjectMatches(Expression):
    """Whether the subject alone matches `text` by full-text search (the page's rows only)."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def as_sql(self, compiler: SQLCompiler, connection: Any) -> tuple[str, list[str | int]]:
        column = f"{compiler.quote_name_unless_alias(compiler.query.base_table)}.subject"
        vector = (
            f"(to_tsvector('english'::regconfig, {column})"
            f" || to_tsvector('simple'::regconfig, {column}))"
        )
        return f"{vector} @@ {MESSAGE_TSQUERY}", [self.text, self.text]


def ticket_search_document_matches(text: str, *, indexed: bool = True) -> Q | None:
    """The staff search's full-text condition, on the tickets' search documents (PostgreSQL).

    None where there is none: on other databases (the messages are searched instead, within
    ticket_search_conditions) and for texts too short to search inside values. `indexed`: see
    TicketDocumentMatches.
    """
    if connection.vendor != "postgresql" or not search_text_partial(text.strip()):
        return None
    return Q(TicketDocumentMatches(text.strip(), indexed=indexed))


def _message_matches(text: str, *, internal: bool) -> Q:
    """Tickets whose messages match `text`: full-text on PostgreSQL, icontains elsewhere.

    Staff search the ticket's search document (subject and every message, notes included);
    a customer, whose tickets are few, the messages that are not internal notes.
    """
    if connection.vendor != "postgresql":
        messages = Message.objects.filter(body__icontains=text)
        if not internal:
            messages = messages.filter(message_shown_to_requester())
        return Q(pk__in=messages.order_by().values("ticket_id"))
    if internal:
        return Q(TicketDocumentMatches(text))
    # Raw because it must be the index's expression exactly (SearchVector adds a COALESCE);
    # the SQL is constant and the text goes as a parameter.
    condition = f"{MESSAGE_TSVECTOR} @@ {MESSAGE_TSQUERY}"
    messages = Message.objects.filter(
        RawSQL(condition, [text, text], BooleanField()),  # noqa: S611
        message_shown_to_requester(),
    )
    # `id = ANY(ARRAY(subquery))`, not `id IN (subquery)`: the ids are read once from the GIN
    # index and the tickets fetched by primary key. For IN, PostgreSQL prefers a hash semi-join
    # over a scan of every ticket once a word is in a few thousand messages.
    return Q(
        Func(
            F("pk"),
            ArraySubquery(messages.order_by().values("ticket_id")),
            template="%(expressions)s)",
            arg_joiner=" = ANY(",
            output_field=BooleanField(),
        )
    )


def _customer_match(text: str) -> Q:
    """The customers `text` matches (in _customers()): whole number or email, or part of either."""
    text = text.strip()
    customer_match = Q(number=text.upper()) | Q(email_ci=text.lower())  # numbers: upper-case
    if search_text_partial(text):
        customer_match |= Q(full_name__icontains=text)
        if search_text_in_addresses(text):
            customer_match |= Q(email__icontains=text)
    return customer_match


def _customers() -> QuerySet[Customer]:
    return Customer.objects.alias(email_ci=Lower("email"))


def ticket_search_customer_matches(text: str) -> Q:
    """Tickets of the customers `text` matches: whole number or email, or part of either."""
    return Q(customer__in=_customers().filter(_customer_match(text)).values("pk"))


def ticket_search_customer_matches_per_row(text: str) -> Q:
    """The test of ticket_search_customer_matches, made on each ticket's own customer.

    For a walk of tickets in a page's order, which stops after a page. There, the customers
    of ticket_search_customer_matches are read whole before the walk, once for each part of
    the page, and when most customers match ("customer", in every seeded name) that read is
    most of the search: each part tests every customer's name and address, 11.6 against
    3.5 ms of PostgreSQL's execution at 100,000 tickets. A condition on the ticket's own
    customer row, looked up by its primary key, is made only for the rows walked; as a scalar
    subquery, which PostgreSQL does not turn into a hashed read of every customer as it does
    an IN or an EXISTS, and which leaves the ticket's other conditions as they were planned.
    """
    own = _customers().filter(pk=OuterRef("customer_id")).order_by()
    hit = own.annotate(hit=ExpressionWrapper(_customer_match(text), output_field=BooleanField()))
    return Q(Subquery(hit.values("hit"), output_field=BooleanField()))


def _holds(field: str, text: str, *, walked: bool = False) -> Q:
    """The ticket's `field` holds `text`, in any case (icontains), found by its trigram index.

    On PostgreSQL the index is asked for the text's words, each on its own (those not in most
    of the column's values: ticket_search_index_words), and the text itself is tested on the
    rows they find. GIN reads every trigram of one pattern whole, though one of them in no
    row would do: `%NCH-CUSTOMER-1351@EXA%` read the lists of `exa` and of the words' first
    letters, in every contact address, 300 ms at 1,000,000 tickets, where its word `nch`
    alone tells "none" in 0.1 ms; a pattern each, GIN stops at the first that finds nothing.

    `walked`: for rows read in a page's order and tested one by one, where no index is asked
    and each word's pattern would be one test more a row (the text holds its words): the text.
    """
    whole = Q(**{f"{field}__icontains": text})
    if walked:
        return whole
    words = ticket_search_index_words(Column("tickets_ticket", field), text)
    if not words:
        return whole
    # Inside a COALESCE, the test is made on each row found, never asked of the index.
    each_row = Coalesce(IContains(F(field), text), Value(False))
    return Q(*[Q(**{f"{field}__icontains": word}) for word in words], each_row)


def ticket_search_conditions(
    text: str,
    *,
    internal: bool = False,
    document: bool = True,
    customer: bool = True,
    walked: bool = False,
) -> list[Q]:
    """What a search for `text` matches, in parts that each have indexes of their own.

    Whole reference or customer number; the customer's name or email, the contact email, the
    domain, the requested domain and the subject, in part (trigram indexes on PostgreSQL); and
    the text of the messages (full-text search). One OR across tickets, customers, domains and
    messages would read the whole table, so callers query each part.

    :param internal: whether internal notes are searched too (staff only: a customer must not
        learn what a note on their ticket says by searching for it).
    :param document: False leaves out the condition of ticket_search_document_matches, for a
        caller that reads that part its own way (the message text stays on other databases).
    :param customer: False leaves out ticket_search_customer_matches, likewise.
    :param walked: the first condition (the ticket's own fields) for a walk of the rows in a
        page's order, each row tested, no index asked: without the tests another one holds (a
        whole contact address is a part of itself; a text holds its words, see _holds). The
        same tickets; the walk of "shop-12" at 100,000 tickets 6.1 to 5.4 ms a part.
    """
    text = text.strip()
    partial = search_text_partial(text)
    domain_text = domain_search_text(text)  # names are stored in the xn--, lower-case form
    in_addresses = search_text_in_addresses(text)
    own = Q(reference=text.upper())  # references: upper-case
    if not (walked and in_addresses):
        own |= Q(contact_email__iexact=text)
    if partial:
        subject = _holds("subject", text, walked=walked)
        if not internal:
            # Nor is a customer shown, by what finds it, the words of an unproven opener.
            subject &= ~ticket_opener_unproven()
        own |= _holds("requested_domain", domain_text, walked=walked) | subject
        if in_addresses:
            own |= _holds("contact_email", text, walked=walked)
    conditions = [own, *([ticket_search_customer_matches(text)] if customer else [])]
    if partial:
        # A text with a space, an "@" or the like is in no domain's name: no part for domains.
        if DOMAIN_NAME_CHARACTERS.fullmatch(domain_text):
            domains = Domain.objects.filter(name__contains=domain_text).values("pk")
            conditions.append(Q(domain__in=domains))
        if document or not internal or ticket_search_document_matches(text) is None:
            conditions.append(_message_matches(text, internal=internal))
    return conditions


def ticket_search_ids(text: str, *, internal: bool = False) -> QuerySet[Ticket, PkRow]:
    """The ids of the tickets `text` matches: one query per part, joined by UNION ALL."""
    first, *rest = [
        Ticket.objects.filter(condition).order_by().values("pk")
        for condition in ticket_search_conditions(text, internal=internal)
    ]
    return first.union(*rest, all=True)


def ticket_search_page_annotate(queryset: QuerySet[Ticket], text: str) -> QuerySet[Ticket]:
    """The page's rows with what ticket_search_matched needs beyond their fields.

    On PostgreSQL, whether the subject alone matches by full-text search (a stem of a word
    in it): the search document holds the subject too. Computed for the page's rows only.
    """
    if connection.vendor != "postgresql" or not search_text_partial(text.strip()):
        return queryset
    return queryset.annotate(search_subject_hit=SubjectMatches(text.strip()))


def ticket_search_matched(ticket: Ticket, text: str) -> list[str]:
    """Which fields of a found ticket `text` matched (keys of SEARCH_FIELDS), read from the row.

    The same tests as ticket_search_conditions, on the values already loaded (customer and
    domain included, and the annotation of ticket_search_page_annotate), so a page of results
    costs no query more. A ticket found by none of them was found by the text of a message.
    """
    text = text.strip()
    folded, partial = text.casefold(), search_text_partial(text)
    domain_text = domain_search_text(text)
    customer, domain = ticket.customer, ticket.domain

    def has(value: str, *, in_part: bool = partial) -> bool:
        return bool(value) and (
            value.casefold() == folded or (in_part and folded in value.casefold())
        )

    in_addresses = search_text_in_addresses(text)

    found = {
        "reference": ticket.reference == text.upper(),
        "customer_number": customer is not None and customer.number == text.upper(),
        "customer_name": customer is not None and partial and has(customer.full_name),
        "customer_email": customer is not None and has(customer.email, in_part=in_addresses),
        "contact_email": has(ticket.contact_email, in_part=in_addresses),
        "domain": partial
        and (
            (domain is not None and domain_text in domain.name)
            or domain_text in ticket.requested_domain.lower()
        ),
        "subject": partial
        and (has(ticket.subject) or getattr(ticket, "search_subject_hit", False)),
    }
    matched = [name for name, hit in found.items() if hit]
    return matched or ["message"]
