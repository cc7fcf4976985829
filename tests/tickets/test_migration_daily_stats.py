"""Tickets from before the daily figures get their first response and every day's rows."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests.migrations import migrate_to
from tickets.services.stats import stat_day

BEFORE = [("tickets", "0019_dashboard_daily_stats")]
AFTER = [("tickets", "0020_dashboard_daily_stats_backfill")]

pytestmark = pytest.mark.usefixtures("latest_schema_afterwards")


@pytest.mark.django_db(transaction=True)
def test_the_backfill_finds_first_responses_and_builds_the_rows():
    agent = get_user_model().objects.create(username="backfill-agent", is_staff=True)
    apps = migrate_to(BEFORE)
    Ticket = apps.get_model("tickets", "Ticket")
    Message = apps.get_model("tickets", "Message")
    created = timezone.now() - timedelta(days=3)
    common = {"kind": "general", "subject": "s", "contact_email": "x@example.test"}
    answered = Ticket.objects.create(
        reference="HD-BBBBBBB1",
        status="resolved",
        created_at=created,
        resolved_at=created + timedelta(hours=5),
        due_at=created + timedelta(hours=8),
        assignee_id=agent.pk,
        **common,
    )
    Ticket.objects.create(reference="HD-BBBBBBB2", status="open", created_at=created, **common)
    for hours, author, internal in [(1, "staff", True), (2, "staff", False), (3, "staff", False)]:
        Message.objects.create(
            ticket=answered,
            author=author,
            author_user_id=agent.pk,
            internal=internal,
            body="b",
            created_at=created + timedelta(hours=hours),
        )

    apps = migrate_to(AFTER)
    Ticket = apps.get_model("tickets", "Ticket")
    TicketDailyStat = apps.get_model("tickets", "TicketDailyStat")

    ticket = Ticket.objects.get(pk=answered.pk)
    assert ticket.first_response_at == created + timedelta(hours=2)
    assert ticket.first_response_by_id == agent.pk
    created_rows = TicketDailyStat.objects.filter(agent_key=0).values_list("day", "created")
    assert list(created_rows) == [(stat_day(created), 2)]
    agent_rows = TicketDailyStat.objects.filter(agent_key=agent.pk)
    by_day = {
        row.day: (row.first_responses, row.first_response_seconds, row.resolved, row.sla_met)
        for row in agent_rows
    }
    first_day, resolved_day = stat_day(created + timedelta(hours=2)), stat_day(ticket.resolved_at)
    if first_day == resolved_day:
        assert by_day == {first_day: (1, 7200, 1, 1)}
    else:
        assert by_day == {first_day: (1, 7200, 0, 0), resolved_day: (0, 0, 1, 1)}
