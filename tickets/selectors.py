"""Every read of tickets. Customer scoping lives here and nowhere else."""

import contextlib
import logging
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import reduce
from typing import Any, TypedDict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, User
from django.core.cache import cache
from django.db import connection
from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Lower, TruncDate
from django.utils import timezone

from accounts.models import Customer
from accounts.selectors import customer_for_user, is_staff_member
from domains.models import Domain
from helpdesk.exceptions import CACHE_DOWN_ERRORS
from tickets.models import (
    OPEN_STATUS_VALUES,
    OPEN_STATUSES,
    ActionLog,
    Disclosure,
    Message,
    Notification,
    Ticket,
    due_sort_key,
    priority_sort_key,
)

logger = logging.getLogger(__name__)


def ticket_list(
    *, user: User | AnonymousUser, filters: Mapping[str, Any] | None = None
) -> QuerySet[Ticket]:
    """Tickets the user may see: all for staff, their own for a customer, none otherwise."""
    base: QuerySet[Ticket] = Ticket.objects.select_related("customer", "domain", "assignee")
    if filters:
        base = ticket_filters_apply(base, filters=filters)
    if is_staff_member(user):
        return base
    customer = customer_for_user(user)
    if customer is None:
        return base.none()
    return base.filter(customer=customer)


def ticket_get(*, user: User | AnonymousUser, reference: str) -> Ticket | None:
    """One ticket by reference if the user may see it (None otherwise: callers answer 404)."""
    staff = is_staff_member(user)
    messages = Message.objects.all() if staff else Message.objects.filter(internal=False)
    return (
        ticket_list(user=user)
        .prefetch_related(
            "changes",
            Prefetch("messages", queryset=messages.select_related("author_user")),
        )
        .filter(reference=reference)
        .first()
    )


def ticket_events(*, ticket: Ticket) -> QuerySet[ActionLog]:
    return ActionLog.objects.filter(ticket=ticket).order_by("sequence")


# --- api filters ---

# What a customer may read of its own ticket's audit trail (action and time only).
CUSTOMER_VISIBLE_EVENTS = frozenset(
    {
        "ticket.created",
        "ticket.status_changed",
        "ticket.message_added",
        "verification.sent",
        "verification.confirmed",
        "customer.details_changed",
        "customer.mailing_preferences_changed",
        "resend.sent",
    }
)


def ticket_filters_apply(
    queryset: QuerySet[Ticket], *, filters: Mapping[str, Any]
) -> QuerySet[Ticket]:
    """Narrow a ticket list by the allow-listed filters: status, kind, assignee, q.

    Only these four names are read, and only their values reach the query, never a client key.
    """
    if filters.get("status"):
        queryset = queryset.filter(status=filters["status"])
    if filters.get("kind"):
        queryset = queryset.filter(kind=filters["kind"])
    if filters.get("assignee"):
        queryset = queryset.filter(assignee__username=filters["assignee"])
    text = (filters.get("q") or "").strip()
    if text:
        queryset = queryset.filter(pk__in=_ticket_search_ids(text))
    return queryset


class _PkRow(TypedDict):
    pk: int


def _ticket_search_ids(text: str) -> QuerySet[Ticket, _PkRow]:
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


def ticket_events_visible(*, user: User | AnonymousUser, ticket: Ticket) -> QuerySet[ActionLog]:
    """A ticket's audit rows as the user may read them: all for staff, a safe subset otherwise."""
    events = ticket_events(ticket=ticket)
    if is_staff_member(user):
        return events
    return events.filter(action__in=CUSTOMER_VISIBLE_EVENTS).only("created_at", "action")


# --- staff queue ---

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
    "customer__number",
    "customer__full_name",
    "domain__name",
    "assignee__username",
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


@dataclass
class QueuePage:
    tickets: list[Ticket]
    next_cursor: list[Any] | None
    counts: dict[str, int]
    now: datetime = field(default_factory=timezone.now)


def _open_q() -> Q:
    # Sorted, so the SQL text is the same in every process.
    return Q(status__in=sorted(OPEN_STATUS_VALUES))


