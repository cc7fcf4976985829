import re

import pytest
from django.test import Client
from django.utils.html import escape

from tests.factories import TicketFactory
from tickets import services
from tickets.models import ActionLog, Ticket
from tickets.staff.common import VERSION_MISSING

S = Ticket.Status


def bulk(client, action, tickets, back="view=open"):
    """Post a bulk action as the queue does: each ticket with the version it showed."""
    return client.post(
        "/staff/bulk/",
        {
            "action": action,
            "ticket": [t.reference for t in tickets],
            **{f"version-{t.reference}": t.version for t in tickets},
            "back": back,
        },
        follow=True,
    )


@pytest.mark.django_db
def test_bulk_assign_assigns_each_ticket_and_audits_each(agent_client, agent, supervisor):
    tickets = [TicketFactory(status=S.OPEN) for _ in range(3)]

    response = bulk(agent_client, "assign:supervisor", tickets)

    assert response.redirect_chain[-1][0] == "/staff/?view=open"
    assert "3 tickets updated." in response.content.decode()
    for ticket in tickets:
        ticket.refresh_from_db()
        assert ticket.assignee == supervisor
        row = ActionLog.objects.get(ticket=ticket, action="ticket.assigned")
        assert row.actor == "staff:agent"


@pytest.mark.django_db
def test_bulk_resolve_reports_each_refused_ticket_and_does_the_others(agent_client):
    # given two open tickets and a closed one
    first, second = TicketFactory(status=S.OPEN), TicketFactory(status=S.OPEN)
    closed = TicketFactory(status=S.CLOSED)

    # when
    response = bulk(agent_client, "resolve", [first, closed, second])

    # then the refusal names its ticket; the others are resolved in their own transaction
    page = response.content.decode()
    assert "2 tickets updated." in page
    assert re.search(rf"{closed.reference}: This ticket is Closed; it cannot be moved", page)
    for ticket, status in ((first, S.RESOLVED), (second, S.RESOLVED), (closed, S.CLOSED)):
        ticket.refresh_from_db()
        assert ticket.status == status
    assert ActionLog.objects.filter(ticket=closed, action="ticket.status_changed").count() == 0


@pytest.mark.django_db
def test_bulk_priority_resolve_and_close(agent_client):
    tickets = [TicketFactory(status=S.OPEN) for _ in range(2)]
    for action in ("priority:urgent", "resolve", "close"):
        bulk(agent_client, action, tickets)
        for ticket in tickets:
            ticket.refresh_from_db()
    for ticket in tickets:
        ticket.refresh_from_db()
        assert (ticket.priority, ticket.status) == ("urgent", S.CLOSED)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("", "Choose an action for the selected tickets."),
        ("delete", "Choose an action for the selected tickets."),
        ("priority:extreme", "Choose an action for the selected tickets."),
        ("assign:nobody-here", "There is no staff member called nobody-here."),
    ],
)
def test_an_unknown_bulk_action_changes_nothing_and_says_why(agent_client, action, message):
    ticket = TicketFactory(status=S.OPEN)
    version = ticket.version
    response = bulk(agent_client, action, [ticket])
    assert message in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.version == version


@pytest.mark.django_db
def test_bulk_refuses_customers_get_and_foreign_redirects(alice, agent_client):
    ticket = TicketFactory(status=S.OPEN, customer=alice)
    customer = Client()
    customer.force_login(alice.user)
    assert (
        customer.post("/staff/bulk/", {"action": "close", "ticket": ticket.reference}).status_code
        == 404
    )
    assert agent_client.get("/staff/bulk/").status_code == 405
    response = agent_client.post(
        "/staff/bulk/", {"action": "close", "ticket": "HD-NOPE0000", "back": "//evil.test/"}
    )
    assert response["Location"].startswith("/staff/?")
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN


