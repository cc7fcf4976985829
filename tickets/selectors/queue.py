"""The staff queue: quick views, filters, sorts and keyset pages.

Long because a page is read in parts whose indexes depend on the sort and the search together
(_queue_page_ids): split, each part would be read without the others it must agree with.
"""

import contextlib
import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.db.models import Case, Count, F, Q, QuerySet, Subquery, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.selectors import StaffMember, is_staff_member, staff_member_list, staff_member_logins
from helpdesk.exceptions import CACHE_DOWN_ERRORS
from tickets.models import OPEN_STATUS_VALUES, Ticket, due_sort_key, priority_sort_key
from tickets.selectors.search import (
    PkRow,
    ticket_search_conditions,
    ticket_search_customer_matches,
    ticket_search_customer_matches_per_row,
    ticket_search_document_matches,
    ticket_search_matched,
    ticket_search_page_annotate,
)
from tickets.selectors.search_statistics import (
    ticket_search_fields_rare,
    ticket_search_words_common,
)

logger = logging.getLogger(__name__)


QUEUE_VIEWS = ("open", "mine", "unassigned", "overdue", "awaiting_verification", "all")
# Sort name -> ordered keys (annotation, descending?). Only these names reach order_by().
QUEUE_SORTS: dict[str, tuple[tuple[str, bool], ...]] = {
    "urgency": (("k_overdue", True), ("k_due", False), ("id", False)),
    "created": (("k_created", False), ("id", False)),
    "-created": (("k_created", True), ("id", True)),
    "due": (("k_due", False), ("id", False)),
    "-due": (("k_due", True), ("id", True)),
    "priority": (("k_priority", False), ("id", False)),
    "-priority": (("k_priority", True), ("id", True)),
    "updated": (("k_updated", False), ("id", False)),
    "-updated": (("k_updated", True), ("id", True)),
}
QUEUE_PAGE_SIZES = (25, 50, 100)
# "Overdue first, then due soonest" is plain due order when the tickets are all open (or all
# closed: none is overdue), so those pages walk the due index alone.
_DUE_KEYS: tuple[tuple[str, bool], ...] = (("k_due", False), ("id", False))
# What a queue row shows (staff_tags.queue_rows); the other columns stay in the database.
_QUEUE_FIELDS = (
    "reference",
    "subject",
    "requested_domain",
    "contact_email",
    "kind",
    "status",
    "priority",
    "due_at",
    "sla_paused_at",
    "customer__number",
    "customer__full_name",
    "customer__email",
    "domain__name",
    "assignee__username",
    "version",  # sent back with a bulk action, which refuses a ticket changed since
)


@dataclass(frozen=True)
class QueueFilters:
    """Cleaned queue filters: every value here came through an allow-list."""

    view: str = "open"
    status: str = ""
    kind: str = ""
    assignee: str = ""
    q: str = ""
    sort: str = "urgency"
    page_size: int = 25
    # A search looks in every status; this keeps it inside `view` (the user asked for the tab).
    in_view: bool = False


@dataclass
class QueuePage:
    tickets: list[Ticket]
    next_cursor: list[Any] | None
    counts: dict[str, int]
    now: datetime = field(default_factory=timezone.now)
    # Ticket pk -> the fields a search matched (search.SEARCH_FIELDS keys); empty without one.
    matched: dict[int, list[str]] = field(default_factory=dict)


def open_q() -> Q:
    # Sorted, so the SQL text is the same in every process.
    return Q(status__in=sorted(OPEN_STATUS_VALUES))


def _overdue_q(now: datetime) -> Q:
    # The urgency sort's key: past its due time, paused or not (the index walks due_at alone).
    return open_q() & Q(due_at__lt=now)


def _overdue_running_q(now: datetime) -> Q:
    # The overdue view and count: a ticket whose SLA clock is paused (waiting on someone else)
    # is not overdue.
    return _overdue_q(now) & Q(sla_paused_at__isnull=True)


