"""How common a search's text is, by PostgreSQL's own statistics of what it searches.

The staff queue reads what few tickets match at once and walks its order for what many may
match (selectors.queue); which is which comes from the planner's samples of the searched
columns and its counts of the search documents' words, read from pg_stats and kept in the
cache an hour.
"""

import contextlib
import logging
import re
from collections.abc import Callable
from typing import NamedTuple, TypeVar

from django.core.cache import cache
from django.db import connection

from domains.validators import domain_search_text
from helpdesk.exceptions import CACHE_DOWN_ERRORS
from tickets.selectors.search_text import (
    MESSAGE_TSQUERY,
    search_text_in_addresses,
    search_text_partial,
    search_text_words,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


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
_COLUMN_SAMPLES_KEY = "search-column-samples-3"


class Column(NamedTuple):
    """A column a search reads in part, as pg_stats names it."""

    table: str
    column: str


class ColumnSample(NamedTuple):
    """What PostgreSQL sampled of one column: its common values, then its histogram's bounds.

    The values casefolded, as every search compares them (_column_share).
    """

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
            common=[
                (value.casefold(), share)
                for value, share in zip(common or [], common_shares or [], strict=True)
            ],
            bounds=[value.casefold() for value in bounds or []],
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
    # Comprehensions over values folded when read: a search asks this of about 300 values up
    # to eight times, which a test function and a fold per value made 3,700 of the 61,000
    # Python calls of a "shop-12" search page (100,000 tickets).
    if whole:
        bounds = len([value for value in sample.bounds if value == folded])
        common = sum([share for value, share in sample.common if value == folded])
    else:
        bounds = len([value for value in sample.bounds if folded in value])
        common = sum([share for value, share in sample.common if folded in value])
    return common + (bounds * sample.bound_share if bounds > 1 else 0.0)


def ticket_search_index_words(column: Column, text: str) -> list[str] | None:
    """The words of `text` to ask `column`'s trigram index for, a pattern each; None: the text.

    Those in fewer than COMMON_WORD_SHARE of the column's rows by the planner's sample: a word
    in most rows narrows nothing down and costs the whole of its trigrams' lists ("example" in
    every address). None when no such word is left, for a text that is one word as it is, and
    on other databases. Without statistics every word is asked for.
    """
    if connection.vendor != "postgresql":
        return None
    words = search_text_words(text)
    if words == [text]:
        return None
    samples = _column_samples()
    rare = [
        word for word in words if (_column_share(samples, column, word) or 0.0) < COMMON_WORD_SHARE
    ]
    return rare or None


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

    contact, in_addresses = ("tickets_ticket", "contact_email"), False
    own = [_column_share(samples, contact, text, whole=True)]
    customers: list[float | None] = [0.0]
    if search_text_partial(text):
        in_addresses = search_text_in_addresses(text)
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