def _overdue_q(now: datetime) -> Q:
    return _open_q() & Q(due_at__lt=now)


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


def _queue_search_conditions(text: str) -> list[Q]:
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


def _queue_filter(
    queryset: QuerySet[Ticket], *, user: User, filters: QueueFilters, now: datetime
) -> QuerySet[Ticket]:
    view = filters.view
    if view == "open" and filters.status:
        view = "all"  # a chosen status speaks for itself, closed ones included
    if view == "open":
        queryset = queryset.filter(_open_q())
    elif view == "mine":
        queryset = queryset.filter(_open_q(), assignee=user)
    elif view == "unassigned":
        queryset = queryset.filter(_open_q(), assignee__isnull=True)
    elif view == "overdue":
        queryset = queryset.filter(_overdue_q(now))
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
) -> QuerySet[Ticket, _PkRow]:
    """The ids of one page, read from indexes before anything is joined.

    A search, or the urgency sort of open and closed tickets together, needs more than one
    index. Where a database allows a LIMIT in each part of a UNION (PostgreSQL), it is the UNION
    of one page of each part: the first rows of the whole are among the first rows of its parts.
    """
    keys, after = QUEUE_SORTS[filters.sort], cursor
    if filters.sort == "urgency" and (filters.view != "all" or filters.status):
        keys, after = _DUE_KEYS, cursor[1:] if cursor is not None else None

    def ids(ordered: QuerySet[Ticket]) -> QuerySet[Ticket, _PkRow]:
        return ordered.values("pk")[:limit]

    in_parts = connection.features.supports_slicing_ordering_in_compound  # not SQLite
    text = filters.q.strip()
    if text:
        ordered = _keyset_ordered(matching, keys=keys, after=after, now=now)
        conditions = _queue_search_conditions(text)
        if not in_parts:
            return ids(ordered.filter(reduce(operator.or_, conditions)))
        first, *rest = [ids(ordered.filter(condition)) for condition in conditions]
        return first.union(*rest, all=True)
    if keys[0][0] != "k_overdue" or not in_parts:
        return ids(_keyset_ordered(matching, keys=keys, after=after, now=now))
    # Urgency over open and closed tickets: the overdue ones by due time, then the others by due
    # time, each part from an index of its own.
    due_after = cursor[1:] if cursor is not None else None
    others = matching.exclude(_overdue_q(now))
    if cursor is not None and cursor[0] == 0:  # past the overdue ones
        return ids(_keyset_ordered(others, keys=_DUE_KEYS, after=due_after, now=now))
    overdue = matching.filter(_overdue_q(now))
    return ids(_keyset_ordered(overdue, keys=_DUE_KEYS, after=due_after, now=now)).union(
        ids(_keyset_ordered(others, keys=_DUE_KEYS, after=None, now=now)), all=True
    )


def _queue_counts(*, user: User, now: datetime) -> dict[str, int]:
    """The five view counts, in one aggregate."""
    # Every view counted is a subset of the open tickets (partial index ticket_open_counts).
    return Ticket.objects.filter(_open_q()).aggregate(
        open=Count("id"),
        mine=Count("id", filter=Q(assignee=user)),
        unassigned=Count("id", filter=Q(assignee__isnull=True)),
        overdue=Count("id", filter=Q(due_at__lt=now)),
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
    rows = list(
        _queue_annotate(
            Ticket.objects.select_related("customer", "domain", "assignee").only(*_QUEUE_FIELDS),
            keys=keys,
            now=now,
        )
        .filter(pk__in=page_ids)
        .order_by(*ordering)[:limit]
    )
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
    )


def staff_members() -> QuerySet[User]:
    """Active staff logins, for assigning tickets."""
    return (
        get_user_model()
        .objects.filter(is_staff=True, is_active=True)
        .order_by("username")
        .only("id", "username")
    )


def staff_member_get(*, username: str) -> User | None:
    return staff_members().filter(username=username).first()


