from django.core.management.base import BaseCommand

from tickets.audit import audit_verify


class Command(BaseCommand):
    help = (
        "Check the audit log's hash chain, its head and that every ticket is in it; "
        "exit 1 naming the first bad row."
    )

    def handle(self, *args, **options):
        report = audit_verify()
        if report.ok:
            self.stdout.write(f"Audit log intact: {report.rows} rows, chain verified.")
            return
        where = (
            f" at row #{report.first_bad_sequence}" if report.first_bad_sequence is not None else ""
        )
        self.stderr.write(f"Audit log BROKEN{where}: {report.problem} ({report.rows} rows read).")
        raise SystemExit(1)
