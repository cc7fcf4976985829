"""The virus check attachments pass in the worker: ClamAV's clamd, or none.

`attachment_scanner()` picks the check from the settings: the callable named by
ATTACHMENT_SCANNER if set, else clamd over the unix socket CLAMD_SOCKET, else `NoScanner`,
which finds every file clean (the documented behaviour when no scanner is configured).
"""

import socket
import struct
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

# clamd's default StreamMaxLength is 25 MB; chunks well under its default buffer.
CLAMD_CHUNK_BYTES = 64 * 1024
_REPLY_MAX_BYTES = 4096


@dataclass(frozen=True)
class ScanVerdict:
    clean: bool
    # What was found ("Eicar-Test-Signature"), "" when clean.
    signature: str = ""


class ScannerUnavailable(Exception):
    """The check could not give a verdict (socket missing, timeout, an ERROR reply): try later."""


class Scanner(Protocol):
    name: str

    def scan(self, content: bytes) -> ScanVerdict: ...


class NoScanner:
    """No virus check configured (CLAMD_SOCKET unset): every file passes."""

    name = "none"

    def scan(self, content: bytes) -> ScanVerdict:
        return ScanVerdict(clean=True)


class ClamdScanner:
    """clamd's INSTREAM command over its unix socket (clamd(8), "zINSTREAM").

    The file goes in chunks, each preceded by its length as 4 bytes in network order, ended by
    a zero length; clamd answers "stream: OK" or "stream: <signature> FOUND", NUL-terminated.
    """

    name = "clamd"

    def __init__(self, path: str, *, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout

    def scan(self, content: bytes) -> ScanVerdict:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(self.timeout)
                conn.connect(self.path)
                conn.sendall(b"zINSTREAM\0")
                view = memoryview(content)
                for start in range(0, len(view), CLAMD_CHUNK_BYTES):
                    chunk = view[start : start + CLAMD_CHUNK_BYTES]
                    conn.sendall(struct.pack("!L", len(chunk)) + chunk)
                conn.sendall(struct.pack("!L", 0))
                reply = _read_reply(conn)
        except OSError as exc:  # includes timeouts and a missing socket
            raise ScannerUnavailable(f"clamd at {self.path}: {exc}") from exc
        return _verdict(reply)


def _read_reply(conn: socket.socket) -> str:
    data = b""
    while b"\0" not in data and len(data) < _REPLY_MAX_BYTES:
        part = conn.recv(_REPLY_MAX_BYTES)
        if not part:
            break
        data += part
    return data.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


def _verdict(reply: str) -> ScanVerdict:
    # "stream: OK", "stream: Eicar-Test-Signature FOUND", "INSTREAM size limit exceeded. ERROR"
    _, _, result = reply.rpartition(": ")
    if reply.startswith("stream:") and result == "OK":
        return ScanVerdict(clean=True)
    if reply.startswith("stream:") and result.endswith(" FOUND"):
        return ScanVerdict(clean=False, signature=result.removesuffix(" FOUND")[:150])
    raise ScannerUnavailable(f"clamd answered {reply[:200]!r}")


def attachment_scanner() -> Scanner:
    """The configured check (see the module docstring)."""
    if settings.ATTACHMENT_SCANNER:
        factory = import_string(settings.ATTACHMENT_SCANNER)
        return factory()
    if settings.CLAMD_SOCKET:
        return ClamdScanner(settings.CLAMD_SOCKET, timeout=settings.CLAMD_TIMEOUT_SECONDS)
    return NoScanner()
