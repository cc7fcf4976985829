from django.core.management.base import BaseCommand

from accounts.selectors import login_addresses_shared


class Command(BaseCommand):
    help = (
        "List the addresses more than one login holds (as email or username, in any case or "
        "Unicode spelling), and logins holding a customer's email on record that are not that "
        "customer's: made before the rule that refuses them. A password reset for such an "
        "address reaches every login holding it. Reads only; an administrator decides which "
        "login keeps each address (the admin's user pages)."
    )

    def handle(self, *args, **options):
        found = 0
        for shared in login_addresses_shared():
            found += 1
            owner = f" (email on record of customer {shared.customer})" if shared.customer else ""
            self.stdout.write(f"{shared.address}{owner}: logins {', '.join(shared.logins)}")
        if found:
            self.stdout.write(f"{found} addresses held against the rule.")
        else:
            self.stdout.write("No login shares an address.")