def staff_ticket_get(*, user: User | AnonymousUser, reference: str) -> Ticket | None:
    """A ticket with everything the staff ticket page shows, or None."""
    if not is_staff_member(user):
        return None
    return (
        Ticket.objects.select_related("customer", "domain", "assignee")
        .prefetch_related(
            "changes",
            Prefetch("messages", queryset=Message.objects.select_related("author_user")),
            Prefetch("notifications", queryset=Notification.objects.order_by("created_at", "id")),
        )
        .filter(reference=reference)
        .first()
    )


def ticket_pk_version_get(*, user: User | AnonymousUser, reference: str) -> tuple[int, int] | None:
    """The internal id and current version of a ticket, for staff polling presence."""
    if not is_staff_member(user):
        return None
    return Ticket.objects.filter(reference=reference).values_list("pk", "version").first()


def customer_staff_get(*, user: User | AnonymousUser, number: str) -> Customer | None:
    if not is_staff_member(user):
        return None
    return Customer.objects.filter(number=number).first()


def customer_tickets(*, customer: Customer) -> QuerySet[Ticket]:
    return Ticket.objects.filter(customer=customer).select_related("domain", "assignee")


def customer_disclosures(*, customer: Customer) -> QuerySet[Disclosure]:
    return Disclosure.objects.filter(customer=customer).select_related("recorded_by")


def customer_audit_rows(*, customer: Customer) -> QuerySet[ActionLog]:
    """Audit rows about a customer: written for them, or for one of their tickets."""
    return (
        ActionLog.objects.filter(Q(customer=customer) | Q(ticket__customer=customer))
        .select_related("ticket", "customer")
        .order_by("sequence")
    )


def customer_export_data(*, customer: Customer) -> dict[str, Any]:
    """Everything held on a customer, as plain JSON-ready data (the card token is left out)."""
    fields = [
        f.name for f in Customer._meta.concrete_fields if f.name not in {"id", "user", "card_token"}
    ]
    tickets = (
        customer_tickets(customer=customer)
        .prefetch_related("changes", "messages", "notifications")
        .order_by("created_at", "id")
    )
    return {
        "customer": {name: getattr(customer, name) for name in fields}
        | {"login": customer.user.get_username() if customer.user_id else None},
        "domains": list(
            customer.domains.order_by("name").values(
                "name", "registrant_email", "registrant_email_status", "synced_at", "created_at"
            )
        ),
        "tickets": [
            {
                "reference": t.reference,
                "kind": t.kind,
                "status": t.status,
                "subject": t.subject,
                "domain": t.domain.name if t.domain else None,
                "contact_email": t.contact_email,
                "created_at": t.created_at,
                "resolved_at": t.resolved_at,
                "closed_at": t.closed_at,
                "changes": [
                    {
                        "field": c.field,
                        "old": c.old_value,
                        "new": c.new_value,
                        "applied_at": c.applied_at,
                    }
                    for c in t.changes.all()
                ],
                "messages": [
                    {
                        "author": m.author,
                        "internal": m.internal,
                        "channel": m.channel,
                        "body": m.body,
                        "created_at": m.created_at,
                    }
                    for m in t.messages.all()
                ],
                "notifications": [
                    {
                        "template": n.template,
                        "recipient": n.recipient,
                        "status": n.status,
                        "created_at": n.created_at,
                        "sent_at": n.sent_at,
                    }
                    for n in t.notifications.all()
                ],
            }
            for t in tickets
        ],
        "disclosures": list(
            customer_disclosures(customer=customer).values(
                "disclosed_to",
                "information",
                "legal_basis",
                "reference",
                "disclosed_at",
                "recorded_by__username",
            )
        ),
        "audit": [
            {
                "sequence": row.sequence,
                "created_at": row.created_at,
                "actor": row.actor,
                "action": row.action,
                "ticket": row.ticket.reference if row.ticket else None,
                "details": row.details,
            }
            for row in customer_audit_rows(customer=customer)
        ],
    }


AUDIT_PAGE_SIZE = 50


