from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand

from helpdesk.exceptions import ApplicationError
from helpdesk.refusals import refusal_message
from tickets.selectors.stored_text import stored_text_rows
from tickets.services.stored_text import stored_text_clean, stored_text_visible

ACTOR = "command:clean_hidden_characters"


class Command(BaseCommand):
    help = (
        "List stored names, subjects, notes and comments that hold bidi overrides, isolates, "
        "separators, a BOM or control characters (written before they were refused). With "
        "--fix, take them out, each change on the audit chain; addresses on record and "
        "requested values are only listed, to be changed through their verified flow."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--fix", action="store_true", help="clean the rows (default: only list them)"
        )

    def handle(self, *args, **options):
        found = cleaned = by_hand = 0
        # Listed first, then cleaned: cleaning a row must not move the scan past another.
        for row in list(stored_text_rows()):
            found += 1
            for field, value in row.values.items():
                self.stdout.write(
                    f"{row.kind.label} {row.pk} {field}: {stored_text_visible(value)}"
                )
            if any(field in row.kind.by_hand for field in row.values):
                by_hand += 1
                self.stdout.write("  an address or requested value: change it by hand")
            if not options["fix"]:
                continue
            try:
                changes = stored_text_clean(label=row.kind.label, pk=row.pk, actor=ACTOR)
            except (ApplicationError, ValidationError) as exc:
                by_hand += 1
                self.stdout.write(f"  not cleaned: {refusal_message(exc)}")
                continue
            if changes:
                cleaned += 1
            for field, change in changes.items():
                self.stdout.write(f"  {field} -> {change['to']}")
        verb = "cleaned" if options["fix"] else "would be cleaned with --fix"
        self.stdout.write(
            f"{found} rows hold hidden characters; {cleaned} {verb}; "
            f"{by_hand} to be changed by hand."
        )
