from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from helpdesk.exceptions import ApplicationError
from tickets.services import OPT_OUT_LISTS, mailing_send


class Command(BaseCommand):
    help = (
        "Queue a mailing to every customer subscribed to a list (never to one who opted out); "
        "the worker sends it. Running it again with the same content queues only what is missing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--list", dest="list_name", required=True, choices=OPT_OUT_LISTS)
        parser.add_argument("--subject", required=True)
        body = parser.add_mutually_exclusive_group(required=True)
        body.add_argument("--body", help="the text of the mailing")
        body.add_argument("--body-file", type=Path, help="a UTF-8 text file with the mailing")
        parser.add_argument(
            "--mailing-id",
            help="names this mailing (default: a digest of list, subject and body); "
            "reuse it to resume, change it to send the same text again",
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, **options):
        body = options["body"]
        if options["body_file"] is not None:
            try:
                body = options["body_file"].read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"cannot read {options['body_file']}: {exc}") from exc
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            queued = mailing_send(
                list_name=options["list_name"],
                subject=options["subject"],
                body_text=body,
                actor="command:send_mailing",
                mailing_id=options["mailing_id"],
                batch_size=options["batch_size"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{queued} emails queued.")
