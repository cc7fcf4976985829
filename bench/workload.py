"""What the notification benchmarks send: tickets with an outbox row each (Django set up first)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

TEMPLATE = "password_resend_received"


def _context(i: int) -> dict[str, str]:
    return {"domain": f"bench-{i}.test", "direct_request_url": settings.OPENSRS_DIRECT_REQUEST_URL}


@transaction.atomic
def ticket_with_notification(i: int, tag: str):
    """Open a ticket and queue its acknowledgement in one transaction, as a service does."""
    from tickets.models import Ticket
    from tickets.services import notification_queue, ticket_create

    ticket = ticket_create(
        kind=Ticket.Kind.GENERAL,
        subject=f"Bench {tag} {i}",
        actor="anonymous",
        contact_email=f"bench-{i}@example.test",
        channel=Ticket.Channel.API,
    )
    return notification_queue(
        ticket=ticket,
        template=TEMPLATE,
        recipient=f"bench-{i}@example.test",
        context=_context(i),
        key=f"bench:{tag}:{i}:{uuid.uuid4().hex}",
    )


def pending_rows(count: int, tag: str) -> list[int]:
    """`count` tickets with one pending outbox row each, written without queueing any task."""
    from tickets.models import Notification, Ticket

    now = timezone.now()
    tickets = Ticket.objects.bulk_create(
        [
            Ticket(
                kind=Ticket.Kind.GENERAL,
                subject=f"Bench {tag} {i}",
                channel=Ticket.Channel.API,
                contact_email=f"bench-{i}@example.test",
                due_at=now,
            )
            for i in range(count)
        ],
        batch_size=1000,
    )
    rows = [
        Notification(
            ticket=ticket,
            template=TEMPLATE,
            recipient=ticket.contact_email,
            context={"reference": ticket.reference, **_context(i)},
            idempotency_key=f"bench:{tag}:{i}:{uuid.uuid4().hex}",
            next_attempt_at=now,
        )
        for i, ticket in enumerate(tickets)
    ]
    created = Notification.objects.bulk_create(rows, batch_size=1000)
    return [row.pk for row in created]


def enqueue(ids: list[int]) -> None:
    """Queue the send task of each row, as the outbox's on_commit hook and the sweep do."""
    from tickets.services.outbox import notifications_enqueue

    notifications_enqueue(ids)
