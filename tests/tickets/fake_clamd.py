"""A tiny clamd on a real unix socket, speaking INSTREAM as clamd(8) documents it."""

import contextlib
import shutil
import socket
import struct
import tempfile
import threading
from pathlib import Path

# The EICAR test file: every virus scanner reports it, and it harms nothing.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class FakeClamd:
    """Answers "stream: OK", or "stream: Eicar-Test-Signature FOUND" for a stream with EICAR.

    `reply` set to another string answers that instead (an ERROR, say). Every command and
    stream received is kept in `commands` and `streams`; `chunk_sizes` has each chunk's length.
    """

    def __init__(self) -> None:
        # Unix socket paths are short (108 bytes): a directory of its own under /tmp.
        self.directory = Path(tempfile.mkdtemp(prefix="clamd-", dir="/tmp"))
        self.path = str(self.directory / "clamd.sock")
        self.commands: list[bytes] = []
        self.streams: list[bytes] = []
        self.chunk_sizes: list[int] = []
        self.reply: str | None = None
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(8)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError, struct.error):
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        command = b""
        while not command.endswith(b"\0"):
            byte = reader.read(1)
            if not byte:
                return
            command += byte
        self.commands.append(command)
        if command != b"zINSTREAM\0":
            conn.sendall(b"UNKNOWN COMMAND\0")
            return
        data = bytearray()
        while True:
            (length,) = struct.unpack("!L", reader.read(4))
            if length == 0:
                break
            self.chunk_sizes.append(length)
            data += reader.read(length)
        self.streams.append(bytes(data))
        if self.reply is not None:
            answer = self.reply
        elif EICAR in data:
            answer = "stream: Eicar-Test-Signature FOUND"
        else:
            answer = "stream: OK"
        conn.sendall(answer.encode() + b"\0")

    def close(self) -> None:
        self._server.close()
        shutil.rmtree(self.directory, ignore_errors=True)
