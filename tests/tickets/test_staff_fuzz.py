"""Fuzzed staff screens: whatever an agent or a supervisor sends, the answer is never a 5xx."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import TicketFactory
from tests.tickets.test_portal_fuzz import FUZZ_SETTINGS, values
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

# What a browser, a script or a hand-edited form could send as a number, a name or a reference.
staff_values = st.one_of(
    values,
    st.sampled_from(
        [
            "1",
            "-1",
            "0",
            "9" * 30,
            "1e5",
            "١٢",
            "agent",
            "supervisor",
            "assign:agent",
            "assign:\x00",
            "priority:urgent",
            "resolve",
            "close",
            "open",
            "2026-02-30",
            "9999-12-31",
            "custom",
            "all",
        ]
    ),
)


def _fuzz(send, path: str, fields: list[str]) -> None:
    """Send `path` the fields in any combination (the first one also repeated) by `send`."""

    @given(
        known=st.fixed_dictionaries({}, optional=dict.fromkeys(fields, staff_values)),
        repeated=st.lists(staff_values, max_size=3),
    )
    @FUZZ_SETTINGS
    def run(known, repeated):
        data = dict(known)
        if repeated:
            data[fields[0]] = repeated
        response = send(path, data)
        assert response.status_code < 500, (path, data)

    run()


@pytest.fixture
def no_limits(settings):
    settings.RATE_LIMITS = dict.fromkeys(settings.RATE_LIMITS, (10**6, 60))


@pytest.fixture
def tickets(alice):
    general = TicketFactory(customer=alice, contact_email=alice.email)
    modify = TicketFactory(customer=alice, contact_email=alice.email, kind=Ticket.Kind.MODIFY_INFO)
    return general, modify


@pytest.mark.parametrize("who", ["agent_client", "supervisor_client"])
def test_fuzzed_staff_forms_never_get_a_5xx(request, who, tickets, alice, no_limits):
    client = request.getfixturevalue(who)
    general, modify = tickets
    ref = general.reference
    forms = {
        "/staff/bulk/": ["ticket", "action", "back", f"version-{ref}"],
        "/staff/views/": ["name", "query"],
        "/staff/views/999999999999999999999/delete/": ["x"],
        f"/staff/tickets/{ref}/assign/": ["assignee", "version"],
        f"/staff/tickets/{ref}/claim/": ["version"],
        f"/staff/tickets/{ref}/reply/": ["body", "canned", "version"],
        f"/staff/tickets/{ref}/note/": ["body", "version"],
        f"/staff/tickets/{ref}/priority/": ["priority", "version"],
        f"/staff/tickets/{ref}/merge/": ["into", "version"],
        f"/staff/tickets/{ref}/resolve/": ["note", "version"],
        f"/staff/tickets/{ref}/reject/": ["reason", "version"],
        f"/staff/tickets/{ref}/close/": ["version"],
        f"/staff/tickets/{ref}/reopen/": ["version"],
        f"/staff/tickets/{modify.reference}/approve/": ["version"],
        f"/staff/tickets/{ref}/registration/put-back/": ["version"],
        f"/staff/customers/{alice.number}/unfreeze/": ["reason", "freeze_version"],
        f"/staff/customers/{alice.number}/disclosures/new/": [
            "disclosed_to",
            "information",
            "legal_basis",
            "reference",
            "disclosed_at",
        ],
    }
    for path, fields in forms.items():
        _fuzz(client.post, path, fields)


@pytest.mark.parametrize("who", ["agent_client", "supervisor_client"])
def test_fuzzed_staff_pages_never_get_a_5xx(request, who, tickets, alice, no_limits):
    client = request.getfixturevalue(who)
    general = tickets[0]
    pages = {
        "/staff/": ["view", "status", "kind", "assignee", "q", "sort", "size", "cursor", "in_view"],
        "/staff/dashboard/": ["range", "start", "end"],
        "/staff/audit/": ["ticket", "customer", "action", "before", "verify"],
        "/staff/approvals/": ["page"],
        f"/staff/tickets/{general.reference}/": ["history"],
        f"/staff/tickets/{general.reference}/presence/": ["version"],
        f"/staff/tickets/{general.reference}/attachments/99999999999999999999/": ["x"],
        f"/staff/customers/{alice.number}/": ["x"],
        "/my/tickets/HD-AAAAAAAA/attachments/99999999999999999999/": ["x"],
    }
    for path, fields in pages.items():
        _fuzz(client.get, path, fields)


HUGE = "9" * 30  # past any integer column


def test_ids_past_any_integer_column_are_a_404_everywhere(alice_client, agent_client, alice):
    ticket = TicketFactory(customer=alice, contact_email=alice.email)
    ref = ticket.reference

    assert alice_client.get(f"/my/tickets/{ref}/attachments/{HUGE}/").status_code == 404
    assert agent_client.get(f"/staff/tickets/{ref}/attachments/{HUGE}/").status_code == 404
    assert agent_client.post(f"/staff/views/{HUGE}/delete/").status_code == 404
    assert alice_client.delete(f"/api/v1/auth/tokens/{HUGE}/").status_code == 404
