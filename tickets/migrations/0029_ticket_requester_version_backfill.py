"""Start each existing ticket's requester version and last update at its own.

What a client holds today (the ETag, the version it sends back, the last update it shows) is
the ticket's version and update time: its requester's start from them, so nothing read before
the deploy is refused as stale or seen to move.
"""

from django.db import migrations
from django.db.models import F


def backfill(apps, schema_editor):
    Ticket = apps.get_model("tickets", "Ticket")
    Ticket.objects.update(requester_version=F("version"), requester_updated_at=F("updated_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0028_ticket_requester_version"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
