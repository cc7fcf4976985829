import threading

import pytest
from django.db import close_old_connections, connection

from helpdesk.exceptions import ApplicationError, RateLimited, TransitionNotAllowed
from tests.factories import TicketFactory
from tickets import services
from tickets.models import SLA_PAUSED_STATUSES, ActionLog, Message, Notification, Ticket
from tickets.services import lifecycle

S = Ticket.Status

LEGAL = [(old, new) for old, targets in services.TRANSITIONS.items() for new in sorted(targets)]
ILLEGAL = [
    (old, new)
    for old in services.TRANSITIONS
    for new in S.values
    if new not in services.TRANSITIONS[old]
]


@pytest.mark.django_db
@pytest.mark.parametrize(("old", "new"), LEGAL)
def test_every_legal_transition_moves_and_is_audited(old, new):
    ticket = TicketFactory(status=old)

    services.ticket_transition(ticket=ticket, to=new, actor="staff:agent")

    ticket.refresh_from_db()
    assert ticket.status == new
    event = ActionLog.objects.get(ticket=ticket, action="ticket.status_changed")
    sla = {key: event.details.pop(key) for key in list(event.details) if key.startswith("sla")}
    assert event.details == {"from": old, "to": new}
    assert event.actor == "staff:agent"
    # the SLA clock stops on entering a waiting status and restarts on leaving one
    was_paused, is_paused = old in SLA_PAUSED_STATUSES, new in SLA_PAUSED_STATUSES
    assert sla.get("sla") == {
        (False, True): "paused",
        (True, False): "resumed",
    }.get((was_paused, is_paused))
    assert (ticket.sla_paused_at is not None) == is_paused


@pytest.mark.django_db
@pytest.mark.parametrize(("old", "new"), ILLEGAL)
def test_every_illegal_transition_is_refused_and_changes_nothing(old, new):
    ticket = TicketFactory(status=old)

    with pytest.raises(TransitionNotAllowed):
        services.ticket_transition(ticket=ticket, to=new, actor="staff:agent")

    ticket.refresh_from_db()
    assert ticket.status == old
    assert not ActionLog.objects.filter(ticket=ticket).exists()


@pytest.mark.django_db
def test_resolve_writes_audit_and_notification_in_one_transaction(alice):
    ticket = TicketFactory(customer=alice, status=S.OPEN)

    services.ticket_resolve(ticket=ticket, actor="staff:agent", note="Fixed the DNS record.")

    ticket.refresh_from_db()
    assert ticket.status == S.RESOLVED and ticket.resolved_at is not None
    notification = Notification.objects.get(ticket=ticket)
    assert notification.template == "ticket_resolved"
    assert notification.recipient == alice.email
    assert notification.status == Notification.Status.PENDING


@pytest.mark.django_db
def test_a_failure_after_the_transition_rolls_back_audit_and_outbox(alice, monkeypatch):
    ticket = TicketFactory(customer=alice, status=S.OPEN)

    def explode(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(lifecycle, "notification_queue", explode)
    with pytest.raises(RuntimeError):
        services.ticket_resolve(ticket=ticket, actor="staff:agent")

    ticket.refresh_from_db()
    assert ticket.status == S.OPEN
    assert not ActionLog.objects.filter(ticket=ticket).exists()


@pytest.mark.django_db
def test_a_stale_version_is_refused(alice):
    ticket = TicketFactory(customer=alice, status=S.OPEN)
    seen_version = ticket.version
    services.ticket_priority_set(ticket=ticket, priority="high", actor="staff:supervisor")

    with pytest.raises(ApplicationError, match="changed by someone else"):
        services.ticket_resolve(ticket=ticket, actor="staff:agent", expected_version=seen_version)

    ticket.refresh_from_db()
    assert ticket.status == S.OPEN


@pytest.mark.django_db
def test_staff_reply_mails_the_customer_and_waits_for_them(alice, agent):
    ticket = TicketFactory(customer=alice, status=S.OPEN)

    services.ticket_reply_add(
        ticket=ticket, body="Try clearing the cache.", actor=agent, author="staff", channel="staff"
    )

    ticket.refresh_from_db()
    assert ticket.status == S.AWAITING_CUSTOMER
    assert Notification.objects.get(ticket=ticket).context["body"] == "Try clearing the cache."


@pytest.mark.django_db
def test_internal_note_is_never_mailed(alice, agent):
    ticket = TicketFactory(customer=alice, status=S.OPEN)

    services.ticket_reply_add(
        ticket=ticket,
        body="Customer sounds upset",
        actor=agent,
        author="staff",
        channel="staff",
        internal=True,
    )

    assert Message.objects.get(ticket=ticket).internal
    assert not Notification.objects.filter(ticket=ticket).exists()
    assert Ticket.objects.get(pk=ticket.pk).status == S.OPEN


@pytest.mark.django_db
def test_customer_reply_reopens_a_resolved_ticket(alice):
    ticket = TicketFactory(customer=alice, status=S.RESOLVED)

    services.ticket_reply_add(
        ticket=ticket, body="Still broken", actor=alice, author="customer", channel="portal"
    )

    assert Ticket.objects.get(pk=ticket.pk).status == S.OPEN


@pytest.mark.django_db
def test_reply_to_a_closed_ticket_is_refused(alice):
    ticket = TicketFactory(customer=alice, status=S.CLOSED)

    with pytest.raises(TransitionNotAllowed):
        services.ticket_reply_add(
            ticket=ticket, body="hello", actor=alice, author="customer", channel="portal"
        )


@pytest.mark.django_db
def test_assign_refuses_a_customer_login(alice):
    ticket = TicketFactory(customer=alice, status=S.OPEN)

    with pytest.raises(ApplicationError):
        services.ticket_assign(ticket=ticket, assignee=alice.user, actor="staff:agent")


@pytest.mark.django_db
def test_reject_needs_a_reason(alice):
    ticket = TicketFactory(customer=alice, status=S.OPEN)

    with pytest.raises(ApplicationError):
        services.ticket_reject(ticket=ticket, actor="staff:agent", reason="  ")


@pytest.mark.django_db
def test_references_are_random_and_well_formed():
    refs = {TicketFactory().reference for _ in range(50)}

    assert len(refs) == 50
    assert all(r.startswith("HD-") and len(r) == 11 for r in refs)
    assert not any(set(r[3:]) & set("ILOU") for r in refs)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_resolutions_exactly_one_wins(alice):
    ticket = TicketFactory(customer=alice, status=S.OPEN)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def resolve(who: str) -> None:
        close_old_connections()
        barrier.wait()
        try:
            services.ticket_resolve(ticket=ticket, actor=f"staff:{who}")
            outcomes.append("won")
        except TransitionNotAllowed:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=resolve, args=(name,)) for name in ("agent", "supervisor")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert sorted(outcomes) == ["refused", "won"]
    assert ActionLog.objects.filter(ticket=ticket, action="ticket.status_changed").count() == 1
    assert Notification.objects.filter(ticket=ticket).count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("rate_window_start")
def test_request_general_redacts_cards_and_limits_each_client(alice, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "request_per_client": (1, 3600)}

    ticket = services.request_general(
        subject="Card 4111 1111 1111 1111",
        body="Charge 4111-1111-1111-1111 please",
        contact_email=alice.email,
        actor="anonymous",
        client_key="203.0.113.9",
    )

    assert "4111" not in ticket.subject
    assert "4111" not in Message.objects.get(ticket=ticket).body
    with pytest.raises(RateLimited):
        services.request_general(
            subject="Again",
            body="hello",
            contact_email=alice.email,
            actor="anonymous",
            client_key="203.0.113.9",
        )
