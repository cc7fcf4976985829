"""What a search of tickets matches: one meaning for the staff queue and the API."""

import re
from typing import Any, TypedDict

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import BooleanField, F, Func, Q, QuerySet, Value
from django.db.models.expressions import Expression, RawSQL
from django.db.models.functions import Lower, StrIndex, Upper
from django.db.models.lookups import GreaterThan
from django.db.models.sql.compiler import SQLCompiler
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer
from domains.models import Domain
from domains.validators import domain_search_text
from tickets.models import Message, Ticket


class PkRow(TypedDict):
    pk: int


# Shorter texts match whole values only: a trigram index finds nothing to narrow on in "ab".
PARTIAL_MIN_LENGTH = 3
REFERENCE_SHAPE = re.compile(r"HD-[0-9A-Z]{8}")
# The expression of the GIN index message_body_fts (migration 0015), character for character:
# English stems ("records" finds "record"); 'simple' for Malay, which PostgreSQL has no
# dictionary for, so Malay words match as written, lower-cased.
MESSAGE_TSVECTOR = (
    "(to_tsvector('english'::regconfig, body) || to_tsvector('simple'::regconfig, body))"
)
# websearch_to_tsquery never raises on what people type ("quotes", -minus, or).
MESSAGE_TSQUERY = (
    "(websearch_to_tsquery('english'::regconfig, %s)"
    " || websearch_to_tsquery('simple'::regconfig, %s))"
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


def _partial(text: str) -> bool:
    return len(text) >= PARTIAL_MIN_LENGTH


def _index_words(text: str) -> str:
    """Words of `text` that every document it matches holds (as a websearch query), or "".

    Its longest word (longer words are rarer), or, when the text says "or", any of its words;
    never an excluded one ("-word").
    """
    words = text.replace('"', " ").split()
    wanted = [
        w for w in words if not w.startswith("-") and w.lower() != "or" and any(map(str.isalnum, w))
    ]
    if not wanted:
        return ""
    if len(wanted) < len([w for w in words if not w.startswith("-")]):  # an "or"
        return " or ".join(wanted)
    return max(wanted, key=len)


class TicketDocumentMatches(Expression):
    """The ticket's search document (`tickets_ticket.search_vector`) matches `text`.

    The column is outside the model (tickets.services.search), so the expression names it on
    the alias the query gives the ticket table, which is "U0" and the like in a subquery.

    PostgreSQL estimates how many documents hold all the words of a query as if the words were
    independent, so "DNS records" (words that come together) looks a hundred times rarer than
    it is; it would then read every match from the GIN index and sort them all, where walking
    the page's order stops after a page. So the index condition is one word of the text (its
    estimate is good: rare words go to the GIN index, common ones to the walk), and the whole
    query is checked on those rows inside a COALESCE, which the planner counts as one row in
    two instead of multiplying its estimate again.
    """

    output_field = BooleanField()
    conditional = True

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def as_sql(self, compiler: SQLCompiler, connection: Any) -> tuple[str, list[str | int]]:
        column = f"{compiler.quote_name_unless_alias(compiler.query.base_table)}.search_vector"
        whole = f"{column} @@ {MESSAGE_TSQUERY}"
        words = _index_words(self.text)
        if not words:
            return whole, [self.text, self.text]
        sql = f"({column} @@ {MESSAGE_TSQUERY} AND COALESCE({whole}, false))"
        return sql, [words, words, self.text, self.text]


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


def _message_matches(text: str, *, internal: bool) -> Q:
    """Tickets whose messages match `text`: full-text on PostgreSQL, icontains elsewhere.

    Staff search the ticket's search document (subject and every message, notes included);
    a customer, whose tickets are few, the messages that are not internal notes.
    """
    if connection.vendor != "postgresql":
        messages = Message.objects.filter(body__icontains=text)
        if not internal:
            messages = messages.filter(internal=False)
        return Q(pk__in=messages.order_by().values("ticket_id"))
    if internal:
        return Q(TicketDocumentMatches(text))
    # Raw because it must be the index's expression exactly (SearchVector adds a COALESCE);
    # the SQL is constant and the text goes as a parameter.
    condition = f"{MESSAGE_TSVECTOR} @@ {MESSAGE_TSQUERY}"
    messages = Message.objects.filter(
        RawSQL(condition, [text, text], BooleanField()),  # noqa: S611
        internal=False,
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


def _subject_contains(text: str) -> Q:
    """The subject holds `text` (any case): with its words as the trigram index's conditions.

    The same rows as `subject__icontains`; but for "dns records" the trigram index would read
    the long lists of the trigrams a space makes (" re" is in every "Password resend"), where
    "%dns%" and "%records%" let it skip to the rare ones. The whole text is then checked on
    the rows found.
    """
    words = [word for word in text.split() if _partial(word)]
    if len(text.split()) < 2 or not words:
        return Q(subject__icontains=text)
    whole: GreaterThan[int] = GreaterThan(StrIndex(Upper("subject"), Upper(Value(text))), 0)
    return Q(*[Q(subject__icontains=word) for word in words], whole)


def ticket_search_conditions(text: str, *, internal: bool = False) -> list[Q]:
    """What a search for `text` matches, in parts that each have indexes of their own.

    Whole reference or customer number; the customer's name or email, the contact email, the
    domain, the requested domain and the subject, in part (trigram indexes on PostgreSQL); and
    the text of the messages (full-text search). One OR across tickets, customers, domains and
    messages would read the whole table, so callers query each part.

    :param internal: whether internal notes are searched too (staff only: a customer must not
        learn what a note on their ticket says by searching for it).
    """
    text = text.strip()
    partial = _partial(text)
    customer_match = Q(number=text.upper()) | Q(email_ci=text.lower())  # numbers: upper-case
    own = Q(reference=text.upper()) | Q(contact_email__iexact=text)  # references: upper-case
    if partial:
        customer_match |= Q(email__icontains=text) | Q(full_name__icontains=text)
        own |= (
            Q(contact_email__icontains=text)
            | Q(requested_domain__icontains=domain_search_text(text))
            | _subject_contains(text)
        )
    customers = Customer.objects.alias(email_ci=Lower("email")).filter(customer_match).values("pk")
    conditions = [own, Q(customer__in=customers)]
    if partial:
        # Stored in the xn--, lower-case form.
        domains = Domain.objects.filter(name__contains=domain_search_text(text)).values("pk")
        conditions += [
            Q(domain__in=domains),
            _message_matches(text, internal=internal),
        ]
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
    if connection.vendor != "postgresql" or not _partial(text.strip()):
        return queryset
    return queryset.annotate(search_subject_hit=SubjectMatches(text.strip()))


def ticket_search_matched(ticket: Ticket, text: str) -> list[str]:
    """Which fields of a found ticket `text` matched (keys of SEARCH_FIELDS), read from the row.

    The same tests as ticket_search_conditions, on the values already loaded (customer and
    domain included, and the annotation of ticket_search_page_annotate), so a page of results
    costs no query more. A ticket found by none of them was found by the text of a message.
    """
    text = text.strip()
    folded, partial = text.casefold(), _partial(text)
    domain_text = domain_search_text(text)
    customer, domain = ticket.customer, ticket.domain

    def has(value: str) -> bool:
        return bool(value) and (
            value.casefold() == folded or (partial and folded in value.casefold())
        )

    found = {
        "reference": ticket.reference == text.upper(),
        "customer_number": customer is not None and customer.number == text.upper(),
        "customer_name": customer is not None and partial and has(customer.full_name),
        "customer_email": customer is not None and has(customer.email),
        "contact_email": has(ticket.contact_email),
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
