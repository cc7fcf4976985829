"""The dashboard's daily and monthly figures: kept up to date as tickets change, rebuilt on demand.

One rule, `ticket_stat_figures`, says what a ticket as it stands adds to which daily row. The
services take it before and after a change and add the difference to the rows
(`ticket_stats_update`: one INSERT … ON CONFLICT DO UPDATE for the daily rows, one for their
months', atomic on PostgreSQL and SQLite); `ticket_stats_rebuild` sums it over the tickets
themselves, then sums the months it touched from their daily rows. So the daily rows always
equal a rebuild, and each monthly row its month's daily rows summed.

Ordering: the services call `ticket_stats_update` after their transaction's first audit row. That
row's append locks the audit chain head until the commit, so writers of these rows never wait on
each other in two orders (no deadlock), and the rebuild, which takes the same lock first, never
interleaves with them. Each writer also takes the rows in one order, the daily rows sorted, then
the monthly rows sorted, so that writers without that lock (the bench seeder) never deadlock
either.
"""

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Protocol

from django.db import connection, transaction
from django.db.models import Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from tickets.audit import audit_chain_lock
from tickets.models import STAT_FIELDS, Ticket, TicketDailyStat, TicketMonthlyStat, TicketStatCounts
from tickets.months import next_month

# (day, kind, agent user id or 0) -> {field in STAT_FIELDS: amount}; a month's first day for
# the monthly rows.
StatKey = tuple[date, str, int]
StatFigures = dict[StatKey, dict[str, int]]


class StatSource(Protocol):
    """What the rule reads of a ticket: a Ticket, or a row of the same names from values_list."""

    @property
    def kind(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def first_response_at(self) -> datetime | None: ...
    @property
    def first_response_by_id(self) -> int | None: ...
    @property
    def resolved_at(self) -> datetime | None: ...
    @property
    def assignee_id(self) -> int | None: ...
    @property
    def due_at(self) -> datetime | None: ...
    @property
    def closed_at(self) -> datetime | None: ...


SOURCE_FIELDS = (
    "kind",
    "created_at",
    "first_response_at",
    "first_response_by_id",
    "resolved_at",
    "assignee_id",
    "due_at",
    "closed_at",
)


def stat_day(moment: datetime) -> date:
    """The day an event counts on: the help desk's own time zone, whatever the request's."""
    return timezone.localtime(moment, timezone.get_default_timezone()).date()


def _seconds(start: datetime, end: datetime) -> int:
    return max(int((end - start).total_seconds()), 0)


def ticket_stat_figures(ticket: StatSource) -> StatFigures:
    """What `ticket`, as it stands, adds to the daily rows.

    Created: on its creation day, for nobody. First response: on that day, for who sent it.
    Resolved (with its time from creation and whether it met its due time): on the day of its
    current resolution, for its assignee; a reopened ticket no longer counts as resolved there.
    Closed: on that day, for its assignee.
    """
    figures: StatFigures = {}

    def add(moment: datetime, agent: int | None, **amounts: int) -> None:
        row = figures.setdefault(
            (stat_day(moment), ticket.kind, agent or 0), dict.fromkeys(STAT_FIELDS, 0)
        )
        for field, amount in amounts.items():
            row[field] += amount

    add(ticket.created_at, None, created=1)
    if ticket.first_response_at is not None:
        add(
            ticket.first_response_at,
            ticket.first_response_by_id,
            first_responses=1,
            first_response_seconds=_seconds(ticket.created_at, ticket.first_response_at),
        )
    if ticket.resolved_at is not None:
        met = ticket.due_at is not None and ticket.resolved_at <= ticket.due_at
        add(
            ticket.resolved_at,
            ticket.assignee_id,
            resolved=1,
            resolution_seconds=_seconds(ticket.created_at, ticket.resolved_at),
            sla_met=int(met),
            sla_breached=int(ticket.due_at is not None and not met),
        )
    if ticket.closed_at is not None:
        add(ticket.closed_at, ticket.assignee_id, closed=1)
    return figures


def ticket_stat_figures_sum(
    tickets: Iterable[StatSource], *, start: date | None = None, end: date | None = None
) -> StatFigures:
    """The daily rows `tickets` make together, kept to the days `start` to `end` when given."""
    figures: StatFigures = {}
    for ticket in tickets:
        for key, amounts in ticket_stat_figures(ticket).items():
            if (start is None or start <= key[0]) and (end is None or key[0] <= end):
                row = figures.setdefault(key, dict.fromkeys(STAT_FIELDS, 0))
                for field, amount in amounts.items():
                    row[field] += amount
    return figures


def _difference(before: StatFigures, after: StatFigures) -> StatFigures:
    changes: StatFigures = {}
    for key in before.keys() | after.keys():
        old, new = before.get(key, {}), after.get(key, {})
        delta = {field: new.get(field, 0) - old.get(field, 0) for field in STAT_FIELDS}
        if any(delta.values()):
            changes[key] = delta
    return changes


def stat_month(day: date) -> date:
    """The month a day's figures also count in: its first day."""
    return day.replace(day=1)


def _by_month(changes: StatFigures) -> StatFigures:
    months: StatFigures = {}
    for (day, kind, agent), amounts in changes.items():
        row = months.setdefault((stat_month(day), kind, agent), dict.fromkeys(STAT_FIELDS, 0))
        for field in STAT_FIELDS:
            row[field] += amounts[field]
    return months


def _upsert(model: type[TicketStatCounts], period: str, changes: StatFigures) -> None:
    """Add `changes` to `model`'s rows in one statement, making the rows that are missing."""
    ops = connection.ops
    table = ops.quote_name(model._meta.db_table)
    columns = ["created_at", "updated_at", period, "kind", "agent_key", *STAT_FIELDS]
    now = ops.adapt_datetimefield_value(timezone.now())
    values, params = [], []
    for key in sorted(changes):  # one order for every writer
        day, kind, agent = key
        values.append("(" + ", ".join(["%s"] * len(columns)) + ")")
        params += [now, now, ops.adapt_datefield_value(day), kind, agent]
        params += [changes[key][field] for field in STAT_FIELDS]
    updates = ", ".join(f"{f} = {table}.{f} + excluded.{f}" for f in STAT_FIELDS)
    # Names come from the model and the constants above; every value is a parameter.
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join(values)} "  # noqa: S608
        f"ON CONFLICT ({period}, kind, agent_key) DO UPDATE SET {updates}, "
        "updated_at = excluded.updated_at"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def stat_rows_add(changes: StatFigures) -> None:
    """Add `changes` to the daily rows, and the same amounts to their months' rows.

    Two statements, the daily rows first (see the module docstring on the order). Public for the
    bench seeder, which adds the figures of the tickets it writes in bulk.
    """
    if not changes:
        return
    _upsert(TicketDailyStat, "day", changes)
    _upsert(TicketMonthlyStat, "month", _by_month(changes))


