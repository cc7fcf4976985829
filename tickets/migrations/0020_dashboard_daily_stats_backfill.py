from django.db import migrations
from django.db.models import OuterRef, Subquery

from tickets.services.stats import SOURCE_FIELDS, ticket_stat_figures_sum


def backfill(apps, schema_editor):
    """First responses from the staff replies already sent, then every day's figures."""
    Ticket = apps.get_model("tickets", "Ticket")
    Message = apps.get_model("tickets", "Message")
    TicketDailyStat = apps.get_model("tickets", "TicketDailyStat")
    first = Message.objects.filter(ticket=OuterRef("pk"), author="staff", internal=False).order_by(
        "created_at", "id"
    )
    Ticket.objects.filter(first_response_at__isnull=True).update(
        first_response_at=Subquery(first.values("created_at")[:1]),
        first_response_by=Subquery(first.values("author_user")[:1]),
    )
    rows = Ticket.objects.order_by().values_list(*SOURCE_FIELDS, named=True)
    figures = ticket_stat_figures_sum(rows.iterator(chunk_size=5000))
    TicketDailyStat.objects.all().delete()
    TicketDailyStat.objects.bulk_create(
        [
            TicketDailyStat(day=day, kind=kind, agent_key=agent, **amounts)
            for (day, kind, agent), amounts in sorted(figures.items())
        ],
        batch_size=2000,
    )


def forget(apps, schema_editor):
    apps.get_model("tickets", "TicketDailyStat").objects.all().delete()
    apps.get_model("tickets", "Ticket").objects.update(first_response_at=None, first_response_by=None)


class Migration(migrations.Migration):
    dependencies = [("tickets", "0019_dashboard_daily_stats")]

    operations = [migrations.RunPython(backfill, forget)]
