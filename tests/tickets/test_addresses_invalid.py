"""`addresses_invalid`: stored addresses the one address rule refuses (rows older than it).

The rule guards every write today; these rows are written around it (a queryset update), as
rows stored before it are. The command lists where each is and why, and changes nothing.
"""

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Customer
from domains.models import Domain, RegistrationChange
from helpdesk.validators import ADDRESS_INVALID
from tests.factories import DomainFactory, TicketFactory
from tickets.models import ActionLog, FieldChange, Ticket

pytestmark = pytest.mark.django_db

S = Ticket.Status
QUOTED = '"victim@x.test,"@evil.example'
LITERAL = "victim@[192.0.2.1]"
ROUTED = "victim%evil.example@relay.test"
BIDI = "ali\u202eecila@example.test"


def run() -> str:
    out = StringIO()
    call_command("addresses_invalid", stdout=out)
    return out.getvalue()


def _stored(model, pk, **values) -> None:
    """Write `values` past the validators, as older code could."""
    model.objects.filter(pk=pk).update(**values)


def _ticket(address: str, status: str) -> Ticket:
    ticket = TicketFactory(customer=None, contact_email="x@example.test", status=status)
    _stored(Ticket, ticket.pk, contact_email=address)
    return ticket


def test_every_stored_address_that_fails_the_rule_is_named_with_where_and_why(alice, agent):
    # given an address failing the rule in each place one is stored, and valid ones beside them
    _stored(Customer, alice.pk, email=QUOTED)
    open_ticket = _ticket(LITERAL, S.OPEN)
    _ticket("dan@example.test", S.OPEN)
    _ticket(ROUTED, S.CLOSED)
    _ticket(LITERAL, S.RESOLVED)
    _stored(User, agent.pk, email=ROUTED)
    domain = DomainFactory(customer=None, registrant_email="owner@example.test")
    _stored(Domain, domain.pk, registrant_email=LITERAL, admin_email=QUOTED)
    change_ticket = TicketFactory(customer=None, status=S.OPEN)
    FieldChange.objects.create(ticket=change_ticket, field="email", new_value=ROUTED)
    FieldChange.objects.create(ticket=change_ticket, field="phone", new_value="not@an@address")
    pending = RegistrationChange.objects.create(
        ticket=change_ticket, domain=domain, old_email=QUOTED, new_email="new@example.test"
    )
    RegistrationChange.objects.create(
        ticket=change_ticket,
        domain=domain,
        purpose=RegistrationChange.Purpose.PUT_BACK,
        old_email=QUOTED,
        new_email=QUOTED,
        status=RegistrationChange.Status.DONE,
    )
    before = ActionLog.objects.count()

    # when the command runs
    output = run()

    # then each is named by its model, its key and field, with the address and the rule's
    # message; open tickets are listed, the two closed ones only counted
    lines = output.splitlines()
    assert lines == [
        f"accounts.customer {alice.number} email: {QUOTED} ({ADDRESS_INVALID})",
        f"tickets.ticket {open_ticket.reference} contact_email: {LITERAL} ({ADDRESS_INVALID})",
        f"auth.user agent email: {ROUTED} ({ADDRESS_INVALID})",
        f"domains.domain {domain.name} registrant_email: {LITERAL} ({ADDRESS_INVALID})",
        f"domains.domain {domain.name} admin_email: {QUOTED} ({ADDRESS_INVALID})",
        f"tickets.fieldchange {change_ticket.reference} new_value: {ROUTED} ({ADDRESS_INVALID})",
        f"domains.registrationchange {pending.pk} old_email: {QUOTED} ({ADDRESS_INVALID})",
        "2 tickets no longer open hold such a contact address.",
        "7 addresses fail the rule.",
    ]
    # and nothing changed: the rows keep their addresses, the audit chain has no new row
    assert Customer.objects.get(pk=alice.pk).email == QUOTED
    assert Ticket.objects.get(pk=open_ticket.pk).contact_email == LITERAL
    assert ActionLog.objects.count() == before


def test_a_hidden_character_in_an_address_is_written_out_not_sent_to_the_terminal(alice):
    _stored(Customer, alice.pk, email=BIDI)

    output = run()

    assert "\u202e" not in output
    assert "ali<U+202E>ecila@example.test" in output


def test_a_clean_database_is_said_to_be_clean(alice):
    TicketFactory(customer=alice, status=S.CLOSED)

    assert run().splitlines() == ["No address on record or in an open request fails the rule."]


def test_the_reads_stay_the_same_few_whatever_the_rows_and_take_only_their_columns(alice):
    def queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            run()
        return [query["sql"] for query in captured.captured_queries]

    # given one open and one closed ticket failing the rule
    _ticket(LITERAL, S.OPEN)
    _ticket(LITERAL, S.CLOSED)
    few = queries()

    # when there are many more
    for _ in range(30):
        _ticket(LITERAL, S.OPEN)
        _ticket(LITERAL, S.CLOSED)
    many = queries()

    # then the command reads as many times (each table in chunks, not a query per row), and
    # the tickets' reads name only the reference and the contact address
    assert len(many) == len(few)
    ticket_reads = [sql for sql in many if 'FROM "tickets_ticket"' in sql]
    assert len(ticket_reads) == 2
    for sql in ticket_reads:
        selected = sql.split(" FROM ")[0]
        assert '"contact_email"' in selected
        assert '"subject"' not in selected
