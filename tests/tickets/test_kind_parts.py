"""The parts only one kind of ticket has are written by that kind's flow alone.

The staff ticket page reads field changes, registration changes and OpenSRS calls only for the
kinds in CHANGE_REQUEST_KINDS and OPENSRS_CALL_KINDS: a new writer elsewhere would make them
silently vanish from the page, so this test names the one module allowed to write each. (The
put-backs a freeze offers are registration changes too, written on the ticket it hands to a
supervisor: the change request, or a ticket the system opened, which the page also reads.)
"""

import ast
from pathlib import Path

import pytest

import accounts
import domains
import tickets
from tests.factories import CustomerFactory, TicketFactory
from tickets.models import Ticket

ROOTS = [Path(app.__file__).parent for app in (accounts, domains, tickets)]


def _production_modules() -> list[Path]:
    return [
        path
        for root in ROOTS
        for path in sorted(root.rglob("*.py"))
        if "migrations" not in path.parts and "tests" not in path.parts
    ]


def _writers(is_write) -> set[str]:
    """The modules (as app/…/name.py) with a node `is_write` accepts."""
    return {
        path.relative_to(ROOTS[0].parent).as_posix()
        for path in _production_modules()
        if any(map(is_write, ast.walk(ast.parse(path.read_text()))))
    }


def _constructs(model: str):
    def is_write(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr) == model
        )

    return is_write


def _records(action: str):
    """An audit_record(action=...) call with this action."""

    def is_write(node: ast.AST) -> bool:
        return (
            _constructs("audit_record")(node)
            and isinstance(node, ast.Call)
            and any(
                k.arg == "action" and isinstance(k.value, ast.Constant) and k.value.value == action
                for k in node.keywords
            )
        )

    return is_write


def test_only_the_change_request_flow_makes_field_and_registration_changes():
    assert _writers(_constructs("FieldChange")) == {"tickets/services/modify.py"}
    assert _writers(_constructs("RegistrationChange")) == {
        "tickets/services/registration.py",
        "tickets/services/registration_put_back.py",
    }


def test_only_the_password_resend_flow_records_opensrs_calls():
    assert _writers(_records("opensrs.call")) == {"tickets/services/password_resend.py"}


@pytest.mark.django_db
def test_a_general_ticket_page_shows_no_change_table_even_with_stray_rows(agent_client):
    # given a general ticket (the kind has no field changes) and a change row put on it by hand
    ticket = TicketFactory(customer=CustomerFactory(), kind=Ticket.Kind.GENERAL)
    ticket.changes.create(field="phone", old_value="1", new_value="2")

    # when / then: the page reads no changes for the kind, so shows none
    page = agent_client.get(f"/staff/tickets/{ticket.reference}/").content.decode()
    assert 'id="changes-heading"' not in page
