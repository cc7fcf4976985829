"""Satisfaction links mailed before they named their resolution name the one they asked about."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.migrations import migrate_to

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("latest_schema_afterwards"),
]


def test_only_a_link_of_the_current_resolution_names_it():
    apps = migrate_to([("tickets", "0029_ticket_requester_version_backfill")])
    Ticket, Verification = (
        apps.get_model("tickets", "Ticket"),
        apps.get_model("tickets", "Verification"),
    )
    resolved = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    common = {"kind": "general", "subject": "s", "contact_email": "x@example.test"}
    ticket = Ticket.objects.create(
        reference="HD-AAAAAAA1", status="resolved", resolved_at=resolved, **common
    )
    reopened = Ticket.objects.create(reference="HD-AAAAAAA2", status="open", **common)

    def link(on, n, created_at):
        row = Verification.objects.create(
            ticket=on,
            purpose="satisfaction",
            sent_to="x@example.test",
            token_hash=f"{n:064d}",
            expires_at=created_at + timedelta(days=30),
        )
        Verification.objects.filter(pk=row.pk).update(created_at=created_at)
        return row.pk

    earlier = link(ticket, 1, resolved - timedelta(days=2))  # mailed for a resolution since undone
    current = link(ticket, 2, resolved)
    open_again = link(reopened, 3, resolved)

    Verification = migrate_to([("tickets", "0031_verification_resolution_at_backfill")]).get_model(
        "tickets", "Verification"
    )

    named = dict(Verification.objects.values_list("pk", "resolution_at"))
    assert named == {earlier: None, current: resolved, open_again: None}
