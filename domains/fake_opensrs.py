"""A faithful fake of the OpenSRS reseller API for tests and local development (opensrs.md §12).

Long because it is a whole server: the OPS envelope, signatures and every action we call, kept
together so the double can be read against opensrs.md in one place.
"""

from __future__ import annotations

import contextlib
import copy
import hmac
import ipaddress
import json
import logging
import re
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from django.conf import settings
from django.core.mail import send_mail

from domains.opensrs import (
    PROTOCOL,
    EnvelopeError,
    decode_envelope,
    encode_envelope,
    redact,
    request_domain,
    signature,
)

logger = logging.getLogger(__name__)

CONTACT_TYPES = ("owner", "admin", "billing", "tech")
FAULT_MODES = frozenset({"stall", "http500", "empty", "truncated", "rate_limit", "drop"})
DEFAULT_STALL_SECONDS = 60.0
MAX_BODY_BYTES = 1_000_000
# GET_DOMAINS_CONTACTS reads at most this many domains per call (opensrs.md §5.3).
CONTACTS_BATCH_LIMIT = 100
# The fields OpenSRS wants in every contact it is given (opensrs.md §5.6, the PHP toolkit's list).
CONTACT_REQUIRED_FIELDS = (
    "first_name",
    "last_name",
    "org_name",
    "address1",
    "city",
    "country",
    "postal_code",
    "phone",
    "email",
)
# GET_DOMAINS_CONTACTS `status`: whether a change of registrant is waiting for approvals.
REGISTRANT_ACTIVE = "active"
REGISTRANT_PENDING = "pending_current_registrant"
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
RESPONSE_TEXTS = {
    200: "Command successful",
    210: "Domain available",
    211: "Domain taken",
    300: "Request deferred: exceeded max command rate",
    310: "Exceeded max simultaneous connections",
    350: "Exceeded max commands per connection",
    400: "Internal server error",
    401: "Authentication Failed",
    404: "Internal server error",
    405: "Registry error",
    415: "Authentication Error.",
    420: "Contact data rejected",
    430: "Invalid Command",
    435: "Permission denied",
    437: "Another request is already waiting on this domain",
    460: "Required field missing",
    465: "Invalid data",
    480: "Item not found",
    486: "Domain is in a processing state, retry later",
    705: "Request timed out, resubmit",
}