# Sort key name -> its expression. k_due and k_priority are the expressions of the indexes
# ticket_open_due_key, ticket_due_key and ticket_priority_key, so ordering by them walks an index.
_SORT_KEYS: dict[str, Callable[[datetime], Any]] = {
    "k_overdue": lambda now: Case(When(_overdue_q(now), then=Value(1)), default=Value(0)),
    "k_due": lambda now: due_sort_key(),
    "k_priority": lambda now: priority_sort_key(),
    "k_created": lambda now: F("created_at"),
    "k_updated": lambda now: F("updated_at"),
}


def _queue_annotate(
    queryset: QuerySet[Ticket], *, keys: tuple[tuple[str, bool], ...], now: datetime
) -> QuerySet[Ticket]:
    """The queryset with the sort keys of `keys` (only those: each one costs query building)."""
    return queryset.annotate(**{name: _SORT_KEYS[name](now) for name, _ in keys if name != "id"})


def _keyset_after(keys: tuple[tuple[str, bool], ...], values: list[Any]) -> Q:
    """Rows strictly after `values` in the order of `keys` (lexicographic, mixed directions)."""
    condition = Q(pk__in=[])
    for i, (name, descending) in enumerate(keys):
        step = Q(**{f"{name}__{'lt' if descending else 'gt'}": values[i]})
        for j in range(i):
            step &= Q(**{keys[j][0]: values[j]})
        condition |= step
    # The same rows again; this bound on the first key lets the database start the index scan at
    # the cursor instead of reading every earlier row.
    first, descending = keys[0]
    return Q(**{f"{first}__{'lte' if descending else 'gte'}": values[0]}) & condition


def queue_view_effective(filters: QueueFilters) -> str:
    """The quick view a page really shows, which is the one to highlight.

    A search looks in every status unless the user asked to stay in the view's tab; a chosen
    status stands for itself in the Open view (closed ones included), which is then "all".
    """
    if filters.q.strip() and not filters.in_view:
        return "all"
    if filters.view == "open" and filters.status:
        return "all"
    return filters.view


def _queue_filter(
    queryset: QuerySet[Ticket], *, user: User, filters: QueueFilters, now: datetime
) -> QuerySet[Ticket]:
    view = queue_view_effective(filters)
    # A chosen status replaces the "open" of the Mine and Unassigned views.
    openness = Q() if filters.status else open_q()
    if view == "open":
        queryset = queryset.filter(open_q())
    elif view == "mine":
        queryset = queryset.filter(openness, assignee=user)
    elif view == "unassigned":
        queryset = queryset.filter(openness, assignee__isnull=True)
    elif view == "overdue":
        queryset = queryset.filter(_overdue_running_q(now))
    elif view == "awaiting_verification":
        queryset = queryset.filter(status=Ticket.Status.AWAITING_VERIFICATION)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.kind:
        queryset = queryset.filter(kind=filters.kind)
    if filters.assignee:
        queryset = queryset.filter(assignee__username=filters.assignee)
    return queryset


def _keyset_ordered(
    queryset: QuerySet[Ticket],
    *,
    keys: tuple[tuple[str, bool], ...],
    after: list[Any] | None,
    now: datetime,
) -> QuerySet[Ticket]:
    """The rows after `after` in the order of `keys`."""
    queryset = _queue_annotate(queryset, keys=keys, now=now)
    if after is not None:
        queryset = queryset.filter(_keyset_after(keys, after))
    return queryset.order_by(*[f"-{name}" if desc else name for name, desc in keys])


