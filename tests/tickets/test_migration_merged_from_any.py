"""Tickets that had others merged into them before the stored flag say so after it."""

import pytest

from tests.migrations import migrate_latest, migrate_to

BEFORE = [("tickets", "0022_ticket_search_document")]
AFTER = [("tickets", "0023_ticket_merged_from_any")]


@pytest.fixture(autouse=True)
def _latest_schema_afterwards():
    yield
    migrate_latest()


@pytest.mark.django_db(transaction=True)
def test_the_tickets_something_was_merged_into_are_marked_and_no_other():
    apps = migrate_to(BEFORE)
    Ticket = apps.get_model("tickets", "Ticket")
    common = {"kind": "general", "subject": "s", "contact_email": "x@example.test"}
    survivor = Ticket.objects.create(reference="HD-AAAAAAA1", status="open", **common)
    duplicate = Ticket.objects.create(
        reference="HD-AAAAAAA2", status="closed", merged_into=survivor, **common
    )
    other = Ticket.objects.create(reference="HD-AAAAAAA3", status="open", **common)

    apps = migrate_to(AFTER)
    Ticket = apps.get_model("tickets", "Ticket")

    marked = set(Ticket.objects.filter(merged_from_any=True).values_list("pk", flat=True))
    assert marked == {survivor.pk}
    assert not Ticket.objects.get(pk=duplicate.pk).merged_from_any
    assert not Ticket.objects.get(pk=other.pk).merged_from_any
