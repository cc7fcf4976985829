from django.core.management.base import BaseCommand

from tickets.selectors.stored_addresses import addresses_invalid, tickets_closed_addresses_invalid
from tickets.services.stored_text import stored_text_visible


class Command(BaseCommand):
    help = (
        "List the stored addresses the one address rule refuses (stored before it, or written "
        "around it): customers' emails on record, open tickets' contact addresses (closed "
        "tickets' are counted), logins' emails, domains' registration emails, pending email "
        "and registration changes. A customer whose email on record is listed gets no mail "
        "and cannot make a request without logging in. Reads only; each address changes "
        "through the flow that verifies it."
    )

    def handle(self, *args, **options):
        found = 0
        for invalid in addresses_invalid():
            found += 1
            self.stdout.write(
                f"{invalid.model} {invalid.key} {invalid.field}: "
                f"{stored_text_visible(invalid.address)} ({invalid.reason})"
            )
        closed = tickets_closed_addresses_invalid()
        if closed:
            self.stdout.write(f"{closed} tickets no longer open hold such a contact address.")
        if found:
            self.stdout.write(f"{found} addresses fail the rule.")
        else:
            self.stdout.write("No address on record or in an open request fails the rule.")
