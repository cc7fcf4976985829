"""Messages held from the customer by their ticket's state keep being held, by their own mark."""

import pytest

from tests.migrations import migrate_to

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("latest_schema_afterwards"),
]


def test_an_unconfirmed_openers_words_are_marked_and_nothing_else_is():
    Ticket = migrate_to([("tickets", "0031_verification_resolution_at_backfill")]).get_model(
        "tickets", "Ticket"
    )
    common = {"kind": "general", "subject": "s", "contact_email": "x@example.test"}
    unproven = Ticket.objects.create(reference="HD-AAAAAAA1", customer_by_contact=True, **common)
    confirmed = Ticket.objects.create(
        reference="HD-AAAAAAA2",
        customer_by_contact=True,
        verified_at="2026-11-01T09:30:00Z",
        **common,
    )
    own = Ticket.objects.create(reference="HD-AAAAAAA3", **common)
    Message = Ticket._meta.apps.get_model("tickets", "Message")
    rows = {
        "opener": Message.objects.create(ticket=unproven, author="customer", body="b"),
        "mail": Message.objects.create(
            ticket=unproven, author="customer", body="b", sender_authentication={"trusted": True}
        ),
        "staff": Message.objects.create(ticket=unproven, author="staff", body="b"),
        "confirmed": Message.objects.create(ticket=confirmed, author="customer", body="b"),
        "own": Message.objects.create(ticket=own, author="customer", body="b"),
    }

    Message = migrate_to([("tickets", "0033_message_unproven_backfill")]).get_model(
        "tickets", "Message"
    )

    marked = {name for name, row in rows.items() if Message.objects.get(pk=row.pk).unproven}
    assert marked == {"opener"}


def test_an_unverified_change_requests_note_is_marked_and_a_verified_ones_is_not():
    Ticket = migrate_to([("tickets", "0033_message_unproven_backfill")]).get_model(
        "tickets", "Ticket"
    )
    common = {"kind": "modify_info", "subject": "s", "contact_email": "x@example.test"}
    waiting = Ticket.objects.create(reference="HD-AAAAAAA1", **common)
    verified = Ticket.objects.create(
        reference="HD-AAAAAAA2", verified_at="2026-11-01T09:30:00Z", **common
    )
    Message = Ticket._meta.apps.get_model("tickets", "Message")
    rows = {
        "note": Message.objects.create(ticket=waiting, author="customer", body="b"),
        "staff": Message.objects.create(ticket=waiting, author="staff", body="b"),
        "verified": Message.objects.create(ticket=verified, author="customer", body="b"),
    }

    Message = migrate_to([("tickets", "0034_message_unproven_change_notes")]).get_model(
        "tickets", "Message"
    )

    marked = {name for name, row in rows.items() if Message.objects.get(pk=row.pk).unproven}
    assert marked == {"note"}
