from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.roles import AGENTS, SUPERVISORS
from accounts.selectors import customer_get_by_email, login_named_exists
from accounts.services import customer_ensure, roles_ensure, staff_user_ensure
from domains.services import domain_ensure
from tickets.models import Ticket
from tickets.selectors.tickets import customer_has_ticket
from tickets.services import request_general
from tickets.services.registration_warnings import registration_warnings_sweep

STAFF = [
    ("agent", "agent-demo-pass", AGENTS, False),
    ("supervisor", "supervisor-demo-pass", SUPERVISORS, False),
    ("admin", "admin-demo-pass", SUPERVISORS, True),
]
CUSTOMER_LOGINS = ["alice@example.test", "bob@example.test"]


class Command(BaseCommand):
    help = "Load the demo data of CONTRACT.md (idempotent; refused when DEBUG=0)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="allow with DEBUG=0 (tests)")

    @transaction.atomic
    def handle(self, *args, force=False, **options):
        """Long only because it spells out each demo record of CONTRACT.md, one after another."""
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo loads known passwords: it runs only with DEBUG=1.")
        # With DEBUG=0 (--force) a login or customer already there is left as it is: the demo
        # passwords are public, and reset on a real `admin` they would let anyone in.
        kept = (
            set()
            if settings.DEBUG
            else {name for name, *_ in STAFF if login_named_exists(username=name)}
            | {email for email in CUSTOMER_LOGINS if customer_get_by_email(email=email)}
        )
        roles_ensure()
        for username, password, role, superuser in STAFF:
            if username not in kept:
                staff_user_ensure(
                    username=username, password=password, role=role, superuser=superuser
                )
        alice = customer_ensure(
            email="alice@example.test",
            full_name="Alice Tan",
            password=None if "alice@example.test" in kept else "alice-demo-pass",
            phone="+60312345678",
            address_line1="12 Jalan Ampang",
            city="Kuala Lumpur",
            state="Wilayah Persekutuan",
            postcode="50450",
            country="MY",
            card_brand="Visa",
            card_last4="4242",
            card_token="tok_demo_alice",
        )
        bob = customer_ensure(
            email="bob@example.test",
            full_name="Bob Lim",
            password=None if "bob@example.test" in kept else "bob-demo-pass",
            phone="+6041234567",
            address_line1="8 Lebuh Pantai",
            city="George Town",
            state="Pulau Pinang",
            postcode="10300",
            country="MY",
            is_reseller=True,
            reseller_newsletters=True,
        )
        carol = customer_ensure(
            email="carol@example.test",
            full_name="Carol Wong",
            phone="+6075551234",
            city="Johor Bahru",
            country="MY",
        )
        domain_ensure(name="alice-shop.test", customer=alice, registrant_email="alice@example.test")
        domain_ensure(
            name="bob-reseller.test", customer=bob, registrant_email="dns-admin@bob-reseller.test"
        )
        domain_ensure(
            name="stale-mail.test",
            customer=carol,
            registrant_email="carol@defunct.test",
            bouncing=True,
        )
        if not customer_has_ticket(customer=alice, kind=Ticket.Kind.GENERAL):
            request_general(
                subject="Website is slow in the evenings",
                body="My shop site alice-shop.test loads slowly after 8 pm. Can you check?",
                contact_email=alice.email,
                customer=alice,
                actor=alice,
            )
        # Carol hears at once that stale-mail.test's registration address bounces, and Bob that
        # bob-reseller.test's is a role address at the domain itself (the daily sweep would tell
        # them at 06:30); the sweep never tells anyone twice within 90 days.
        registration_warnings_sweep()
        self.stdout.write("Demo data ready. Logins:")
        for username, password, role, _superuser in STAFF:
            self.stdout.write(f"  staff     {username:<22} {password:<24} {role}")
        self.stdout.write(
            "  customer  alice@example.test     alice-demo-pass          owns alice-shop.test"
        )
        self.stdout.write(
            "  customer  bob@example.test       bob-demo-pass            reseller: owns "
            "bob-reseller.test, registration email dns-admin@bob-reseller.test"
        )
        self.stdout.write(
            "  customer  Carol Wong: no login; stale-mail.test's registration email bounces"
        )
        if kept:
            self.stdout.write(
                "Left as they were, passwords unchanged (DEBUG=0 resets no login): "
                + ", ".join(sorted(kept))
            )
