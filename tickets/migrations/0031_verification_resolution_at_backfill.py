"""Name the resolution each satisfaction link already mailed asks about.

A link issued with or after its ticket's current resolution asks about that one; a link older
than it (the ticket was reopened and resolved again since), or on a ticket not resolved now,
names none and takes no answer, as it would from here on.
"""

from django.db import migrations
from django.db.models import F, OuterRef, Subquery


def backfill(apps, schema_editor):
    Ticket = apps.get_model("tickets", "Ticket")
    Verification = apps.get_model("tickets", "Verification")
    resolved_at = Ticket.objects.filter(pk=OuterRef("ticket_id")).values("resolved_at")[:1]
    Verification.objects.filter(
        purpose="satisfaction", ticket__resolved_at__lte=F("created_at")
    ).update(resolution_at=Subquery(resolved_at))


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0030_verification_resolution_at"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
