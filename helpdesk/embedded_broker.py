"""The embedded broker of `make run` (files under var/broker/), quick to stop."""

import os
import uuid
from time import monotonic
from typing import Any

from kombu import Connection
from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

# Celery's loop for brokers without an event loop waits for messages two seconds at a time and
# runs one more wait after a warm shutdown is asked for, so Ctrl-C of `make run` took 3-5 s per
# worker. Shorter waits stop a worker in well under a second (figures in README, under `make run`).
LONGEST_WAIT_SECONDS = 0.25


class Channel(filesystem.Channel):
    # kombu's two bases name the second argument differently (payload, message).
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Put a message file into the folder whole.

        kombu's own creates the file and then writes it, so a worker listing the folder in
        between took an empty file (a JSONDecodeError, and the task was lost). Readers take
        only names ending `.<queue>.msg`: the file is written as `….part`, then renamed.
        """
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        try:
            with open(f"{path}.part", "wb") as part:
                part.write(str_to_bytes(dumps(payload)))
            os.replace(f"{path}.part", path)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel

    def drain_events(
        self, connection: Connection, timeout: float | None = None, **kwargs: Any
    ) -> None:
        if timeout is not None:
            timeout = min(timeout, LONGEST_WAIT_SECONDS)
        super().drain_events(connection, timeout=timeout, **kwargs)
