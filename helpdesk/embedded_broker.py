"""The embedded broker of `make run` (files under var/broker/), quick to stop."""

from typing import Any

from kombu import Connection
from kombu.transport import filesystem

# Celery's loop for brokers without an event loop waits for messages two seconds at a time and
# runs one more wait after a warm shutdown is asked for, so Ctrl-C of `make run` took 3-5 s per
# worker. Shorter waits stop a worker in well under a second (figures in README, under `make run`).
LONGEST_WAIT_SECONDS = 0.25


class Transport(filesystem.Transport):
    def drain_events(
        self, connection: Connection, timeout: float | None = None, **kwargs: Any
    ) -> None:
        if timeout is not None:
            timeout = min(timeout, LONGEST_WAIT_SECONDS)
        super().drain_events(connection, timeout=timeout, **kwargs)
