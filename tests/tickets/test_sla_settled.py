"""A ticket out of the queue keeps its priority: its SLA outcome is settled.

Raising the priority of a ticket resolved in time used to move its due time before its
resolution and turn the dashboard's "met" of that day into "breached" (or the reverse).
"""

from datetime import timedelta

import pytest
from django.utils.html import escape

from helpdesk.exceptions import TransitionNotAllowed
from tests.factories import TicketFactory
from tickets import services
from tickets.models import ActionLog, Ticket, TicketDailyStat
from tickets.services.lifecycle import PRIORITY_SETTLED

S = Ticket.Status
pytestmark = pytest.mark.django_db

SETTLED = [S.RESOLVED, S.CLOSED, S.REJECTED, S.REFERRED, S.EXPIRED]


def resolved_in_time(agent, time_machine) -> Ticket:
    """A low-priority ticket resolved 30 hours in: in time for low, late for urgent."""
    time_machine.move_to("2026-11-02 02:00:00+00:00", tick=False)
    ticket = TicketFactory(status=S.OPEN, priority=Ticket.Priority.LOW)
    ticket.due_at = services.ticket_due_at(
        kind=ticket.kind, priority=ticket.priority, start=ticket.created_at
    )
    ticket.save(update_fields=["due_at"])
    time_machine.shift(timedelta(hours=30))
    services.ticket_resolve(ticket=ticket, actor=agent)
    ticket.refresh_from_db()
    return ticket


def sla_verdicts() -> tuple[int, int]:
    rows = TicketDailyStat.objects.all()
    return sum(r.sla_met for r in rows), sum(r.sla_breached for r in rows)


@pytest.mark.parametrize("status", SETTLED)
def test_the_service_refuses_a_priority_change_out_of_the_queue(agent, status):
    ticket = TicketFactory(status=status, priority=Ticket.Priority.NORMAL)
    due, version = ticket.due_at, ticket.version

    with pytest.raises(TransitionNotAllowed) as refused:
        services.ticket_priority_set(ticket=ticket, priority=Ticket.Priority.URGENT, actor=agent)

    assert refused.value.status_code == 409
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.due_at, ticket.version) == ("normal", due, version)
    assert not ActionLog.objects.filter(ticket=ticket, action="ticket.priority_changed").exists()


def test_the_ticket_page_refuses_it_and_offers_no_priority_menu(agent, agent_client, time_machine):
    # given a ticket resolved within its SLA
    ticket = resolved_in_time(agent, time_machine)
    assert sla_verdicts() == (1, 0)
    url = f"/staff/tickets/{ticket.reference}/"

    # when an agent posts a priority change the next day (an old page, or a crafted form)
    time_machine.shift(timedelta(days=1))
    page = agent_client.get(url).content.decode()
    response = agent_client.post(
        f"{url}priority/", {"priority": "urgent", "version": ticket.version}
    )

    # then no menu was offered, the change is refused with the reason, and the outcome stands
    assert 'name="priority"' not in page
    assert response.status_code == 409
    message = PRIORITY_SETTLED.format(status=S.RESOLVED.label.lower())
    assert escape(message) in response.content.decode()
    assert sla_verdicts() == (1, 0)
    ticket.refresh_from_db()
    assert ticket.priority == Ticket.Priority.LOW


def test_bulk_refuses_it_per_ticket_and_changes_the_open_ones(agent, agent_client, time_machine):
    # given a ticket resolved within its SLA and an open one
    resolved = resolved_in_time(agent, time_machine)
    still_open = TicketFactory(status=S.OPEN)

    # when both are made urgent from the queue
    response = agent_client.post(
        "/staff/bulk/",
        {
            "action": "priority:urgent",
            "ticket": [resolved.reference, still_open.reference],
            f"version-{resolved.reference}": resolved.version,
            f"version-{still_open.reference}": still_open.version,
        },
        follow=True,
    )

    # then the resolved one is refused on its own line, the open one changed
    page = response.content.decode()
    message = PRIORITY_SETTLED.format(status=S.RESOLVED.label.lower())
    assert f"{resolved.reference}: {escape(message)}" in page
    assert "1 ticket updated." in page
    resolved.refresh_from_db()
    still_open.refresh_from_db()
    assert (resolved.priority, still_open.priority) == ("low", "urgent")
    assert sla_verdicts() == (1, 0)


def test_a_reopened_ticket_takes_a_new_priority_again(agent):
    ticket = TicketFactory(status=S.RESOLVED, priority=Ticket.Priority.LOW)

    services.ticket_reopen(ticket=ticket, actor=agent)
    services.ticket_priority_set(ticket=ticket, priority=Ticket.Priority.HIGH, actor=agent)

    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority) == (S.OPEN, Ticket.Priority.HIGH)
