"""`clean_hidden_characters`: rows stored before the validators refused hidden characters.

A name or subject written before the rule (or straight into the database) may still hold a
right-to-left override; the command lists them, and with --fix cleans them through the
service, each change on the audit chain, leaving addresses on record to their verified flow.
"""

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.utils import timezone

from accounts.models import ApiToken, Customer
from accounts.services import api_token_issue
from tests.factories import TicketFactory
from tickets.audit import audit_verify
from tickets.models import ActionLog, Disclosure, Message, Satisfaction, SavedView, Ticket

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("clean_hidden_characters", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def stored(alice, agent, supervisor):
    """Rows holding hidden characters, written past the validators as older code could."""
    Customer.objects.filter(pk=alice.pk).update(full_name="Alice\u202e Tan")
    ticket = TicketFactory(customer=alice, subject="Refund\u2028for Ali\u202eecila")
    Ticket.objects.filter(pk=ticket.pk).update(subject="Refund\u2028for Ali\u202eecila")
    disclosure = Disclosure.objects.create(
        customer=alice,
        recorded_by=supervisor,
        disclosed_to="Police\u2067",
        information="Name.\nAddress\u202e.",
        legal_basis="Court order",
        disclosed_at=timezone.now(),
    )
    Satisfaction.objects.create(
        ticket=ticket,
        answer="no",
        comment="Still\ufeff down.\nSince noon.",
        answered_at=timezone.now(),
    )
    SavedView.objects.create(owner=agent, name="Mine\x1b", query="")
    Message.objects.create(
        ticket=ticket, author="customer", body="Refund to\u202e 1234\nThanks", channel="portal"
    )
    Group.objects.create(name="Agents\u202esrepus")
    agent.first_name = "Ag\u202eent"
    agent.save(update_fields=["first_name"])
    token = api_token_issue(user=agent, name="billing").token
    ApiToken.objects.filter(pk=token.pk).update(name="billing\u2066")
    return {"alice": alice, "ticket": ticket, "disclosure": disclosure, "agent": agent}


def test_by_default_it_only_lists_the_rows(stored):
    audit_rows = ActionLog.objects.count()

    out = run()

    assert "accounts.customer" in out and "full_name: Alice<U+202E> Tan" in out
    assert "tickets.ticket" in out and "subject: Refund<U+2028>for Ali<U+202E>ecila" in out
    assert "tickets.disclosure" in out and "tickets.satisfaction" in out
    assert "tickets.savedview" in out and "auth.group" in out and "auth.user" in out
    assert "accounts.apitoken" in out and "tickets.message" in out
    assert "9 rows hold hidden characters; 0 would be cleaned with --fix" in out
    # nothing is changed, nothing recorded
    assert Customer.objects.get(pk=stored["alice"].pk).full_name == "Alice\u202e Tan"
    assert ActionLog.objects.count() == audit_rows


def test_fix_cleans_every_row_on_the_audit_chain(stored):
    version = Ticket.objects.get(pk=stored["ticket"].pk).version

    out = run("--fix")

    # then each value is cleaned: line ends as spaces (one line) or breaks (several lines)
    assert "9 rows hold hidden characters; 9 cleaned; 0 to be changed by hand" in out
    assert Customer.objects.get(pk=stored["alice"].pk).full_name == "Alice Tan"
    ticket = Ticket.objects.get(pk=stored["ticket"].pk)
    assert ticket.subject == "Refund for Aliecila"
    assert ticket.version > version  # open pages see the ticket changed
    disclosure = Disclosure.objects.get()
    assert (disclosure.disclosed_to, disclosure.information) == ("Police", "Name.\nAddress.")
    assert Satisfaction.objects.get().comment == "Still down.\nSince noon."
    assert SavedView.objects.get().name == "Mine"
    assert Group.objects.filter(name="Agentssrepus").exists()
    stored["agent"].refresh_from_db()
    assert stored["agent"].first_name == "Agent"
    assert ApiToken.objects.get().name == "billing"
    assert Message.objects.get().body == "Refund to 1234\nThanks"
    # each change is an audit row naming the row, what it held (written out) and what it holds
    rows = ActionLog.objects.filter(action="text.cleaned", actor="command:clean_hidden_characters")
    assert rows.count() == 9
    row = rows.get(details__model="tickets.ticket")
    assert row.details["changes"] == {
        "subject": {"from": "Refund<U+2028>for Ali<U+202E>ecila", "to": "Refund for Aliecila"}
    }
    assert rows.get(details__model="tickets.disclosure").customer_id == stored["alice"].pk
    assert audit_verify().ok
    # and a second run finds nothing left
    assert "0 rows hold hidden characters" in run("--fix")


def test_an_address_on_record_is_listed_and_left_to_a_person(alice):
    Customer.objects.filter(pk=alice.pk).update(email="alice@exa\u202emple.test")

    out = run("--fix")

    assert "email: alice@exa<U+202E>mple.test" in out
    assert "1 rows hold hidden characters; 0 cleaned; 1 to be changed by hand" in out
    assert Customer.objects.get(pk=alice.pk).email == "alice@exa\u202emple.test"
    assert not ActionLog.objects.filter(action="text.cleaned").exists()


def test_a_value_that_cleaned_would_be_another_rows_is_left_to_a_person(agent):
    SavedView.objects.create(owner=agent, name="Mine", query="a=1")
    SavedView.objects.create(owner=agent, name="Mine\u202e", query="b=2")

    out = run("--fix")

    assert "not cleaned" in out
    assert "1 rows hold hidden characters; 0 cleaned; 1 to be changed by hand" in out
    assert SavedView.objects.filter(name="Mine\u202e").exists()


def test_joiners_and_line_breaks_are_not_hidden_characters(alice, supervisor):
    Customer.objects.filter(pk=alice.pk).update(
        full_name="\u0645\u06cc\u200c\u062e \u0b95\u0bcd\u200d"
    )
    Disclosure.objects.create(
        customer=alice,
        recorded_by=supervisor,
        disclosed_to="Police",
        information="Line one.\r\n\tLine two.",
        legal_basis="Court order",
        disclosed_at=timezone.now(),
    )

    assert "0 rows hold hidden characters" in run()


def test_a_cleaned_message_moves_the_etag_of_whoever_reads_it(alice, alice_client, agent_client):
    # given a message of Alice's ticket holding a hidden character, read by her and by staff
    ticket = TicketFactory(customer=alice)
    Message.objects.create(
        ticket=ticket, author="customer", body="Refund to\u202e 1234", channel="portal"
    )
    detail = f"/api/v1/tickets/{ticket.reference}/"
    hers, staffs = alice_client.get(detail), agent_client.get(detail)

    # when the command cleans it
    run("--fix")

    # then both read the cleaned text under a new ETag
    for client, before in ((alice_client, hers), (agent_client, staffs)):
        after = client.get(detail, HTTP_IF_NONE_MATCH=before["ETag"])
        assert [m["body"] for m in after.json()["messages"]] == ["Refund to 1234"]
        assert after["ETag"] != before["ETag"]
