"""Every read of tickets. Customer scoping lives here and nowhere else."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
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
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from accounts.models import Customer
from accounts.selectors import customer_for_user, is_staff_member
from tickets.models import (
    OPEN_STATUSES,
    ActionLog,
    Disclosure,
    Message,
    Notification,
    Ticket,
)


def ticket_list(*, user, filters: Mapping[str, Any] | None = None) -> QuerySet[Ticket]:
    """Tickets the user may see: all for staff, their own for a customer, none otherwise."""
    base = Ticket.objects.select_related("customer", "domain", "assignee")
    if filters:
        base = ticket_filters_apply(base, filters=filters)
    if is_staff_member(user):
        return base
    customer = customer_for_user(user)
    if customer is None:
        return base.none()
    return base.filter(customer=customer)


def ticket_get(*, user, reference: str) -> Ticket | None:
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
        queryset = queryset.filter(
            Q(reference__iexact=text)
            | Q(subject__icontains=text)
            | Q(domain__name__icontains=text)
            | Q(requested_domain__icontains=text)
            | Q(contact_email__iexact=text)
        )
    return queryset


def ticket_events_visible(*, user, ticket: Ticket) -> QuerySet[ActionLog]:
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
PRIORITY_RANK = {"low": 1, "normal": 2, "high": 3, "urgent": 4}
# Tickets without a due time sort after every real one.
_NO_DUE = datetime(9999, 12, 31, tzinfo=UTC)


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
    return Q(status__in=[str(s) for s in OPEN_STATUSES])


def _overdue_q(now: datetime) -> Q:
    return _open_q() & Q(due_at__lt=now)


def _queue_annotate(queryset: QuerySet[Ticket], now: datetime) -> QuerySet[Ticket]:
    return queryset.annotate(
        k_overdue=Case(When(_overdue_q(now), then=Value(1)), default=Value(0)),
        k_due=Coalesce("due_at", Value(_NO_DUE)),
        k_created=F("created_at"),
        k_updated=F("updated_at"),
        k_priority=Case(
            *[When(priority=name, then=Value(rank)) for name, rank in PRIORITY_RANK.items()],
            default=Value(0),
        ),
    )


def _keyset_after(keys: tuple[tuple[str, bool], ...], values: list[Any]) -> Q:
    """Rows strictly after `values` in the order of `keys` (lexicographic, mixed directions)."""
    condition = Q(pk__in=[])
    for i, (name, descending) in enumerate(keys):
        step = Q(**{f"{name}__{'lt' if descending else 'gt'}": values[i]})
        for j in range(i):
            step &= Q(**{keys[j][0]: values[j]})
        condition |= step
    return condition


def _queue_filter(queryset: QuerySet[Ticket], *, user, filters: QueueFilters, now: datetime):
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
    text = filters.q.strip()
    if text:
        queryset = queryset.filter(
            Q(reference__iexact=text)
            | Q(customer__number__iexact=text)
            | Q(customer__email__iexact=text)
            | Q(contact_email__iexact=text)
            | Q(domain__name__icontains=text.lower())
            | Q(requested_domain__icontains=text)
            | Q(subject__icontains=text)
        )
    return queryset


def staff_queue_counts(*, user, now: datetime | None = None) -> dict[str, int]:
    """How many tickets each quick view holds, in one aggregate query."""
    now = now or timezone.now()
    return Ticket.objects.aggregate(
        open=Count("id", filter=_open_q()),
        mine=Count("id", filter=_open_q() & Q(assignee=user)),
        unassigned=Count("id", filter=_open_q() & Q(assignee__isnull=True)),
        overdue=Count("id", filter=_overdue_q(now)),
        awaiting_verification=Count("id", filter=Q(status=Ticket.Status.AWAITING_VERIFICATION)),
    )


def staff_queue(*, user, filters: QueueFilters, cursor: list[Any] | None = None) -> QueuePage:
    """One page of the staff queue by keyset (no OFFSET): two queries whatever the page size."""
    if not is_staff_member(user):
        return QueuePage(tickets=[], next_cursor=None, counts={})
    now = timezone.now()
    keys = QUEUE_SORTS[filters.sort]
    queryset = _queue_annotate(Ticket.objects.select_related("customer", "domain", "assignee"), now)
    queryset = _queue_filter(queryset, user=user, filters=filters, now=now)
    if cursor is not None and len(cursor) == len(keys):
        queryset = queryset.filter(_keyset_after(keys, cursor))
    ordering = [f"-{name}" if descending else name for name, descending in keys]
    rows = list(queryset.order_by(*ordering)[: filters.page_size + 1])
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


def staff_members() -> QuerySet:
    """Active staff logins, for assigning tickets."""
    return (
        get_user_model()
        .objects.filter(is_staff=True, is_active=True)
        .order_by("username")
        .only("id", "username")
    )


def staff_member_get(*, username: str):
    return staff_members().filter(username=username).first()


def staff_ticket_get(*, user, reference: str) -> Ticket | None:
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


def ticket_pk_version_get(*, user, reference: str) -> tuple[int, int] | None:
    """The internal id and current version of a ticket, for staff polling presence."""
    if not is_staff_member(user):
        return None
    return Ticket.objects.filter(reference=reference).values_list("pk", "version").first()


def customer_staff_get(*, user, number: str) -> Customer | None:
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


def _day_series(rows: dict, days: list) -> list[tuple[Any, int]]:
    return [(day, rows.get(day, 0)) for day in days]


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

    created = dict(
        Ticket.objects.filter(created_at__gte=start_of_window)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("day", "n")
    )
    resolved = dict(
        Ticket.objects.filter(resolved_at__gte=start_of_window)
        .annotate(day=TruncDate("resolved_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("day", "n")
    )

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
