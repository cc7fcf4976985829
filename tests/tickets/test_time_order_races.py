"""Actions that cross each other in time: two tabs, a script, a late or repeated delivery.

Each pair ends in one consistent state, and the audit chain verifies.
"""

import pytest

from tests.markers import postgresql_only
from tests.tickets.test_staff_races import at_once, audited, question_of, refusals
from tickets import services
from tickets.audit import audit_verify
from tickets.models import Message, Ticket

pytestmark = [
    pytest.mark.django_db(transaction=True),
    postgresql_only("two transactions at once"),
]

S = Ticket.Status


def test_merging_two_tickets_into_each_other_at_once_merges_one_way_only(alice, agent, supervisor):
    # given two questions of one customer
    first = question_of(alice)
    second = question_of(alice, "And my receipt?")

    # when one agent merges the first into the second while another merges the other way
    outcomes = at_once(
        lambda: services.ticket_merge(ticket=first, into=second, actor=agent),
        lambda: services.ticket_merge(ticket=second, into=first, actor=supervisor),
    )

    # then one merge went through, the other was refused, and no ticket points at a closed one
    assert len(refusals(outcomes)) == 1
    first.refresh_from_db()
    second.refresh_from_db()
    merged = [t for t in (first, second) if t.merged_into_id]
    [source] = merged
    survivor = second if source is first else first
    assert survivor.status not in (S.CLOSED,) and survivor.merged_into_id is None
    assert Message.objects.filter(ticket=source).count() == 0
    assert audited(source, "ticket.merged") == 1
    assert audit_verify().ok
