import re
import time

from django.core.management.base import BaseCommand, CommandError

from tickets.audit import GENESIS_HASH, audit_verify

_HASH = re.compile(r"^[0-9a-f]{64}$")


class Command(BaseCommand):
    help = (
        "Check the audit log's hash chain, its head and that every ticket is in it; "
        "exit 1 naming the first bad row. With --from-sequence N --expect-hash H (a head "
        "printed by audit_head and kept outside the database), only the rows after N are walked."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--from-sequence",
            type=int,
            metavar="N",
            help="start after row N, whose hash must be the one given by --expect-hash",
        )
        parser.add_argument(
            "--expect-hash",
            metavar="H",
            help="the trusted hash of row N (the `hash` that audit_head printed for it)",
        )
        parser.add_argument(
            "--progress", action="store_true", help="report the rows checked on stderr"
        )
        parser.add_argument(
            "--progress-interval",
            type=float,
            default=5.0,
            metavar="SECONDS",
            help="how often --progress reports (default 5 s)",
        )

    def handle(self, *args, **options):
        from_sequence, trusted_hash = self._start(options)
        report_progress = self._progress_reporter(options) if options["progress"] else None
        report = audit_verify(
            from_sequence=from_sequence, trusted_hash=trusted_hash, progress=report_progress
        )
        if report.ok:
            if from_sequence:
                self.stdout.write(
                    f"Audit log intact: {report.rows} rows after #{from_sequence} verified "
                    "from its trusted hash."
                )
            else:
                self.stdout.write(f"Audit log intact: {report.rows} rows, chain verified.")
            return
        where = (
            f" at row #{report.first_bad_sequence}" if report.first_bad_sequence is not None else ""
        )
        self.stderr.write(f"Audit log BROKEN{where}: {report.problem} ({report.rows} rows read).")
        raise SystemExit(1)

    def _start(self, options) -> tuple[int, str]:
        from_sequence, trusted_hash = options["from_sequence"], options["expect_hash"]
        if from_sequence is None and trusted_hash is None:
            return 0, GENESIS_HASH
        if from_sequence is None or trusted_hash is None:
            raise CommandError(
                "--from-sequence and --expect-hash go together: a starting row is only "
                "worth skipping to with the hash it had when it was last verified."
            )
        if from_sequence < 0:
            raise CommandError("--from-sequence must be 0 or more.")
        trusted_hash = trusted_hash.strip().lower()
        if not _HASH.match(trusted_hash):
            raise CommandError("--expect-hash must be a SHA-256 hash: 64 hexadecimal digits.")
        return from_sequence, trusted_hash

    def _progress_reporter(self, options):
        interval = max(0.0, options["progress_interval"])
        started = time.monotonic()
        last = [started]

        def report(checked: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] < interval and checked < total:
                return
            last[0] = now
            share = f" ({checked * 100 // total}%)" if total else ""
            self.stderr.write(
                f"Audit log: {checked} of {total} rows checked{share}, {now - started:.1f} s"
            )

        return report
