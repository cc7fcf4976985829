"""The embedded broker of `make run` (files under var/broker/), quick to stop."""

import fcntl
import os
import uuid
from time import monotonic
from typing import Any

from kombu import Connection
from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

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

    def get_table(self, exchange: str) -> list[Any]:
        """The queues bound to `exchange`; a table being created (still empty) has none."""
        path = self._exchange_file(exchange)  # type: ignore[attr-defined]
        try:
            with open(path, "rb") as table:
                fcntl.flock(table.fileno(), fcntl.LOCK_SH)
                try:
                    return _queues(table.read())
                finally:
                    fcntl.flock(table.fileno(), fcntl.LOCK_UN)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {path}") from exc

    def _queue_bind(
        self, exchange: str, routing_key: str | None, pattern: str | None, queue: str | None
    ) -> None:
        """Bind `queue`, creating the exchange's table if need be, under one lock.

        kombu's own creates the table with a truncating open and locks it after, so a worker
        starting beside another (make run starts two) could read it empty in between: a
        JSONDecodeError, and the worker stopped.
        """
        self.control_folder.mkdir(exist_ok=True)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")

        def bind(queues: list[Any]) -> bool:
            if entry in queues:
                return False
            queues.insert(0, entry)
            return True

        self._table_change(exchange, bind, create=True)

    def _delete(
        self, queue: str, exchange: str, routing_key: str, pattern: str, *args: Any, **kwargs: Any
    ) -> None:
        # The virtual channel's own delete, then this table's, as kombu's filesystem one does.
        super(filesystem.Channel, self)._delete(
            queue, exchange, routing_key, pattern, *args, **kwargs
        )
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")

        def unbind(queues: list[Any]) -> bool:
            if entry not in queues:
                return False
            queues.remove(entry)
            return True

        self._table_change(exchange, unbind, create=False)

    def _table_change(self, exchange: str, change: Any, *, create: bool) -> None:
        """Read, change and write an exchange's table under an exclusive lock.

        Opened without truncating (created if `create`), so nobody reads it half written.
        """
        path = self._exchange_file(exchange)  # type: ignore[attr-defined]
        try:
            fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ChannelError(f"Cannot open {path}") from exc
        with os.fdopen(fd, "rb+", buffering=0) as table:
            fcntl.flock(table.fileno(), fcntl.LOCK_EX)
            try:
                queues = _queues(table.read())
                if change(queues):
                    table.seek(0)
                    table.write(str_to_bytes(dumps(queues)))
                    table.truncate()
            finally:
                fcntl.flock(table.fileno(), fcntl.LOCK_UN)


def _queues(content: bytes) -> list[Any]:
    text = bytes_to_str(content)
    return [filesystem.exchange_queue_t(*row) for row in loads(text)] if text.strip() else []


class Transport(filesystem.Transport):
    Channel = Channel

    def drain_events(
        self, connection: Connection, timeout: float | None = None, **kwargs: Any
    ) -> None:
        if timeout is not None:
            timeout = min(timeout, LONGEST_WAIT_SECONDS)
        super().drain_events(connection, timeout=timeout, **kwargs)
