import json

from django.core.management.base import BaseCommand
from django.utils import timezone

from tickets.audit import audit_head


class Command(BaseCommand):
    help = (
        "Print the audit chain's head (sequence, hash, time of its row), to keep outside the "
        "database: a log rewritten since no longer ends in a head that was shipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="one line of JSON")

    def handle(self, *args, **options):
        head = audit_head()
        created_at = head.created_at.isoformat() if head.created_at else None
        read_at = timezone.now().isoformat()
        if options["json"]:
            line = {
                "sequence": head.sequence,
                "hash": head.hash,
                "created_at": created_at,
                "read_at": read_at,
            }
            self.stdout.write(json.dumps(line, sort_keys=True))
            return
        self.stdout.write(
            f"Audit head #{head.sequence}: hash {head.hash}, "
            f"row written {created_at or 'never (empty chain)'}, read {read_at}."
        )