@pytest.mark.django_db
def test_the_queue_offers_checkboxes_and_bulk_actions(agent_client):
    for _ in range(5):
        TicketFactory(status=S.OPEN)
    agent_client.get("/staff/")
    page = agent_client.get("/staff/").content.decode()
    assert len(re.findall(r'name="ticket" value="HD-', page)) == 5
    assert 'value="assign_me"' in page and 'value="priority:urgent"' in page


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["unassign", "assign:agent", "priority:low", "resolve"])
def test_bulk_refuses_a_ticket_changed_since_the_queue_showed_it(agent_client, supervisor, action):
    # given the agent's queue shows two open tickets with their versions
    changed, unchanged = TicketFactory(status=S.OPEN), TicketFactory(status=S.OPEN)
    queue = agent_client.get("/staff/?view=open").content.decode()
    shown = {
        t.reference: re.search(rf'name="version-{t.reference}" value="(\d+)"', queue).group(1)
        for t in (changed, unchanged)
    }
    # and a supervisor then takes one of them and marks it urgent
    services.ticket_assign(ticket=changed, assignee=supervisor, actor=supervisor)
    services.ticket_priority_set(ticket=changed, priority="urgent", actor=supervisor)
    changed.refresh_from_db()
    before = (changed.version, changed.assignee_id, changed.priority, changed.status)

    # when the agent's bulk action arrives with the versions the queue showed
    response = agent_client.post(
        "/staff/bulk/",
        {
            "action": action,
            "ticket": [changed.reference, unchanged.reference],
            **{f"version-{ref}": version for ref, version in shown.items()},
        },
        follow=True,
    )

    # then the changed ticket is refused with the reason, the other done
    page = response.content.decode()
    assert f"{changed.reference}: {escape(services.STALE_TICKET)}" in page
    assert "1 ticket updated." in page
    changed.refresh_from_db()
    assert (changed.version, changed.assignee_id, changed.priority, changed.status) == before
    unchanged.refresh_from_db()
    assert unchanged.version > int(shown[unchanged.reference])


@pytest.mark.django_db
@pytest.mark.parametrize("version", [None, "", "seven"])
@pytest.mark.parametrize("action", ["assign_me", "priority:urgent", "resolve", "close"])
def test_bulk_refuses_a_ticket_posted_without_its_version_and_does_the_others(
    agent_client, supervisor, action, version
):
    # given a ticket a supervisor changed after the agent's stale page was loaded
    stale = TicketFactory(status=S.RESOLVED if action == "close" else S.OPEN)
    fresh = TicketFactory(status=S.RESOLVED if action == "close" else S.OPEN)
    services.ticket_reply_add(
        ticket=stale,
        body="Checked with the registrar; do not close yet.",
        actor=supervisor,
        author="staff",
        channel="staff",
        author_user=supervisor,
        internal=True,
    )
    stale.refresh_from_db()
    before = (stale.version, stale.assignee_id, stale.priority, stale.status)
    data = {
        "action": action,
        "ticket": [stale.reference, fresh.reference],
        f"version-{fresh.reference}": fresh.version,
    }
    if version is not None:
        data[f"version-{stale.reference}"] = version

    # when the bulk form arrives without (or with an unreadable) version for that ticket
    response = agent_client.post("/staff/bulk/", data, follow=True)

    # then that ticket is refused with the reason and left as it was; the other is done
    page = response.content.decode()
    assert f"{stale.reference}: {escape(VERSION_MISSING)}" in page
    stale.refresh_from_db()
    assert (stale.version, stale.assignee_id, stale.priority, stale.status) == before
    fresh.refresh_from_db()
    assert fresh.version > 1


@pytest.mark.django_db(transaction=True)
def test_bulk_resolve_makes_the_same_few_statements_for_each_ticket(agent_client):
    """Each ticket in its own transaction, with its effects, and no statement it does not need.

    No savepoint (nothing rolls back to one: a refusal fails the ticket's whole transaction) and
    no read of the satisfaction link's table before its row is written (its unique index
    refuses a token twice; the ticket is held under its lock).
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tickets.models import Notification, Verification

    bulk(agent_client, "resolve", [TicketFactory(status=S.OPEN)])  # the audit chain's head made
    counts = []
    for size in (1, 3):
        tickets = [TicketFactory(status=S.OPEN) for _ in range(size)]
        with CaptureQueriesContext(connection) as captured:
            response = bulk(agent_client, "resolve", tickets)
        assert f"{size} ticket{'s' if size > 1 else ''} updated." in response.content.decode()
        statements = [q["sql"] for q in captured.captured_queries]
        assert not [s for s in statements if "SAVEPOINT" in s.upper()]
        assert not [s for s in statements if 'FROM "tickets_verification"' in s]
        counts.append(len(statements))
        for ticket in tickets:
            ticket.refresh_from_db()
            assert ticket.status == S.RESOLVED
            assert set(
                ActionLog.objects.filter(ticket=ticket).values_list("action", flat=True)
            ) >= {"ticket.status_changed", "verification.sent"}
            assert Verification.objects.filter(ticket=ticket, purpose="satisfaction").count() == 1
            assert Notification.objects.filter(ticket=ticket, template="ticket_resolved").exists()
    # The two extra tickets cost the same statements each: none depends on how many there are.
    assert (counts[1] - counts[0]) % 2 == 0
