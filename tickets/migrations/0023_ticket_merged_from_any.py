"""Whether any ticket was merged into a ticket, stored on it (services.merge sets it).

The column comes with its default, so adding it writes no row; only the tickets something was
merged into are written, found through the index of `merged_into`.
"""

from django.db import migrations, models


def merged_from_any_fill(apps, schema_editor):
    Ticket = apps.get_model("tickets", "Ticket")
    survivors = Ticket.objects.filter(merged_into__isnull=False).values("merged_into")
    Ticket.objects.filter(pk__in=survivors).update(merged_from_any=True)


class Migration(migrations.Migration):
    dependencies = [("tickets", "0022_ticket_search_document")]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="merged_from_any",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.RunPython(merged_from_any_fill, migrations.RunPython.noop),
    ]
