"""The monthly rows are filled from the daily rows already kept."""

from datetime import date

import pytest

from tests.migrations import migrate_to

BEFORE = [("tickets", "0038_ticket_monthly_stats")]
AFTER = [("tickets", "0039_ticket_monthly_stats_backfill")]

pytestmark = pytest.mark.usefixtures("latest_schema_afterwards")


@pytest.mark.django_db(transaction=True)
def test_the_backfill_sums_the_daily_rows_by_month():
    apps = migrate_to(BEFORE)
    TicketDailyStat = apps.get_model("tickets", "TicketDailyStat")
    TicketDailyStat.objects.all().delete()
    for day, kind, agent, created, seconds in [
        (date(2025, 12, 31), "general", 0, 2, 0),
        (date(2026, 1, 1), "general", 0, 3, 0),
        (date(2026, 1, 31), "general", 0, 4, 0),
        (date(2026, 1, 15), "general", 7, 0, 3600),
        (date(2026, 1, 16), "general", 7, 0, 1800),
        (date(2026, 1, 16), "opt_out", 0, 1, 0),
    ]:
        TicketDailyStat.objects.create(
            day=day, kind=kind, agent_key=agent, created=created, resolution_seconds=seconds
        )

    apps = migrate_to(AFTER)

    TicketMonthlyStat = apps.get_model("tickets", "TicketMonthlyStat")
    rows = TicketMonthlyStat.objects.values_list(
        "month", "kind", "agent_key", "created", "resolution_seconds"
    )
    assert sorted(rows) == [
        (date(2025, 12, 1), "general", 0, 2, 0),
        (date(2026, 1, 1), "general", 0, 7, 0),
        (date(2026, 1, 1), "general", 7, 0, 5400),
        (date(2026, 1, 1), "opt_out", 0, 1, 0),
    ]
    migrate_to(BEFORE)
    assert not TicketMonthlyStat.objects.exists()
