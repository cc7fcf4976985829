"""Staff-only ticket actions refuse anyone else in the services themselves, whatever path calls.

The staff pages and the API check the role before they call a service; a command, the admin
or a view yet to come might not. These call the services as such a path would.
"""

import pytest
from django.contrib.auth.models import User

from helpdesk.exceptions import StaffForbidden
from tests.factories import TicketFactory
from tickets import services
from tickets.models import ActionLog, Ticket

S = Ticket.Status
pytestmark = pytest.mark.django_db


def _actions(ticket: Ticket, other: Ticket, agent: User):
    return {
        "assign": lambda actor: services.ticket_assign(ticket=ticket, assignee=agent, actor=actor),
        "priority": lambda actor: services.ticket_priority_set(
            ticket=ticket, priority=Ticket.Priority.HIGH, actor=actor
        ),
        "reject": lambda actor: services.ticket_reject(ticket=ticket, actor=actor, reason="No."),
        "resolve": lambda actor: services.ticket_resolve(ticket=ticket, actor=actor),
        "reopen": lambda actor: services.ticket_reopen(ticket=ticket, actor=actor),
        "merge": lambda actor: services.ticket_merge(ticket=ticket, into=other, actor=actor),
    }


@pytest.mark.parametrize("action", ["assign", "priority", "reject", "resolve", "reopen", "merge"])
@pytest.mark.parametrize("who", ["customer login", "customer", "staff flag without a role", None])
def test_a_staff_only_action_refuses_anyone_but_staff_and_changes_nothing(
    alice, agent, action, who
):
    # given Alice's open general request and another of hers, and an actor who is not staff
    status = S.RESOLVED if action == "reopen" else S.OPEN
    ticket = TicketFactory(customer=alice, contact_email=alice.email, status=status)
    other = TicketFactory(customer=alice, contact_email=alice.email)
    actor = {
        "customer login": alice.user,
        "customer": alice,
        "staff flag without a role": User.objects.create_user("helper", is_staff=True),
        None: None,
    }[who]
    before = Ticket.objects.values().get(pk=ticket.pk)
    rows = ActionLog.objects.count()

    # when
    with pytest.raises(StaffForbidden) as refused:
        _actions(ticket, other, agent)[action](actor)

    # then the refusal is a 403 and neither ticket nor the audit chain moved
    assert refused.value.status_code == 403
    assert Ticket.objects.values().get(pk=ticket.pk) == before
    assert ActionLog.objects.count() == rows


@pytest.mark.parametrize("action", ["assign", "priority", "resolve", "merge"])
def test_staff_and_the_systems_own_actors_still_act(alice, agent, action):
    # given
    ticket = TicketFactory(customer=alice, contact_email=alice.email)
    other = TicketFactory(customer=alice, contact_email=alice.email)

    # when an agent, then a flow of the system's own ("worker"), acts
    _actions(ticket, other, agent)[action](agent)
    if action in ("assign", "priority"):
        _actions(ticket, other, agent)[action]("worker")

    # then the action was made
    ticket.refresh_from_db()
    assert ActionLog.objects.filter(ticket=ticket).exclude(action="ticket.created").exists()
