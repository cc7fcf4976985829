"""The bench seeder (bench/queue.py) against today's schema.

The seeder writes rows with COPY, column by column, outside the services: a column added to a
model that it does not write fails here, not in the next `make bench`.
"""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Min
from django.test import Client
from django.utils import timezone

from bench.queue import HISTORY_PREFIX, HISTORY_SUBJECT, seed
from tests.markers import postgresql_only
from tickets.audit import audit_verify
from tickets.models import (
    OPEN_STATUSES,
    STAT_FIELDS,
    FieldChange,
    Message,
    Ticket,
    TicketDailyStat,
    TicketMonthlyStat,
)
from tickets.selectors.dashboard import dashboard_today
from tickets.services.stats import stat_day, ticket_stats_rebuild

pytestmark = [
    pytest.mark.django_db,
    postgresql_only("the seeder writes with COPY and drops and rebuilds the indexes"),
]

TICKETS = 40
HISTORY_ROUNDS = (0, 3)


def daily_rows() -> dict:
    return {
        (row["day"], row["kind"], row["agent_key"]): {field: row[field] for field in STAT_FIELDS}
        for row in TicketDailyStat.objects.values("day", "kind", "agent_key", *STAT_FIELDS)
        if any(row[field] for field in STAT_FIELDS)
    }


def monthly_rows() -> dict:
    return {
        (row["month"], row["kind"], row["agent_key"]): {field: row[field] for field in STAT_FIELDS}
        for row in TicketMonthlyStat.objects.values("month", "kind", "agent_key", *STAT_FIELDS)
        if any(row[field] for field in STAT_FIELDS)
    }


def daily_rows_by_month() -> dict:
    months: dict = {}
    for (day, kind, agent), amounts in daily_rows().items():
        row = months.setdefault((day.replace(day=1), kind, agent), dict.fromkeys(STAT_FIELDS, 0))
        for field in STAT_FIELDS:
            row[field] += amounts[field]
    return {key: row for key, row in months.items() if any(row.values())}


def view_counts(page: str) -> dict[str, int]:
    link = r'view=(\w+)[^"]*" class="view-link[^>]*>[^<]*<span class="count">(\d+)'
    return {view: int(count) for view, count in re.findall(link, page)}


def test_the_seeded_tickets_read_back_and_render_on_the_staff_pages(time_machine):
    # given the clock held still, so the overdue count is the same for the page and for us
    time_machine.move_to(timezone.now(), tick=False)

    # when a few tickets are seeded the way `make bench` seeds 100,000
    counts = seed(TICKETS, customer_count=10, history_rounds=HISTORY_ROUNDS, vacuumed=False)

    # then every seeded row reads back through the ORM and validates
    tickets = list(Ticket.objects.select_related("customer", "domain", "assignee"))
    assert counts["tickets"] == TICKETS
    assert len(tickets) == TICKETS + len(HISTORY_ROUNDS)
    for ticket in tickets:
        ticket.full_clean()
    seeded_messages = Message.objects.exclude(ticket__subject__startswith=HISTORY_PREFIX)
    assert len(list(seeded_messages)) == counts["messages"]
    assert len(list(FieldChange.objects.all())) == counts["changes"]
    assert audit_verify().ok
    # and the daily figures it wrote are the ones a rebuild from the tickets gives, and the
    # monthly ones their sums by month, before the rebuild and after
    written = daily_rows()
    assert monthly_rows() == daily_rows_by_month()
    assert len({month for month, _kind, _agent in monthly_rows()}) > 1
    first = stat_day(Ticket.objects.aggregate(first=Min("created_at"))["first"])
    ticket_stats_rebuild(start=first, end=dashboard_today())
    assert daily_rows() == written
    assert monthly_rows() == daily_rows_by_month()

    # when a supervisor opens the queue
    supervisor = get_user_model().objects.get(username="supervisor")
    client = Client()
    client.force_login(supervisor)
    queue = client.get("/staff/")

    # then its counts are those of the tickets read back
    now = timezone.now()
    open_tickets = [t for t in tickets if t.status in OPEN_STATUSES]
    assert queue.status_code == 200
    assert view_counts(queue.content.decode()) == {
        "open": len(open_tickets),
        "mine": sum(t.assignee_id == supervisor.pk for t in open_tickets),
        "unassigned": sum(t.assignee_id is None for t in open_tickets),
        "overdue": sum(
            t.due_at is not None and t.due_at < now and t.sla_paused_at is None
            for t in open_tickets
        ),
        "awaiting_verification": sum(
            t.status == Ticket.Status.AWAITING_VERIFICATION for t in open_tickets
        ),
    }
    every = client.get("/staff/?view=all&size=100").content.decode()
    assert set(re.findall(r'data-reference="(HD-[0-9A-Z]{8})"', every)) == {
        t.reference for t in tickets
    }

    # and a seeded ticket's page and the longest history's page show all their messages
    changed = next(t for t in tickets if t.kind == Ticket.Kind.MODIFY_INFO)
    history = next(t for t in tickets if t.subject == HISTORY_SUBJECT.format(rounds=3))
    for ticket in (changed, history):
        page = client.get(f"/staff/tickets/{ticket.reference}/")
        assert page.status_code == 200
        shown = page.content.decode().count('<li class="message-item')
        assert shown == Message.objects.filter(ticket=ticket).count() > 0

    # and the dashboard over the last year counts every ticket created and resolved
    today = dashboard_today()
    start = today - timedelta(days=365)
    dashboard = client.get(f"/staff/dashboard/?range=custom&start={start}&end={today}")
    assert dashboard.status_code == 200
    assert "Created per month" in dashboard.content.decode()
    totals = re.findall(r'class="chart-total">(\d+) in all', dashboard.content.decode())
    assert totals == [
        str(len(tickets)),
        str(sum(t.resolved_at is not None for t in tickets)),
    ]