def _queue_page_ids(
    matching: QuerySet[Ticket],
    *,
    filters: QueueFilters,
    cursor: list[Any] | None,
    limit: int,
    now: datetime,
) -> QuerySet[Ticket, PkRow]:
    """The ids of one page, read from indexes before anything is joined.

    A search, or the urgency sort of open and closed tickets together, needs more than one
    index. Where a database allows a LIMIT in each part of a UNION (PostgreSQL), it is the UNION
    of one page of each part: the first rows of the whole are among the first rows of its parts.
    Parts that follow one another in the order (overdue, then the others) are read in turn.

    Longer than most: the parts of a search (rare, common, unknown to the planner) are chosen
    together, since each changes what the others must read.
    """
    keys, after = QUEUE_SORTS[filters.sort], cursor
    if filters.sort == "urgency" and (queue_view_effective(filters) != "all" or filters.status):
        keys, after = _DUE_KEYS, cursor[1:] if cursor is not None else None

    def ids(ordered: QuerySet[Ticket]) -> QuerySet[Ticket, PkRow]:
        return ordered.values("pk")[:limit]

    def in_order(part_pages: list[QuerySet[Ticket, PkRow]]) -> QuerySet[Ticket, PkRow]:
        # Pages in the order of `parts` (the overdue ones first), read one after the other
        # under one LIMIT, which stops once the first have filled it: the others' walk is not
        # made. For a common word, where it does: "DNS records" 7.1 to 5.5 ms of execution at
        # 100,000 tickets, "customer" 3.3 to 2.1 at 1,000,000; the same planning. Not for the
        # walked fields: a part of one domain's name often fills none, and the nesting costs
        # 1,000 Python calls.
        first, *rest = part_pages
        return first.union(*rest, all=True)[:limit] if rest else first

    text = filters.q.strip()
    if not connection.features.supports_slicing_ordering_in_compound:  # SQLite: one query
        ordered = _keyset_ordered(matching, keys=keys, after=after, now=now)
        if text:
            conditions = ticket_search_conditions(text, internal=True)
            ordered = ordered.filter(reduce(operator.or_, conditions))
        return ids(ordered)
    parts = _queue_page_parts(matching, keys=keys, after=after, now=now)
    if not text:
        return in_order([ids(part) for part, _keys in parts])
    rare = ticket_search_fields_rare(text)
    own, *domains = ticket_search_conditions(
        text, internal=True, document=False, customer=False, walked=rare.own is False
    )
    customers = ticket_search_customer_matches(text)
    # What few tickets match is read once from its indexes and sorted at once in the page's
    # order: rare words, a customer's tickets, a part of an address few hold. What many may
    # match is read in each part's order, which stops after a page of it: in one walk a part
    # for all of them, each row tested against each (a domain by a hashed list of ids, a
    # customer by its own row: ticket_search_customer_matches_per_row), not one walk each.
    # Without statistics to tell, the own fields have their own part each, where the planner
    # chooses, and the customers are sorted at once.
    sorted_once = [own] if rare.own else []
    sorted_once += [] if rare.customers is False else [customers]
    walked = [own] if rare.own is False else []
    walked += [ticket_search_customer_matches_per_row(text)] if rare.customers is False else []
    walked += domains
    pages = [ids(part.filter(reduce(operator.or_, walked))) for part, _keys in parts if walked]
    if rare.own is None:
        pages += [ids(part.filter(own)) for part, _keys in parts]
    whole = _keyset_ordered(matching, keys=keys, after=after, now=now)
    pages += [ids(whole.filter(condition)) for condition in sorted_once]
    indexed = ticket_search_document_matches(text)
    each_row = ticket_search_document_matches(text, indexed=False)
    if indexed is not None and each_row is not None:
        if not ticket_search_words_common(text):
            pages.append(ids(whole.filter(indexed)))
        elif len(text.split()) > 1:
            heads = [
                page
                for part, part_keys in parts
                for page in _head_first(part, indexed, each_row, keys=part_keys, limit=limit)
            ]
            pages.append(in_order(heads))
        else:  # one word: the planner estimates it well, and walks the order for a page
            pages.append(in_order([ids(part.filter(indexed)) for part, _keys in parts]))
    first, *rest = pages
    return first.union(*rest, all=True)


# A word in many tickets is found among the first rows of a page's order: this many rows a
# page are read there before the index of the words is asked.
HEAD_ROWS_PER_PAGE_ROW = 80


