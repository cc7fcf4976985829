from django.core.management.base import BaseCommand

from tickets.services.contact_link import tickets_link_by_contact


class Command(BaseCommand):
    help = (
        "Link general-help tickets sent without logging in to the customer whose email on "
        "record sent them (only those sent while the address was that customer's). Safe to run "
        "again: linked tickets are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=200, help="customers a transaction")

    def handle(self, *args, **options):
        batch_size = max(1, options["batch_size"])
        total, after = 0, 0
        while True:
            linked, last = tickets_link_by_contact(after=after, batch_size=batch_size)
            total += linked
            if last is None:
                break
            after = last
        self.stdout.write(f"Linked {total} tickets to their customers.")
