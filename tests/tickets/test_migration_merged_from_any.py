"""Tickets that had others merged into them before the stored flag say so after it."""

import pytest

from tests.migrations import migrate_to

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("latest_schema_afterwards"),
]


def test_the_tickets_something_was_merged_into_are_marked_and_no_other():
    Ticket = migrate_to([("tickets", "0022_ticket_search_document")]).get_model("tickets", "Ticket")
    common = {"kind": "general", "subject": "s", "contact_email": "x@example.test"}
    survivor = Ticket.objects.create(reference="HD-AAAAAAA1", status="open", **common)
    duplicate = Ticket.objects.create(
        reference="HD-AAAAAAA2", status="closed", merged_into=survivor, **common
    )
    other = Ticket.objects.create(reference="HD-AAAAAAA3", status="open", **common)

    Ticket = migrate_to([("tickets", "0023_ticket_merged_from_any")]).get_model("tickets", "Ticket")

    marked = set(Ticket.objects.filter(merged_from_any=True).values_list("pk", flat=True))
    assert marked == {survivor.pk}
    assert not Ticket.objects.get(pk=duplicate.pk).merged_from_any
    assert not Ticket.objects.get(pk=other.pk).merged_from_any
