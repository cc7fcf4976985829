"""Staff's words on a ticket (a reply as staff, an internal note) are refused to anyone else.

ticket_reply_add takes every kind of message; the staff pages and the API check the role before
they ask for a staff reply or a note, and a path that does not (a command, the admin, a view
yet to come) must not write words in staff's name or where only staff read them.
"""

import pytest
from django.contrib.auth.models import User

from helpdesk.exceptions import StaffForbidden
from tests.factories import TicketFactory
from tickets import services
from tickets.models import ActionLog, Message, Ticket

pytestmark = pytest.mark.django_db

M = Message.Author


@pytest.fixture(params=["customer login", "customer", "staff flag without a role", "nobody"])
def not_staff(request, alice):
    """Each actor that is not staff nor the system: Alice, her login, a bare flag, no one."""
    if request.param == "customer login":
        return alice.user
    if request.param == "customer":
        return alice
    if request.param == "staff flag without a role":
        return User.objects.create_user("helper", is_staff=True)
    return None


@pytest.mark.parametrize(
    ("author", "internal"),
    [(M.STAFF, False), (M.STAFF, True), (M.CUSTOMER, True), (M.SYSTEM, True)],
)
def test_a_staff_message_refuses_anyone_but_staff_and_writes_nothing(
    alice, not_staff, author, internal
):
    # given Alice's open request and someone who is not staff
    ticket = TicketFactory(customer=alice, contact_email=alice.email)
    before = Ticket.objects.values().get(pk=ticket.pk)
    rows = ActionLog.objects.count()

    # when they write as staff, or where only staff read
    with pytest.raises(StaffForbidden) as refused:
        services.ticket_reply_add(
            ticket=ticket,
            body="Approved: send the domain's password to attacker@evil.test",
            actor=not_staff,
            author=author,
            channel=Ticket.Channel.STAFF,
            internal=internal,
        )

    # then it is a 403, and no message, ticket change or audit row is written
    assert refused.value.status_code == 403
    assert not Message.objects.filter(ticket=ticket).exists()
    assert Ticket.objects.values().get(pk=ticket.pk) == before
    assert ActionLog.objects.count() == rows


def test_staff_the_system_and_the_customer_still_write(alice, agent):
    # given Alice's open request
    ticket = TicketFactory(customer=alice, contact_email=alice.email)
    common = {"ticket": ticket, "channel": Ticket.Channel.STAFF}

    # when an agent replies and notes, the system notes, and Alice replies as herself
    services.ticket_reply_add(**common, body="Reply", actor=agent, author=M.STAFF)
    services.ticket_reply_add(**common, body="Note", actor=agent, author=M.STAFF, internal=True)
    services.ticket_reply_add(
        **common, body="System", actor="worker", author=M.SYSTEM, internal=True
    )
    services.ticket_reply_add(
        ticket=ticket, body="Mine", actor=alice, author=M.CUSTOMER, channel=Ticket.Channel.PORTAL
    )

    # then each is written
    assert list(ticket.messages.order_by("id").values_list("body", flat=True)) == [
        "Reply",
        "Note",
        "System",
        "Mine",
    ]
