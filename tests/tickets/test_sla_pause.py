import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.factories import TicketFactory
from tickets import services
from tickets.models import ActionLog, Ticket
from tickets.selectors.queue import staff_queue_counts

S = Ticket.Status


@pytest.mark.django_db
def test_waiting_on_the_customer_pauses_the_sla_and_the_reply_resumes_it(agent, alice):
    # given an open ticket due in 4 hours
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        ticket = TicketFactory(customer=alice, due_at=start + timedelta(hours=4))
        # when the agent replies, the ticket waits on the customer
        services.ticket_reply_add(
            ticket=ticket, body="Which domain?", actor=agent, author="staff", channel="staff"
        )
    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_CUSTOMER
    assert ticket.sla_paused_at == start

    # and the customer answers 30 hours later
    with time_machine.travel(start + timedelta(hours=30), tick=False):
        services.ticket_reply_add(
            ticket=ticket, body="example.com", actor="inbound", author="customer", channel="email"
        )

    # then the 30 hours of waiting do not count: still 4 hours left
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN
    assert ticket.sla_paused_at is None
    assert ticket.sla_paused_total == timedelta(hours=30)
    assert ticket.due_at == start + timedelta(hours=34)
    row = ActionLog.objects.filter(ticket=ticket, action="ticket.status_changed").last()
    assert row.details["sla"] == "resumed"
    assert row.details["sla_paused_seconds"] == 30 * 3600


@pytest.mark.django_db
def test_a_request_awaiting_verification_starts_paused(alice):
    ticket = services.ticket_create(
        kind=Ticket.Kind.GENERAL,
        subject="Help",
        actor="anonymous",
        contact_email="x@example.test",
        status=S.AWAITING_VERIFICATION,
    )
    assert ticket.sla_paused_at is not None


@pytest.mark.django_db
def test_a_priority_change_keeps_the_paused_time(agent, alice):
    start = timezone.now()
    ticket = TicketFactory(customer=alice, created_at=start, due_at=start + timedelta(hours=24))
    Ticket.objects.filter(pk=ticket.pk).update(sla_paused_total=timedelta(hours=5))
    ticket.refresh_from_db()
    services.ticket_priority_set(ticket=ticket, priority="urgent", actor=agent)
    ticket.refresh_from_db()
    expected = services.ticket_due_at(kind=ticket.kind, priority="urgent", start=start)
    assert ticket.due_at == expected + timedelta(hours=5)


@pytest.mark.django_db
def test_a_paused_ticket_past_its_due_time_is_not_overdue_and_says_paused(
    agent_client, agent, alice
):
    # given a ticket that waits on the customer with 2 hours left, long past its due time
    long_ago = timezone.now() - timedelta(days=3)
    ticket = TicketFactory(
        customer=alice, status=S.AWAITING_CUSTOMER, due_at=long_ago + timedelta(hours=2)
    )
    Ticket.objects.filter(pk=ticket.pk).update(sla_paused_at=long_ago)

    # when / then: not in the overdue view nor its count, and the due time says paused
    queue = agent_client.get("/staff/?view=overdue").content.decode()
    assert ticket.reference not in queue
    assert staff_queue_counts(user=agent)["overdue"] == 0
    page = agent_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
    assert re.search(r'class="sla">Paused, waiting: 2 h 0 min left', page), page
    queue = agent_client.get("/staff/?view=open").content.decode()
    assert "Paused, waiting" in queue