def is_loopback(host: str) -> bool:
    """Return True for localhost and loopback IP addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _contact(first_name: str, last_name: str, email: str, org_name: str = "") -> dict[str, str]:
    return {
        "first_name": first_name,
        "last_name": last_name,
        "org_name": org_name or f"{first_name} {last_name}".strip(),
        "address1": "1 Jalan Demo",
        "address2": "",
        "address3": "",
        "city": "Kuala Lumpur",
        "state": "WP",
        "country": "MY",
        "postal_code": "50000",
        "phone": "+60.312345678",
        "fax": "",
        "email": email,
        "lang_pref": "EN",
    }


@dataclass
class FakeDomain:
    name: str
    contacts: dict[str, dict[str, str]]
    in_account: bool = True
    expiredate: str = "2030-01-01 00:00:00"
    lock_state: str = "1"
    # Change of registrant (ICANN): an owner email change waits for the old and new registrant.
    registrant_status: str = REGISTRANT_ACTIVE
    active_owner: dict[str, str] | None = None


@dataclass
class Fault:
    mode: str
    count: int | None = None
    delay: float = DEFAULT_STALL_SECONDS
    # Only requests with this action (e.g. MODIFY) get the fault; None: every request.
    action: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"fault": self.mode, "count": self.count, "delay": self.delay}


@dataclass
class _Reply:
    """What the handler writes back: an OPS reply, or a raw transport-level answer."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/xml"
    drop: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def ops_reply(
    obj: str, code: int, text: str = "", attributes: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Return a reply dict in the shape OpenSRS uses."""
    data: dict[str, Any] = {
        "protocol": PROTOCOL,
        "action": "REPLY",
        "object": obj,
        "is_success": "1" if 200 <= code < 300 else "0",
        "response_code": str(code),
        "response_text": text or RESPONSE_TEXTS.get(code, "Error"),
    }
    if attributes is not None:
        data["attributes"] = attributes
    return data


def _parse_fault(mode: str | None) -> str | None:
    if mode is None or mode in FAULT_MODES:
        return mode
    if mode.startswith("code:") and mode[5:].isdigit() and 100 <= int(mode[5:]) <= 999:
        return mode
    raise ValueError(f"unknown fault {mode!r}; use one of {sorted(FAULT_MODES)} or code:NNN")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOpenSRS

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("fake OpenSRS: error while handling a request from %s", client_address)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    headers: HTTPMessage  # what parse_headers() gives; typeshed says email.message.Message
    server_version = "OpenSRS/XML-RSA Server"
    timeout = 30  # a client that connects and never sends must not pin a thread for ever

    def do_POST(self) -> None:
        self._write(self.server.fake.handle_http("POST", self.path, self.headers, self._body()))

    def do_GET(self) -> None:
        self._write(self.server.fake.handle_http("GET", self.path, self.headers, b""))

    def _not_allowed(self) -> None:
        self._write(self.server.fake.handle_http(self.command, self.path, self.headers, b""))

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed

    def _body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = 0
        return self.rfile.read(min(max(length, 0), MAX_BODY_BYTES + 1))

    def _write(self, reply: _Reply) -> None:
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Connection", "close")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)
        self.close_connection = True

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake OpenSRS %s: " + format, self.client_address[0], *args)


class FakeOpenSRS:
    """In-memory OpenSRS reseller API over HTTP on a loopback address; thread-safe.

    Seeded with the demo registry records. Tests start it on port 0 and read `.url`; the
    `fake_opensrs` management command runs it with `serve_forever()`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        username: str | None = None,
        key: str | None = None,
        calls_log: Path | None = None,
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"the fake OpenSRS listens on loopback only, not {host!r}")
        self.username = username if username is not None else settings.OPENSRS_USERNAME
        self.key = key if key is not None else settings.OPENSRS_KEY
        self.calls_log = Path(calls_log) if calls_log is not None else None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._inflight = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self._fault: Fault | None = None
        self.domains: dict[str, FakeDomain] = {}
        self.sent_mail: list[dict[str, str]] = []
        self.calls: list[dict[str, Any]] = []
        self.request_count = 0
        self._seed()
        if self.calls_log is not None:
            self.calls_log.parent.mkdir(parents=True, exist_ok=True)
        server_class = _HTTPServer6 if ":" in host else _HTTPServer
        self._httpd = server_class((host, port), _Handler)
        self._httpd.fake = self

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> Self:
        """Serve in a background thread and return self."""
        self._started = True
        # A short poll interval keeps stop() (and so every test using the fake) fast.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-opensrs-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until stop() or KeyboardInterrupt."""
        self._started = True
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, cut short any stall and wait for handlers in flight to finish."""
        self._stopping.set()
        if self._started:
            self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.wait_idle(timeout)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is being handled; return False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._inflight == 0, timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- state helpers for tests ----------------------------------------------------------------

    def _seed(self) -> None:
        self.add_domain(
            "alice-shop.test", "alice@example.test", first_name="Alice", last_name="Tan"
        )
        self.add_domain(
            "bob-reseller.test",
            "dns-admin@bob-reseller.test",
            first_name="Bob",
            last_name="Lim",
            org_name="Bob Lim Reseller",
        )
        self.add_domain(
            "stale-mail.test", "carol@defunct.test", first_name="Carol", last_name="Wong"
        )

    def add_domain(
        self,
        name: str,
        owner_email: str,
        *,
        first_name: str = "Test",
        last_name: str = "Owner",
        org_name: str = "",
        admin_email: str | None = None,
        in_account: bool = True,
    ) -> FakeDomain:
        """Add (or replace) a domain; every contact copies the owner unless admin_email is given."""
        owner = _contact(first_name, last_name, owner_email, org_name)
        contacts = {kind: dict(owner) for kind in CONTACT_TYPES}
        if admin_email is not None:
            contacts["admin"]["email"] = admin_email
        domain = FakeDomain(name=name.lower(), contacts=contacts, in_account=in_account)
        with self._lock:
            self.domains[domain.name] = domain
        return domain

    def set_fault(
        self,
        mode: str | None,
        count: int | None = None,
        delay: float = DEFAULT_STALL_SECONDS,
        action: str | None = None,
    ) -> None:
        """Inject a fault into the next `count` requests (all of them when count is None).

        Modes: stall (answer after `delay` s), http500, empty, truncated, rate_limit (310),
        drop (close without answering), code:NNN. Only stall and truncated process the request.
        With `action`, only requests of that action (case-insensitive) are affected.
        """
        mode = _parse_fault(mode)
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        if delay < 0:
            raise ValueError("delay must not be negative")
        with self._lock:
            self._fault = (
                Fault(mode, count, delay, action.upper() if action else None) if mode else None
            )

    def clear_fault(self) -> None:
        """Remove any injected fault."""
        self.set_fault(None)

    @property
    def fault(self) -> Fault | None:
        with self._lock:
            return copy.copy(self._fault)

    def _take_fault(self, action: str = "") -> Fault | None:
        with self._lock:
            fault = self._fault
            if fault is None or (fault.action and fault.action != action.upper()):
                return None
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self._fault = None
            return copy.copy(fault)

    @contextlib.contextmanager
    def _in_flight(self) -> Iterator[None]:
        with self._lock:
            self._inflight += 1
            self.request_count += 1
        try:
            yield
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    # --- HTTP -----------------------------------------------------------------------------------

    def handle_http(self, method: str, path: str, headers: HTTPMessage, body: bytes) -> _Reply:
        """Answer one HTTP request (called from a handler thread)."""
        if path == "/_control":
            return self._control(method, body)
        if method != "POST":
            return _Reply(405, b"Method Not Allowed\n", "text/plain", headers={"Allow": "POST"})
        if path != "/":
            return _Reply(404, b"Not Found\n", "text/plain")
        if len(body) > MAX_BODY_BYTES:
            return _Reply(413, b"Request Entity Too Large\n", "text/plain")
        with self._in_flight():
            return self._handle_ops(headers, body)

    def _control(self, method: str, body: bytes) -> _Reply:
        if method == "POST":
            try:
                request = json.loads(body or b"{}")
                if not isinstance(request, dict):
                    raise ValueError("expected a JSON object")
                count = request.get("count")
                delay = request.get("delay", DEFAULT_STALL_SECONDS)
                self.set_fault(
                    request.get("fault"),
                    count=None if count is None else int(count),
                    delay=float(delay),
                )
            except (ValueError, TypeError) as exc:
                error = json.dumps({"detail": str(exc)}).encode()
                return _Reply(400, error, "application/json")
        elif method != "GET":
            return _Reply(
                405, b"Method Not Allowed\n", "text/plain", headers={"Allow": "GET, POST"}
            )
        fault = self.fault
        state = fault.as_dict() if fault else {"fault": None, "count": None, "delay": None}
        state["requests"] = self.request_count
        return _Reply(200, json.dumps(state).encode(), "application/json")

    def _handle_ops(self, headers: HTTPMessage, body: bytes) -> _Reply:
        try:
            request: dict[str, Any] | None = decode_envelope(body)
        except EnvelopeError:
            request = None
        obj = str(request.get("object", "")) if request else ""
        fault = self._take_fault(str(request.get("action", "")) if request else "")

        if fault and fault.mode == "stall" and self._stopping.wait(fault.delay):
            return _Reply(drop=True)  # shutting down: never act after the test has moved on
        if fault and fault.mode == "drop":
            self._log(request, None, fault)
            return _Reply(drop=True)
        if fault and fault.mode == "http500":
            self._log(request, None, fault)
            return _Reply(500, b"Internal Server Error\n", "text/plain")
        if fault and fault.mode == "empty":
            self._log(request, None, fault)
            return _Reply(200, b"")
        if fault and (fault.mode == "rate_limit" or fault.mode.startswith("code:")):
            code = 310 if fault.mode == "rate_limit" else int(fault.mode[5:])
            reply = ops_reply(obj, code)
        else:
            reply = self._authenticate_and_dispatch(headers, body, request)
        self._log(request, int(reply["response_code"]), fault)
        raw = encode_envelope(reply)
        if fault and fault.mode == "truncated":
            raw = raw[: len(raw) // 2]
        return _Reply(200, raw)

    def _authenticate_and_dispatch(
        self, headers: HTTPMessage, body: bytes, request: dict[str, Any] | None
    ) -> dict[str, Any]:
        obj = str(request.get("object", "")) if request else ""
        content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
        username = headers.get("X-Username", "")
        given = headers.get("X-Signature", "")
        expected = signature(body, self.key)
        if not hmac.compare_digest(username.encode(), self.username.encode()) or not (
            hmac.compare_digest(given.encode(), expected.encode())
        ):
            return ops_reply(obj, 401, "Authentication Failed")
        if content_type != "text/xml":
            return ops_reply(obj, 400, "Content-Type must be text/xml")
        if request is None:
            return ops_reply("", 400, "Malformed request: not an OPS envelope")
        command = (str(request.get("action", "")).upper(), obj.upper())
        handler = self._commands().get(command)
        if handler is None:
            return ops_reply(obj, 430, "Invalid Command")
        attributes = request.get("attributes")
        return handler(obj, request, attributes if isinstance(attributes, dict) else {})

    def _log(self, request: dict[str, Any] | None, code: int | None, fault: Fault | None) -> None:
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "action": request.get("action") if request else None,
            "object": request.get("object") if request else None,
            "domain": request_domain(request) if request else "",
            "attributes": redact(request.get("attributes", {})) if request else {},
            "response_code": code,
        }
        if fault is not None:
            entry["fault"] = fault.mode
        line = json.dumps(entry, sort_keys=False) + "\n"
        with self._lock:
            self.calls.append(entry)
            if self.calls_log is not None:
                with self.calls_log.open("a", encoding="utf-8") as log:
                    log.write(line)

    # --- commands -------------------------------------------------------------------------------

    def _commands(self) -> dict[tuple[str, str], Callable[..., dict[str, Any]]]:
        return {
            ("GET", "DOMAIN"): self._get_domain,
            ("SEND_PASSWORD", "DOMAIN"): self._send_password,
            ("LOOKUP", "DOMAIN"): self._lookup,
            ("BELONGS_TO_RSP", "DOMAIN"): self._belongs_to_rsp,
            ("MODIFY", "DOMAIN"): self._modify,
            ("GET_DOMAINS_CONTACTS", "DOMAIN"): self._get_domains_contacts,
        }

    def _managed(self, name: str) -> FakeDomain | None:
        """Return a deep copy of a domain in our account, or None."""
        with self._lock:
            domain = self.domains.get(name.lower())
            return copy.deepcopy(domain) if domain and domain.in_account else None

    def _get_domain(
        self, obj: str, request: dict[str, Any], attrs: dict[str, Any]
    ) -> dict[str, Any]:
        name = str(request.get("domain") or attrs.get("domain") or "")
        info_type = str(attrs.get("type", ""))
        if not info_type:
            return ops_reply(obj, 460, "Info type not specified")
        if not name:
            return ops_reply(obj, 460, "Required field 'domain' not provided")
        domain = self._managed(name)
        if domain is None:
            return ops_reply(obj, 415, "Authentication Error.")
        if info_type in CONTACT_TYPES:
            result: dict[str, Any] = {"contact_set": {info_type: domain.contacts[info_type]}}
        elif info_type == "all_info":
            result = {
                "contact_set": domain.contacts,
                "nameserver_list": [
                    {"name": f"ns{i}.exabytes.example", "ipaddress": "", "sortorder": str(i)}
                    for i in (1, 2)
                ],
                "expiredate": domain.expiredate,
                "registry_createdate": "2020-01-01 00:00:00",
                "registry_expiredate": domain.expiredate,
                "registry_updatedate": "2024-01-01 00:00:00",
                "auto_renew": "0",
                "let_expire": "0",
                "sponsoring_rsp": "1",
            }
        elif info_type == "status":
            result = {
                "lock_state": domain.lock_state,
                "can_modify": "1",
                "domain_supports": "",
                "transfer_away_in_progress": "0",
            }
        else:
            return ops_reply(obj, 465, f"Invalid info type '{info_type}'")
        return ops_reply(obj, 200, "Query Successful", result)

    def _send_password(
        self, obj: str, request: dict[str, Any], attrs: dict[str, Any]
    ) -> dict[str, Any]:
        name = str(attrs.get("domain_name", ""))
        send_to = str(attrs.get("send_to") or "admin")
        if not name:
            return ops_reply(obj, 460, "Required field 'domain_name' not provided")
        if send_to not in {"owner", "admin"}:
            return ops_reply(obj, 465, "Invalid value for send_to: use owner or admin")
        domain = self._managed(name)
        if domain is None:
            return ops_reply(obj, 415, "Authentication Error.")
        if str(attrs.get("sub_user", "0")) == "1":
            return ops_reply(obj, 480, "No sub-user exists for this domain")
        to = domain.contacts[send_to]["email"]
        if not to:
            return ops_reply(obj, 465, f"The {send_to} contact has no email address")
        token = secrets.token_urlsafe(24)
        link = f"{settings.OPENSRS_MANAGE_URL.rstrip('/')}/password-reset/{token}"
        subject = f"Password reset request for {domain.name}"
        message = (
            f"A password reset was requested for the domain {domain.name}.\n\n"
            f"To choose a new password for its management profile, open this link:\n{link}\n\n"
            "If you did not ask for this, you can ignore this message.\n"
        )
        try:
            send_mail(subject, message, settings.DEFAULT_FROM_EMAIL, [to])
        except Exception:
            # The real OpenSRS answers before its mail is delivered, so only log a failure.
            logger.exception("fake OpenSRS: could not send the reset email for %s", domain.name)
        with self._lock:
            self.sent_mail.append(
                {
                    "domain": domain.name,
                    "contact": send_to,
                    "to": to,
                    "subject": subject,
                    "link": link,
                    "token": token,
                }
            )
        return ops_reply(obj, 200, "Message sent")

    def _lookup(self, obj: str, request: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
        name = str(request.get("domain") or attrs.get("domain") or "").lower()
        if not name:
            return ops_reply(obj, 460, "Required field 'domain' not provided")
        if not _DOMAIN_RE.match(name):
            return ops_reply(obj, 465, "Invalid domain syntax")
        with self._lock:
            known = name in self.domains
        if known:
            return ops_reply(obj, 211, "Domain taken", {"status": "taken"})
        return ops_reply(obj, 210, "Domain available", {"status": "available"})

    def _belongs_to_rsp(
        self, obj: str, request: dict[str, Any], attrs: dict[str, Any]
    ) -> dict[str, Any]:
        name = str(request.get("domain") or attrs.get("domain") or "")
        if not name:
            return ops_reply(obj, 460, "Required field 'domain' not provided")
        domain = self._managed(name)
        if domain is None:
            return ops_reply(obj, 200, "Unknown Domain", {"belongs_to_rsp": "0"})
        return ops_reply(
            obj,
            200,
            "Query Successful",
            {"belongs_to_rsp": "1", "domain_expdate": domain.expiredate},
        )

    def _get_domains_contacts(
        self, obj: str, request: dict[str, Any], attrs: dict[str, Any]
    ) -> dict[str, Any]:
        """GET_DOMAINS_CONTACTS: every contact and the registrant status of up to 100 domains."""
        names = attrs.get("domain_list")
        if not isinstance(names, list) or not names:
            return ops_reply(obj, 460, "Required field 'domain_list' not provided")
        if len(names) > CONTACTS_BATCH_LIMIT:
            return ops_reply(
                obj, 465, f"domain_list holds more than {CONTACTS_BATCH_LIMIT} domains"
            )
        active_only = str(attrs.get("active_contacts_only", "0")) == "1"
        result: dict[str, Any] = {}
        for raw in names:
            name = str(raw).lower()
            domain = self._managed(name)
            if domain is None:
                result[name] = {
                    "is_success": "0",
                    "response_code": "415",
                    "response_text": "Authentication Error.",
                }
                continue
            contacts = dict(domain.contacts)
            if active_only and domain.active_owner is not None:
                contacts["owner"] = domain.active_owner
            result[name] = {"contact_set": contacts, "status": domain.registrant_status}
        return ops_reply(obj, 200, "Query Successful", result)

    def _modify(self, obj: str, request: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
        """MODIFY DOMAIN: data=contact_info replaces whole contacts, data=status sets the lock.

        An owner email change starts a change of registrant: the new owner contact is pending
        (status pending_current_registrant) until both registrants approve it, as at OpenSRS.
        """
        name = str(request.get("domain") or attrs.get("domain") or "").lower()
        data = attrs.get("data")
        if not name:
            return ops_reply(obj, 460, "Required field 'domain' not provided")
        if data == "status":
            return self._modify_lock(obj, name, attrs)
        if data != "contact_info":
            return ops_reply(obj, 465, "Only data=contact_info and data=status are supported")
        contact_set = attrs.get("contact_set")
        if not isinstance(contact_set, dict) or not contact_set:
            return ops_reply(obj, 460, "Required field 'contact_set' not provided")
        if str(attrs.get("affect_domains", "0")) not in {"0", "1"}:
            return ops_reply(obj, 465, "affect_domains must be 0 or 1")
        if set(contact_set) - set(CONTACT_TYPES):
            return ops_reply(obj, 480, "Unknown contact type")
        for kind, contact in contact_set.items():
            given = contact if isinstance(contact, dict) else {}
            missing = [f for f in CONTACT_REQUIRED_FIELDS if not given.get(f)]
            if missing:
                return ops_reply(obj, 460, f"Required field '{kind}.{missing[0]}' not provided")
            if "@" not in str(given["email"]):
                return ops_reply(obj, 420, f"Contact data rejected: invalid {kind} email")
        with self._lock:
            domain = self.domains.get(name)
            if domain is None or not domain.in_account:
                return ops_reply(obj, 415, "Authentication Error.")
            old_owner = dict(domain.contacts["owner"])
            for kind, contact in contact_set.items():
                domain.contacts[kind] = {k: str(v) for k, v in contact.items()}
            owner_email_changed = (
                "owner" in contact_set
                and str(contact_set["owner"]["email"]).lower() != old_owner["email"].lower()
            )
            if owner_email_changed:
                domain.registrant_status = REGISTRANT_PENDING
                domain.active_owner = domain.active_owner or old_owner
            status = domain.registrant_status
        text = (
            "Change of registrant pending: confirmation emails sent to the old and new owner"
            if owner_email_changed
            else "Contact information updated"
        )
        details = {
            name: {
                "is_success": "1",
                "response_code": "200",
                "response_text": text,
                "registrant_status": status,
            }
        }
        return ops_reply(obj, 200, "Modification successful", {"details": details})

    def _modify_lock(self, obj: str, name: str, attrs: dict[str, Any]) -> dict[str, Any]:
        lock_state = str(attrs.get("lock_state", ""))
        if lock_state not in {"0", "1"}:
            return ops_reply(obj, 465, "lock_state must be 0 or 1")
        with self._lock:
            domain = self.domains.get(name)
            if domain is None or not domain.in_account:
                return ops_reply(obj, 415, "Authentication Error.")
            domain.lock_state = lock_state
        return ops_reply(obj, 200, "Modification successful")

    def registrant_change_complete(self, name: str) -> None:
        """Both registrants approved the change (what OpenSRS does after their clicks)."""
        with self._lock:
            domain = self.domains[name.lower()]
            domain.registrant_status = REGISTRANT_ACTIVE
            domain.active_owner = None
