"""Existing tickets start their requester's version and last update at their own."""

from datetime import UTC, datetime

import pytest

from tests.migrations import migrate_to

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("latest_schema_afterwards"),
]


def test_a_ticket_read_before_the_deploy_keeps_its_version_and_last_update():
    before = ("tickets", "0027_ticket_subject_without_control_characters")
    Ticket = migrate_to([before]).get_model("tickets", "Ticket")
    common = {"kind": "general", "subject": "s", "contact_email": "x@example.test"}
    ticket = Ticket.objects.create(reference="HD-AAAAAAA1", status="open", version=7, **common)
    then = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=then)

    Ticket = migrate_to([("tickets", "0029_ticket_requester_version_backfill")]).get_model(
        "tickets", "Ticket"
    )

    row = Ticket.objects.get(pk=ticket.pk)
    assert (row.requester_version, row.requester_updated_at) == (7, then)
