"""Run the fake OpenSRS reseller API on a loopback address."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from domains.fake_opensrs import FakeOpenSRS, is_loopback


def _default_port() -> int:
    return urlsplit(settings.OPENSRS_URL).port or 8001


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the fake OpenSRS reseller API (demo domains, signature checks, reset emails)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=None, help="default: OPENSRS_URL's port")
        parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
        parser.add_argument("--username", default=None, help="default: OPENSRS_USERNAME")
        parser.add_argument("--key", default=None, help="default: OPENSRS_KEY")
        parser.add_argument(
            "--calls-log", default=None, help="default: var/opensrs-calls.jsonl under BASE_DIR"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host = options["host"]
        if not is_loopback(host):
            raise CommandError(
                f"Refusing to listen on {host!r}: the fake OpenSRS is loopback only."
            )
        port = options["port"] if options["port"] is not None else _default_port()
        calls_log = Path(
            options["calls_log"] or Path(settings.BASE_DIR) / "var" / "opensrs-calls.jsonl"
        )
        try:
            server = FakeOpenSRS(
                host,
                port,
                username=options["username"] or settings.OPENSRS_USERNAME,
                key=options["key"] or settings.OPENSRS_KEY,
                calls_log=calls_log,
            )
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from exc
        self.stdout.write(
            f"Fake OpenSRS listening on {server.url} as {server.username!r}; "
            f"logging calls to {calls_log}"
        )
        self.stdout.flush()
        # Ctrl-C and honcho's SIGTERM both stop it cleanly, even when started from a shell
        # that ignores SIGINT for background jobs (the ignored disposition is inherited).
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _interrupt)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("Fake OpenSRS stopped.")
