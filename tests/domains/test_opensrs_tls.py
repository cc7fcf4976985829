"""OpenSRS over TLS: a broken TLS record after the command went out is an unknown outcome.

requests calls every TLS failure an SSLError, the handshake's (nothing sent) as well as one in
the reply (the command was read, and may have been acted on). Only the first may be retried
for a command that must not run twice: a second SEND_PASSWORD is a second reset mail.
"""

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from domains.opensrs import OpenSRSClient, OpenSRSOutcomeUnknown, OpenSRSTransientError

# A TLS application-data record whose contents no key decrypts.
_CORRUPT_RECORD = b"\x17\x03\x03\x00\x20" + b"\x00" * 32


class _TlsServer:
    """Reads one request over TLS, then answers with a record that cannot be decrypted."""

    def __init__(self, certificate: Path, key: Path) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(certificate, key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}/"
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            raw, _address = self._listener.accept()
        except OSError:
            return
        with raw:
            try:
                tls = self._context.wrap_socket(raw, server_side=True)
            except ssl.SSLError:
                return  # the client refused our certificate: nothing was sent
            received = b""
            while b"</OPS_envelope>" not in received:
                chunk = tls.recv(65536)
                if not chunk:
                    return
                received += chunk
            self.requests.append(received)
            # Under the TLS layer (a copy of its socket), as a broken middlebox or a forger would.
            with socket.fromfd(tls.fileno(), socket.AF_INET, socket.SOCK_STREAM) as plain:
                plain.sendall(_CORRUPT_RECORD)
            tls.close()

    def close(self) -> None:
        self._listener.close()
        self._thread.join(timeout=5)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(  # noqa: S603 - fixed arguments
        [  # noqa: S607 - the test machine's openssl makes a throwaway certificate
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(certificate), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return certificate, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[_TlsServer]:
    server = _TlsServer(*certificate)
    yield server
    server.close()


def test_send_password_answered_with_a_broken_tls_record_is_outcome_unknown(
    tls_server, certificate, monkeypatch
):
    # given OpenSRS (or what stands in front of it) read the command, then broke the TLS reply
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    client = OpenSRSClient(tls_server.url, "test-reseller", "test-key-0123456789abcdef")

    # when, then: not "nothing was sent", which a caller may retry into a second reset mail
    with pytest.raises(OpenSRSOutcomeUnknown):
        client.send_password("alice-shop.test")
    assert len(tls_server.requests) == 1


def test_send_password_refused_in_the_tls_handshake_stays_retryable(tls_server):
    # given a server whose certificate the client does not trust: the handshake fails before
    # the command is sent
    client = OpenSRSClient(tls_server.url, "test-reseller", "test-key-0123456789abcdef")

    # when, then: a transient error the caller may retry, and nothing reached the server
    with pytest.raises(OpenSRSTransientError) as excinfo:
        client.send_password("alice-shop.test")
    assert not isinstance(excinfo.value, OpenSRSOutcomeUnknown)
    assert tls_server.requests == []
