"""What a search of tickets matches: one meaning for the staff queue and the API."""

import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any, NamedTuple, TypedDict, TypeVar

from django.contrib.postgres.expressions import ArraySubquery
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection
from django.db.models import BooleanField, F, Func, Q, QuerySet
from django.db.models.expressions import Expression, RawSQL
from django.db.models.functions import Lower
from django.db.models.sql.compiler import SQLCompiler
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer
from domains.models import Domain
from domains.validators import domain_search_text
from helpdesk.exceptions import CACHE_DOWN_ERRORS
from tickets.models import Message, Ticket

logger = logging.getLogger(__name__)
T = TypeVar("T")


class PkRow(TypedDict):
    pk: int


# Shorter texts match whole values only: a trigram index finds nothing to narrow on in "ab".
PARTIAL_MIN_LENGTH = 3
REFERENCE_SHAPE = re.compile(r"HD-[0-9A-Z]{8}")
# What a stored domain name is made of (normalize_domain_name: xn-- form, lower-case labels).
DOMAIN_NAME_CHARACTERS = re.compile(r"[a-z0-9.-]+")
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


def _addresses_in_part(text: str) -> bool:
    r"""Whether `text` is looked for inside email addresses, not only as a whole address.

    Not for a whole address (an agent pasting one means that person, not "joann@…" for
    "ann@…"), nor for a text with a blank: every address is validated before it is stored
    (validate_email), and a valid one holds a blank only escaped inside quotes
    (`"a\ b"@example.com`). Either way the trigram read of the addresses, the slowest part of
    a search when its words are in most addresses ("customer", "example"), is left out.
    """
    if not _partial(text):
        return False
    if "\\" not in text and any(character.isspace() for character in text):
        return False
    try:
        validate_email(text)
    except ValidationError:
        return True
    return False


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


# A word in this share of the search documents or more is common: see ticket_search_words_common.
COMMON_WORD_SHARE = 0.005
# The planner's statistics of the documents' words are kept in the cache this long.
WORD_SHARES_SECONDS = 3600
_WORD_SHARES_KEY = "search-word-shares"


def _planner_statistics(key: str, what: str, read: Callable[[], T]) -> T:
    """`read()`, kept WORD_SHARES_SECONDS in the cache; read each time while Redis is down."""
    try:
        value: T | None = cache.get(key)
    except CACHE_DOWN_ERRORS as exc:
        logger.warning("search %s cache unreachable: %s", what, exc)
        return read()
    if value is None:
        value = read()
        with contextlib.suppress(*CACHE_DOWN_ERRORS):
            cache.set(key, value, timeout=WORD_SHARES_SECONDS)
    return value


def _document_word_shares() -> dict[str, float]:
    """Word -> the share of search documents holding it, for the common words PostgreSQL counted.

    Only those: the statistics count up to 10,000 words (ten per unit of the column's target),
    and each search reads them from the cache: 0.13 ms for the 105 common ones at 1,000,000
    bench tickets, 0.31 ms for all 2,011 counted, 1.1 ms for 10,000.
    """
    return _planner_statistics(_WORD_SHARES_KEY, "word shares", _document_word_shares_read)


def _document_word_shares_read() -> dict[str, float]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats"
            " WHERE tablename = 'tickets_ticket' AND attname = 'search_vector'"
        )
        row = cursor.fetchone()
    # The shares list ends with three figures of its own (least, most, empty): zip drops them.
    shares = zip(row[0], row[1], strict=False) if row and row[0] else []
    return {word: share for word, share in shares if share >= COMMON_WORD_SHARE}


# The columns a search reads in part or whole, as (table, column): see ticket_search_fields_rare.
_SAMPLED_COLUMNS = (
    ("tickets_ticket", "subject"),
    ("tickets_ticket", "requested_domain"),
    ("tickets_ticket", "contact_email"),
    ("accounts_customer", "full_name"),
    ("accounts_customer", "email"),
)
_COLUMN_SAMPLES_KEY = "search-column-samples-2"


class ColumnSample(NamedTuple):
    """What PostgreSQL sampled of one column: its common values, then its histogram's bounds."""

    common: list[tuple[str, float]]  # (value, share of the rows it is)
    bounds: list[str]
    bound_share: float  # the share of the rows each bound stands for


ColumnSamples = dict[tuple[str, str], ColumnSample]