def ticket_stats_update(*, before: StatFigures, ticket: Ticket) -> None:
    """Add to the daily rows what `ticket` changed since `before` (its figures then; {} if new).

    Call it in the service's transaction, after its audit row (see the module docstring).
    """
    stat_rows_add(_difference(before, ticket_stat_figures(ticket)))


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_default_timezone())


@transaction.atomic
def ticket_stats_rebuild(*, start: date, end: date) -> int:
    """Recompute the daily rows of `start` to `end` (both included) from the tickets.

    The months they fall in are summed again from their daily rows. Safe while the services
    run (a beat job or a command): see the module docstring on the lock. Returns the number of
    daily rows written.
    """
    audit_chain_lock()
    low, high = _day_start(start), _day_start(end + timedelta(days=1))
    touched = Q()
    for field in ("created_at", "first_response_at", "resolved_at", "closed_at"):
        touched |= Q(**{f"{field}__gte": low, f"{field}__lt": high})
    tickets = Ticket.objects.filter(touched).order_by().values_list(*SOURCE_FIELDS, named=True)
    figures = ticket_stat_figures_sum(tickets.iterator(chunk_size=5000), start=start, end=end)
    TicketDailyStat.objects.filter(day__gte=start, day__lte=end).delete()
    TicketDailyStat.objects.bulk_create(
        [
            TicketDailyStat(day=day, kind=kind, agent_key=agent, **amounts)
            for (day, kind, agent), amounts in sorted(figures.items())
        ],
        batch_size=2000,
    )
    _months_rebuild(first=stat_month(start), last=stat_month(end))
    return len(figures)


def _months_rebuild(*, first: date, last: date) -> None:
    """Sum the monthly rows of months `first` to `last` (first days) again from the daily rows."""
    sums = (
        TicketDailyStat.objects.filter(day__gte=first, day__lt=next_month(last))
        .order_by()
        .annotate(month=TruncMonth("day"))
        .values("month", "kind", "agent_key")
        .annotate(**{field: Sum(field) for field in STAT_FIELDS})
        .order_by("month", "kind", "agent_key")
    )
    TicketMonthlyStat.objects.filter(month__gte=first, month__lte=last).delete()
    TicketMonthlyStat.objects.bulk_create(
        [TicketMonthlyStat(**row) for row in sums], batch_size=2000
    )


# The nightly rebuild's reach: the days whose rows a late change or a missed update could leave
# wrong are the last few (a reopen, a resolution at midnight, a rule changed by a deploy).
TICKET_STATS_NIGHTLY_DAYS = 3


def ticket_stats_rebuild_recent(*, days: int = TICKET_STATS_NIGHTLY_DAYS) -> int:
    """Recompute the daily rows of the last `days` days, today included; returns rows written."""
    today = stat_day(timezone.now())
    return ticket_stats_rebuild(start=today - timedelta(days=days - 1), end=today)
