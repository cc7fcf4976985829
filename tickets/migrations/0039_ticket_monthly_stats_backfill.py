from django.db import migrations
from django.db.models import Sum
from django.db.models.functions import TruncMonth

# The counters as they stand in this migration (tickets.models.STAT_FIELDS may grow later).
FIELDS = (
    "created",
    "first_responses",
    "first_response_seconds",
    "resolved",
    "resolution_seconds",
    "sla_met",
    "sla_breached",
    "closed",
)


def backfill(apps, schema_editor):
    """Every month's rows: its daily rows summed."""
    TicketDailyStat = apps.get_model("tickets", "TicketDailyStat")
    TicketMonthlyStat = apps.get_model("tickets", "TicketMonthlyStat")
    sums = (
        TicketDailyStat.objects.order_by()
        .annotate(month=TruncMonth("day"))
        .values("month", "kind", "agent_key")
        .annotate(**{field: Sum(field) for field in FIELDS})
    )
    TicketMonthlyStat.objects.all().delete()
    TicketMonthlyStat.objects.bulk_create(
        [TicketMonthlyStat(**row) for row in sums.iterator(chunk_size=2000)], batch_size=2000
    )


def forget(apps, schema_editor):
    apps.get_model("tickets", "TicketMonthlyStat").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("tickets", "0038_ticket_monthly_stats")]

    operations = [migrations.RunPython(backfill, forget)]