def _column_samples() -> ColumnSamples:
    """The planner's samples of the columns searched in part."""
    return _planner_statistics(_COLUMN_SAMPLES_KEY, "column samples", _column_samples_read)


def _column_samples_read() -> ColumnSamples:
    """Each column's most common values with their shares, then its histogram's bounds.

    The bounds split the rest of the rows (neither null nor a common value) evenly, so each
    stands for that rest divided by their number: how the planner itself reads a LIKE.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename::text, attname::text, null_frac,"
            " most_common_vals::text::text[], most_common_freqs,"
            " histogram_bounds::text::text[] FROM pg_stats"
            " WHERE schemaname = current_schema() AND tablename = ANY(%s) AND attname = ANY(%s)",
            [sorted({t for t, _c in _SAMPLED_COLUMNS}), sorted({c for _t, c in _SAMPLED_COLUMNS})],
        )
        rows = [row for row in cursor.fetchall() if (row[0], row[1]) in _SAMPLED_COLUMNS]
    samples: ColumnSamples = {}
    for table, column, null_share, common, common_shares, bounds in rows:
        rest = max(0.0, 1.0 - null_share - sum(common_shares or []))
        samples[table, column] = ColumnSample(
            common=list(zip(common or [], common_shares or [], strict=True)),
            bounds=list(bounds or []),
            bound_share=rest / len(bounds) if bounds else 0.0,
        )
    return samples


def _column_share(
    samples: ColumnSamples, column: tuple[str, str], text: str, *, whole: bool = False
) -> float | None:
    """The share of `column`'s rows holding `text` (being it: `whole`), by the planner's sample.

    A text in one bound of the histogram only counts for none: the bounds always hold the
    column's smallest and largest values, so the first customer's address or name would look
    like one in a hundred of them, and a search for the one customer would walk every ticket
    in the page's order. Read at once, a text that is really in one row in a hundred costs a
    sort of those rows; walked, a text in one row costs the whole index.

    None for a column without statistics (never analyzed): nothing is known.
    """
    sample = samples.get(column)
    if sample is None or not (sample.common or sample.bounds):
        return None
    folded = text.casefold()

    def holds(value: str) -> bool:
        return value.casefold() == folded if whole else folded in value.casefold()

    bounds = sum(1 for value in sample.bounds if holds(value))
    common = sum(share for value, share in sample.common if holds(value))
    return common + (bounds * sample.bound_share if bounds > 1 else 0.0)


class FieldsRare(NamedTuple):
    """Whether few tickets match the first two conditions of ticket_search_conditions.

    None where PostgreSQL has no statistics to tell (never analyzed), or on other databases.
    """

    own: bool | None  # the ticket's own fields
    customers: bool | None  # its customer (ticket_search_customer_matches)


def ticket_search_fields_rare(text: str) -> FieldsRare:
    """Whether few rows hold `text` in the fields it is looked for in, by PostgreSQL's samples.

    A text in none of the planner's sampled values (about 200 a column), or in one of its
    histogram's bounds alone, is in less than about one row in 100, and its tickets are few
    enough to sort at once; a text in several of them may be in most rows. A whole customer
    number or email is one customer.
    """
    if connection.vendor != "postgresql":
        return FieldsRare(own=None, customers=None)
    text, samples = text.strip(), _column_samples()

    def rare(*shares: float | None) -> bool | None:
        known = [share for share in shares if share is not None]
        return None if len(known) < len(shares) else max(known) < COMMON_WORD_SHARE

    contact, partial, in_addresses = ("tickets_ticket", "contact_email"), _partial(text), False
    own = [_column_share(samples, contact, text, whole=True)]
    customers: list[float | None] = [0.0]
    if partial:
        in_addresses = _addresses_in_part(text)
        own += [
            _column_share(
                samples, ("tickets_ticket", "requested_domain"), domain_search_text(text)
            ),
            _column_share(samples, ("tickets_ticket", "subject"), text),
        ]
        customers.append(_column_share(samples, ("accounts_customer", "full_name"), text))
    if in_addresses:
        own.append(_column_share(samples, contact, text))
        customers.append(_column_share(samples, ("accounts_customer", "email"), text))
    return FieldsRare(own=rare(*own), customers=rare(*customers))


def ticket_search_words_common(text: str) -> bool:
    """Whether each word of `text` is in many search documents (PostgreSQL), so perhaps all.

    Several words may come together ("DNS records"), though the planner, which takes words for
    independent, estimates them a hundred times rarer: callers read such a text from the head
    of their order first. The words are what the documents hold: the lexemes of the search's
    own query (MESSAGE_TSQUERY), so "customer" is as common as its English stem `custom`; a
    word PostgreSQL did not count is rare. The query ORs its English and its 'simple' words,
    so the text is common when all of either are (an English stem is in the documents of its
    written form at least; English leaves stop words out). Every word the query needs must
    be common: a quoted phrase's too, those of either side of an "or", none after a "-"
    (leaving a word out leaves most documents). A text without a word matches nothing.
    """
    if connection.vendor != "postgresql":
        return False
    shares = _document_word_shares()
    # querytree: the query without its negations, as the GIN index reads it; "T" when nothing
    # is left to read there (a text of "-word"s only), "" when it holds no word at all.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT querytree({MESSAGE_TSQUERY})", [text, text])
        tree: str = cursor.fetchone()[0]
    if tree in ("", "T"):
        return tree == "T"
    return _query_tree_holds(tree, lambda lexeme: shares.get(lexeme, 0.0) >= COMMON_WORD_SHARE)


# What _query_tree_holds reads of a tsquery as PostgreSQL writes it: each quoted word ('' for
# a quote inside, then perhaps a prefix mark and weights), "|" and the parentheses. "&" and a
# phrase's "<->" or "<2>" are passed over: all the words they join count alike.
_QUERY_TOKENS = re.compile(r"'((?:[^'\\]|''|\\.)*)'(?::[*A-D]*)?|([|()])")


def _query_tree_holds(tree: str, holds: Callable[[str], bool]) -> bool:
    """Whether the tsquery `tree`, without negations, is true when each word is `holds(word)`.

    Both sides of "&" and of a phrase, either side of "|", which binds last.
    """
    # One level a parenthesis: (whether one of its "or"s so far holds, the current "and").
    levels = [[False, True]]
    for word, operator_ in _QUERY_TOKENS.findall(tree):
        level = levels[-1]
        if operator_ == "(":
            levels.append([False, True])
        elif operator_ == ")":
            done, current = levels.pop()
            levels[-1][1] = levels[-1][1] and (done or current)
        elif operator_ == "|":
            level[:] = [level[0] or level[1], True]
        else:  # a word ("&" and a phrase's distance need nothing: the words all count)
            level[1] = level[1] and holds(re.sub(r"''|\\(.)", lambda m: m.group(1) or "'", word))
    done, current = levels[0]
    return done or current


def ticket_search_document_matches(text: str, *, indexed: bool = True) -> Q | None:
    """The staff search's full-text condition, on the tickets' search documents (PostgreSQL).

    None where there is none: on other databases (the messages are searched instead, within
    ticket_search_conditions) and for texts too short to search inside values. `indexed`: see
    TicketDocumentMatches.
    """
    if connection.vendor != "postgresql" or not _partial(text.strip()):
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


def ticket_search_customer_matches(text: str) -> Q:
    """Tickets of the customers `text` matches: whole number or email, or part of either."""
    text = text.strip()
    customer_match = Q(number=text.upper()) | Q(email_ci=text.lower())  # numbers: upper-case
    if _partial(text):
        customer_match |= Q(full_name__icontains=text)
        if _addresses_in_part(text):
            customer_match |= Q(email__icontains=text)
    customers = Customer.objects.alias(email_ci=Lower("email")).filter(customer_match).values("pk")
    return Q(customer__in=customers)


def ticket_search_conditions(
    text: str, *, internal: bool = False, document: bool = True, customer: bool = True
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
    """
    text = text.strip()
    partial = _partial(text)
    domain_text = domain_search_text(text)  # names are stored in the xn--, lower-case form
    own = Q(reference=text.upper()) | Q(contact_email__iexact=text)  # references: upper-case
    if partial:
        own |= Q(requested_domain__icontains=domain_text) | Q(subject__icontains=text)
        if _addresses_in_part(text):
            own |= Q(contact_email__icontains=text)
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

    def has(value: str, *, in_part: bool = partial) -> bool:
        return bool(value) and (
            value.casefold() == folded or (in_part and folded in value.casefold())
        )

    in_addresses = _addresses_in_part(text)

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