def _head_first(
    ordered: QuerySet[Ticket],
    condition: Q,
    each_row: Q,
    *,
    keys: tuple[tuple[str, bool], ...],
    limit: int,
) -> list[QuerySet[Ticket, PkRow]]:
    """Two pages of ids whose first `limit`, read in turn, are `ordered`'s first matches.

    The first `limit` rows of `ordered` that `condition` matches, however many.

    `each_row` is the same test, made on each row of the head and hidden from the planner.

    PostgreSQL estimates a text of several words as if they were independent, so words that
    come together ("DNS records", in one ticket in forty) look a hundred times rarer than
    they are: it would read every match from the GIN index and sort them. So the rows at the
    head of the order are read first (a bounded walk of the order's index); only when they
    hold less than a page are the matches after them read, from the GIN index, by the planner's
    own choice. The caller reads the two as one UNION ALL under a LIMIT, which stops before the
    second once the first has filled the page.
    """
    rows = limit * HEAD_ROWS_PER_PAGE_ROW
    (first, descending), *_ = keys
    # The head ends at the first key of its last row (the order's last when it holds fewer).
    # The rows up to that key, ties included, are read in one walk of the index, which stops
    # there (an index bound) or at a page; those after it by the planner's choice. Testing the
    # head's ids instead (`pk IN head`, and `NOT IN` past it) fetched each of its rows twice:
    # "DNS records" 3.3 to 1.6 ms a part at 1,000,000 tickets.
    end = Coalesce(
        Subquery(ordered.values(first)[rows - 1 : rows]),
        Subquery(ordered.reverse().values(first)[:1]),
    )
    near = ordered.filter(each_row, **{f"{first}__{'gte' if descending else 'lte'}": end})
    far = ordered.filter(condition, **{f"{first}__{'lt' if descending else 'gt'}": end})
    return [near.values("pk")[:limit], far.values("pk")[:limit]]


def _queue_page_parts(
    matching: QuerySet[Ticket],
    *,
    keys: tuple[tuple[str, bool], ...],
    after: list[Any] | None,
    now: datetime,
) -> list[tuple[QuerySet[Ticket], tuple[tuple[str, bool], ...]]]:
    """The ordered parts whose first rows hold a page's rows, each walking an index of its own.

    Each with the keys of its order.

    Urgency over open and closed tickets: the overdue ones by due time, then the others by due
    time (no index holds "overdue" itself: it depends on the time). Any other order: one part.
    """
    if keys[0][0] != "k_overdue":
        return [(_keyset_ordered(matching, keys=keys, after=after, now=now), keys)]
    due_after = after[1:] if after is not None else None
    others = matching.exclude(_overdue_q(now))
    if after is not None and after[0] == 0:  # past the overdue ones
        return [(_keyset_ordered(others, keys=_DUE_KEYS, after=due_after, now=now), _DUE_KEYS)]
    overdue = matching.filter(_overdue_q(now))
    return [
        (_keyset_ordered(overdue, keys=_DUE_KEYS, after=due_after, now=now), _DUE_KEYS),
        (_keyset_ordered(others, keys=_DUE_KEYS, after=None, now=now), _DUE_KEYS),
    ]


def _queue_counts(*, user: User, now: datetime) -> dict[str, int]:
    """The five view counts, in one aggregate."""
    # Every view counted is a subset of the open tickets (partial index ticket_open_counts).
    return Ticket.objects.filter(open_q()).aggregate(
        open=Count("id"),
        mine=Count("id", filter=Q(assignee=user)),
        unassigned=Count("id", filter=Q(assignee__isnull=True)),
        overdue=Count("id", filter=Q(due_at__lt=now, sla_paused_at__isnull=True)),
        awaiting_verification=Count("id", filter=Q(status=Ticket.Status.AWAITING_VERIFICATION)),
    )


