from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from tickets.selectors.dashboard import dashboard_today
from tickets.services.stats import ticket_stats_rebuild


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


class Command(BaseCommand):
    help = (
        "Recompute the dashboard's daily figures from the tickets, for the last --days days "
        "(default 2) or --from/--to (both included), and their months' figures from the daily "
        "ones. Safe while the help desk runs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=2, metavar="N")
        parser.add_argument("--from", dest="start", metavar="YYYY-MM-DD")
        parser.add_argument("--to", dest="end", metavar="YYYY-MM-DD")

    def handle(self, *args, **options):
        today = dashboard_today()
        if options["start"] or options["end"]:
            start = _day(options["start"]) if options["start"] else None
            end = _day(options["end"]) if options["end"] else today
            if start is None:
                raise CommandError("--to needs --from")
        else:
            if options["days"] < 1:
                raise CommandError("--days must be at least 1")
            start, end = today - timedelta(days=options["days"] - 1), today
        if start > end:
            raise CommandError("--from comes after --to")
        rows = ticket_stats_rebuild(start=start, end=end)
        self.stdout.write(f"Rebuilt {start} to {end}: {rows} daily rows.")
