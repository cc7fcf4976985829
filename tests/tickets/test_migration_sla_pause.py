"""Tickets that were already waiting when the SLA pause arrived get their pause started."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.migrations import migrate_to

BEFORE = [("tickets", "0013_ticket_merged_into")]
AFTER = [("tickets", "0014_pause_waiting_tickets_sla")]

pytestmark = pytest.mark.usefixtures("latest_schema_afterwards")


@pytest.mark.django_db(transaction=True)
def test_waiting_tickets_from_before_the_pause_start_it_at_their_last_change():
    apps = migrate_to(BEFORE)
    Ticket = apps.get_model("tickets", "Ticket")
    waited_since = timezone.now() - timedelta(hours=5)
    common = {"kind": "general", "subject": "s", "contact_email": "x@example.test"}
    waiting = Ticket.objects.create(reference="HD-AAAAAAA1", status="awaiting_customer", **common)
    unverified = Ticket.objects.create(
        reference="HD-AAAAAAA2", status="awaiting_verification", verified_by="", **common
    )
    open_one = Ticket.objects.create(reference="HD-AAAAAAA3", status="open", **common)
    Ticket.objects.filter(pk__in=[waiting.pk, unverified.pk, open_one.pk]).update(
        updated_at=waited_since
    )

    apps = migrate_to(AFTER)
    Ticket = apps.get_model("tickets", "Ticket")

    assert Ticket.objects.get(pk=waiting.pk).sla_paused_at == waited_since
    assert Ticket.objects.get(pk=unverified.pk).sla_paused_at == waited_since
    assert Ticket.objects.get(pk=open_one.pk).sla_paused_at is None