def staff_queue_counts(*, user: User, now: datetime | None = None) -> dict[str, int]:
    """How many tickets each quick view holds: one aggregate, cached per user for a few seconds.

    The aggregate reads every open ticket (20 ms and more with 30,000 open), on every queue page;
    counts up to STAFF_QUEUE_COUNTS_CACHE_SECONDS (default 10) old are good enough there. Without
    the cache (Redis down) they are counted on each page.
    """
    now = now or timezone.now()
    key = f"staff-queue-counts:{user.pk}"
    try:
        counts: dict[str, int] | None = cache.get(key)
    except CACHE_DOWN_ERRORS as exc:
        logger.warning("queue counts cache unreachable: %s", exc)
        return _queue_counts(user=user, now=now)
    if counts is None:
        counts = _queue_counts(user=user, now=now)
        timeout = settings.STAFF_QUEUE_COUNTS_CACHE_SECONDS
        with contextlib.suppress(*CACHE_DOWN_ERRORS):
            cache.set(key, counts, timeout=timeout)
    return counts


def _compiled(subquery: QuerySet[Ticket, PkRow]) -> RawSQL:
    """`subquery` as the SQL it compiles to, for a query to hold it as it is.

    A queryset put inside another is cloned and resolved again there, each of its parts and
    their own subqueries; the page's ids compiled once instead took 11,900 of 106,500 Python
    calls off a "DNS records" search page (100,000 tickets), 7,200 of 96,400 off "customer".
    `Query.sql_with_params()` is Django's internal API: what compiling it for the holder would
    give, but its aliases (nothing in it refers to the holder).
    """
    sql, params = subquery.query.sql_with_params()
    return RawSQL(sql, params)  # noqa: S611 - SQL compiled by the ORM, values as parameters


def staff_queue(*, user: User, filters: QueueFilters, cursor: list[Any] | None = None) -> QueuePage:
    """One page of the staff queue by keyset (no OFFSET), in one query whatever the page size.

    Plus one query for the view counts when they are not cached. The page's ids come from a
    subquery that walks an index of the sort key with the filters and stops after one page;
    only those rows are joined to their customer, domain and assignee.
    """
    if not is_staff_member(user):
        return QueuePage(tickets=[], next_cursor=None, counts={})
    now = timezone.now()
    keys = QUEUE_SORTS[filters.sort]
    if cursor is not None and len(cursor) != len(keys):
        cursor = None
    limit = filters.page_size + 1
    matching = _queue_filter(Ticket.objects.all(), user=user, filters=filters, now=now)
    page_ids = _queue_page_ids(matching, filters=filters, cursor=cursor, limit=limit, now=now)
    ordering = [f"-{name}" if descending else name for name, descending in keys]
    text = filters.q.strip()
    rows_query = _queue_annotate(
        Ticket.objects.select_related("customer", "domain", "assignee").only(*_QUEUE_FIELDS),
        keys=keys,
        now=now,
    )
    if text:
        rows_query = ticket_search_page_annotate(rows_query, text)
    rows = list(rows_query.filter(pk__in=_compiled(page_ids)).order_by(*ordering)[:limit])
    next_cursor = None
    if len(rows) > filters.page_size:
        rows = rows[: filters.page_size]
        last = rows[-1]
        next_cursor = [getattr(last, name) for name, _descending in keys]
    return QueuePage(
        tickets=rows,
        next_cursor=next_cursor,
        counts=staff_queue_counts(user=user, now=now),
        now=now,
        matched={t.pk: ticket_search_matched(t, text) for t in rows} if text else {},
    )


def staff_members() -> list[StaffMember]:
    """The staff members a ticket can be assigned to (`staff_member_logins`), by username."""
    return staff_member_list()


def staff_member_get(*, username: str) -> User | None:
    if "\x00" in username:  # no login has one, and PostgreSQL refuses to look one up
        return None
    # Whole, with its (absent) customer: the assigning service checks the login again.
    return staff_member_logins().filter(username=username).select_related("customer").first()
