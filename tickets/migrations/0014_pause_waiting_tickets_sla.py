from django.db import migrations
from django.db.models import F

# Tickets already waiting on the customer or on verification when the SLA pause arrived
# (0011) never had their pause started; their last change is when they began to wait.
WAITING = ("awaiting_customer", "awaiting_verification")


def pause_waiting_tickets(apps, schema_editor):
    Ticket = apps.get_model("tickets", "Ticket")
    Ticket.objects.filter(status__in=WAITING, sla_paused_at__isnull=True).update(
        sla_paused_at=F("updated_at")
    )


class Migration(migrations.Migration):
    dependencies = [("tickets", "0013_ticket_merged_into")]

    operations = [migrations.RunPython(pause_waiting_tickets, migrations.RunPython.noop)]