def audit_log_page(
    *, ticket: str = "", customer: str = "", action: str = "", before: int | None = None
) -> tuple[list[ActionLog], int | None]:
    """Newest audit rows first, by keyset on the sequence; returns the rows and the next cursor."""
    rows = ActionLog.objects.select_related("ticket", "customer").order_by("-sequence")
    if ticket:
        rows = rows.filter(ticket__reference=ticket)
    if customer:
        rows = rows.filter(customer__number=customer)
    if action:
        rows = rows.filter(action=action)
    if before is not None:
        rows = rows.filter(sequence__lt=before)
    page = list(rows[: AUDIT_PAGE_SIZE + 1])
    if len(page) > AUDIT_PAGE_SIZE:
        return page[:AUDIT_PAGE_SIZE], page[AUDIT_PAGE_SIZE - 1].sequence
    return page, None


def audit_actions() -> list[str]:
    return list(ActionLog.objects.order_by("action").values_list("action", flat=True).distinct())


# --- staff dashboard ---

DASHBOARD_DAYS = 30


def _day_series(rows: dict[Any, int], days: list[date]) -> list[tuple[Any, int]]:
    return [(day, rows.get(day, 0)) for day in days]


def _tickets_per_day(field: str, *, since: datetime) -> dict[Any, int]:
    """How many tickets have `field` (a datetime) on each day since `since`."""
    return dict(
        Ticket.objects.filter(**{f"{field}__gte": since})
        .annotate(day=TruncDate(field))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("day", "n")
    )


def dashboard_figures(*, now: datetime | None = None) -> dict[str, Any]:
    """Everything the dashboard draws, in a fixed number of aggregate queries."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    days = [today - timedelta(days=n) for n in range(DASHBOARD_DAYS - 1, -1, -1)]
    since = now - timedelta(days=DASHBOARD_DAYS)
    start_of_window = timezone.make_aware(datetime.combine(days[0], datetime.min.time()))

    by_kind: dict[str, int] = dict.fromkeys(Ticket.Kind.values, 0)
    by_status: dict[str, int] = {str(s): 0 for s in Ticket.Status if s in OPEN_STATUSES}
    open_rows = (
        Ticket.objects.filter(_open_q()).values("kind", "status").annotate(n=Count("id")).order_by()
    )
    for row in open_rows:
        by_kind[row["kind"]] = by_kind.get(row["kind"], 0) + row["n"]
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]

    created = _tickets_per_day("created_at", since=start_of_window)
    resolved = _tickets_per_day("resolved_at", since=start_of_window)

    durations = Ticket.objects.filter(resolved_at__gte=since, resolved_at__isnull=False).annotate(
        took=ExpressionWrapper(F("resolved_at") - F("created_at"), DurationField())
    )
    resolved_count = durations.count()
    median = None
    if resolved_count:
        middle = list(
            durations.order_by("took").values_list("took", flat=True)[
                (resolved_count - 1) // 2 : resolved_count // 2 + 1
            ]
        )
        median = sum(middle, timedelta()) / len(middle)

    problem_statuses = [Notification.Status.FAILED, Notification.Status.BOUNCED]
    problems = Notification.objects.filter(status__in=problem_statuses, updated_at__gte=since)
    problem_counts = dict.fromkeys(problem_statuses, 0) | dict(
        problems.values("status").annotate(n=Count("id")).order_by().values_list("status", "n")
    )
    recent_problems = list(problems.select_related("ticket").order_by("-updated_at", "-id")[:10])
    return {
        "open_by_kind": [(Ticket.Kind(k).label, n) for k, n in by_kind.items()],
        "open_by_status": [(Ticket.Status(s).label, n) for s, n in by_status.items()],
        "created_per_day": _day_series(created, days),
        "resolved_per_day": _day_series(resolved, days),
        "median_time_to_resolve": median,
        "resolved_count": resolved_count,
        "notification_problems": [
            (Notification.Status(s).label, n) for s, n in problem_counts.items()
        ],
        "recent_notification_problems": recent_problems,
        "days": DASHBOARD_DAYS,
    }
