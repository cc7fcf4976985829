"""Client for the OpenSRS reseller XML API (XCP over HTTPS POST, OPS envelope).

Long because the envelope, signing, retries and each action's parsing belong to one protocol;
`_attempt` keeps one call's whole error mapping (opensrs.md §10) in one place to read.
"""

from __future__ import annotations

import hashlib
import random
import re
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from xml.etree.ElementTree import Element, ParseError

import requests
import urllib3.exceptions
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from django.conf import settings

from helpdesk.metrics import opensrs_call_observed

PROTOCOL = "XCP"
OPS_VERSION = "0.9"
REDACTED = "[redacted]"
SECRET_KEYS = frozenset({"reg_password", "password", "cookie"})

_PROLOG = (
    "<?xml version='1.0' encoding='UTF-8' standalone='no' ?>"
    "<!DOCTYPE OPS_envelope SYSTEM 'ops.dtd'>"
)
_XML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&apos;", '"': "&quot;"})
# Characters XML 1.0 cannot carry at all; encoding them would produce a body nobody can parse.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CONTAINERS = frozenset({"dt_assoc", "dt_array", "dt_scalar", "dt_scalarref"})
# How deep containers may nest in an envelope; OPS replies nest five or six.
_MAX_DEPTH = 32

# Codes that say "try again later" (opensrs.md §6); 400 only when its text is generic.
TRANSIENT_CODES = frozenset({300, 310, 350, 404, 405, 437, 486, 705})
AUTH_CODES = frozenset({401, 410})
NOT_IN_ACCOUNT_CODES = frozenset({415, 480})
SEND_TO_VALUES = frozenset({"owner", "admin"})
# GET_DOMAINS_CONTACTS takes at most 100 domains a call (opensrs.md §5.3).
CONTACTS_BATCH_MAX = 100
# The largest reply read: a hundred domains' contacts are some 200 kB; past this, none is kept.
MAX_REPLY_BYTES = 10 * 1024 * 1024


# --- errors -------------------------------------------------------------------------------------


class OpenSRSError(Exception):
    """Base class: every failure of an OpenSRS call, with the reply code when there was one."""

    def __init__(
        self, code: int | None, text: str, *, exchange: OpenSRSExchange | None = None
    ) -> None:
        # args are the constructor's arguments so Celery and pickle can rebuild the exception.
        super().__init__(code, text)
        self.code = code
        self.text = text
        self.exchange = exchange

    def __str__(self) -> str:
        return f"{self.code} {self.text}" if self.code is not None else self.text

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.code, self.text), {"exchange": self.exchange})


class OpenSRSAuthError(OpenSRSError):
    """Wrong reseller credentials, IP allow list or URL: a configuration problem, never retried."""


class DomainNotInAccount(OpenSRSError):
    """The domain is not managed by our reseller account (415/480 on a domain command)."""


class OpenSRSTransientError(OpenSRSError):
    """Rate limits, server or network trouble: the request did no harm and may be retried later."""


class OpenSRSTimeout(OpenSRSTransientError):
    """Connect or read timeout on a request that is safe to repeat."""


class OpenSRSOutcomeUnknown(OpenSRSError):
    """A non-idempotent request went out but no readable answer came: OpenSRS may have acted."""


class OpenSRSRequestError(OpenSRSError):
    """OpenSRS refused the request (bad data, permission, invalid command, ...)."""


class EnvelopeError(ValueError):
    """Bytes that are not a well-formed OPS envelope, or data that cannot be encoded as one."""


# --- envelope codec -----------------------------------------------------------------------------


def _escape(value: str) -> str:
    if _XML_INVALID.search(value):
        raise EnvelopeError(f"character not allowed in XML: {value!r}")
    return value.translate(_XML_ESCAPES)


def _encode_value(value: Any) -> str:
    if isinstance(value, dict):
        if not value:
            return "<dt_assoc/>"
        items = "".join(
            f'<item key="{_escape(str(key))}">{_encode_value(item)}</item>'
            for key, item in value.items()
        )
        return f"<dt_assoc>{items}</dt_assoc>"
    if isinstance(value, list | tuple):
        items = "".join(
            f'<item key="{index}">{_encode_value(item)}</item>' for index, item in enumerate(value)
        )
        return f"<dt_array>{items}</dt_array>"
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return _escape(str(value))


def encode_envelope(data: dict[str, Any]) -> bytes:
    """Serialise a request or reply dict into OPS envelope bytes (UTF-8, no whitespace)."""
    return (
        f"{_PROLOG}<OPS_envelope><header><version>{OPS_VERSION}</version></header>"
        f"<body><data_block>{_encode_value(data)}</data_block></body></OPS_envelope>"
    ).encode()


def _decode_container(node: Element, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        # Before Python's own limit: a RecursionError would escape every caller's handling.
        raise EnvelopeError(f"containers nested deeper than {_MAX_DEPTH}")
    if node.tag == "dt_assoc":
        result: dict[str, Any] = {}
        for item in node:
            key = item.get("key")
            if item.tag != "item" or key is None:
                raise EnvelopeError(f"unexpected <{item.tag}> in dt_assoc")
            result[key] = _decode_item(item, depth)
        return result
    if node.tag == "dt_array":
        pairs: list[tuple[int, Any]] = []
        for item in node:
            key = item.get("key", "")
            if item.tag != "item" or not key.isdigit():
                raise EnvelopeError(f"unexpected <{item.tag} key={key!r}> in dt_array")
            pairs.append((int(key), _decode_item(item, depth)))
        return [value for _, value in sorted(pairs, key=lambda pair: pair[0])]
    if node.tag in {"dt_scalar", "dt_scalarref"}:
        return (node.text or "").strip()
    raise EnvelopeError(f"unexpected <{node.tag}>")


def _decode_item(item: Element, depth: int) -> Any:
    children = list(item)
    if not children:
        return (item.text or "").strip()
    if len(children) > 1 or children[0].tag not in _CONTAINERS:
        raise EnvelopeError(f"item {item.get('key')!r} holds unexpected elements")
    return _decode_container(children[0], depth + 1)


def decode_envelope(raw: bytes) -> dict[str, Any]:
    """Parse OPS envelope bytes into a dict; raise EnvelopeError for anything else."""
    try:
        root = SafeET.fromstring(raw)
    except (ParseError, DefusedXmlException) as exc:
        raise EnvelopeError(f"unparsable XML: {exc}") from exc
    block = root.find("body/data_block") if root.tag == "OPS_envelope" else None
    if block is None or len(block) != 1:
        raise EnvelopeError("no OPS_envelope/body/data_block with one child")
    data = _decode_container(block[0])
    if not isinstance(data, dict):
        raise EnvelopeError("data_block does not hold a dt_assoc")
    return data


def signature(body: bytes, key: str) -> str:
    """Return the X-Signature for a body: md5_hex(md5_hex(body + key) + key), lowercase."""
    key_bytes = key.encode()
    # MD5 is what the OpenSRS protocol prescribes; it is not our choice of hash.
    inner = hashlib.md5(body + key_bytes, usedforsecurity=False).hexdigest()
    return hashlib.md5(inner.encode("ascii") + key_bytes, usedforsecurity=False).hexdigest()


def redact(value: Any) -> Any:
    """Return a copy of decoded OPS data with passwords and cookies replaced by a marker."""
    if isinstance(value, dict):
        return {k: REDACTED if k in SECRET_KEYS else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def build_request(
    action: str, obj: str, attributes: dict[str, Any] | None = None, **top: Any
) -> dict[str, Any]:
    """Return the request dict for a command, in the key order OpenSRS documents."""
    data: dict[str, Any] = {"protocol": PROTOCOL, "action": action, "object": obj, **top}
    if attributes is not None:
        data["attributes"] = attributes
    return data


def request_domain(data: dict[str, Any]) -> str:
    """Return the domain a request is about ("" when it names none)."""
    attributes = data.get("attributes")
    candidates = [data.get("domain")]
    if isinstance(attributes, dict):
        candidates += [attributes.get("domain_name"), attributes.get("domain")]
    return next((c for c in candidates if isinstance(c, str) and c), "")


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenSRSReply:
    action: str
    object: str
    is_success: bool
    code: int
    text: str
    attributes: dict[str, Any]
    request_summary: dict[str, Any] = field(default_factory=dict)
    response_summary: dict[str, Any] = field(default_factory=dict)
    duration_ms: int = 0


@dataclass(frozen=True)
class OwnerContact:
    email: str
    first_name: str
    last_name: str
    org_name: str


@dataclass(frozen=True)
class DomainContacts:
    """A domain's contacts as OpenSRS holds them, and its change-of-registrant status."""

    name: str
    contact_set: dict[str, dict[str, str]]
    status: str

    def email(self, kind: str) -> str:
        return str(self.contact_set.get(kind, {}).get("email", "")).strip()


Outcome = Literal["success", "error", "transient", "timeout", "unknown"]


@dataclass(frozen=True)
class OpenSRSExchange:
    """One HTTP attempt, redacted, as the audit log wants it."""

    action: str
    object: str
    domain: str
    attempt: int
    outcome: Outcome
    duration_ms: int
    response_code: int | None
    response_text: str
    request_summary: dict[str, Any]
    response_summary: dict[str, Any] | None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """Yield exc and every exception wrapped in it (requests nests urllib3 errors in args)."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [*current.args, getattr(current, "reason", None)]
        nested += [current.__cause__, current.__context__]
        pending.extend(n for n in nested if isinstance(n, BaseException))


class _ReplyTooLarge(Exception):
    """OpenSRS's reply is longer than MAX_REPLY_BYTES (declared, or as it arrives)."""


def _reply_read(response: requests.Response) -> bytes:
    """The reply's body, read no further than MAX_REPLY_BYTES; _ReplyTooLarge past it."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_REPLY_BYTES:
        raise _ReplyTooLarge(f"reply of {declared} bytes")
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise _ReplyTooLarge(f"reply longer than {MAX_REPLY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _transport_failure(exc: requests.RequestException) -> str:
    """Classify a requests error as connect_timeout, connect, read_timeout or dropped."""
    causes = list(_causes(exc))
    if isinstance(exc, requests.ConnectTimeout):
        return "connect_timeout"
    if any(isinstance(c, urllib3.exceptions.NewConnectionError) for c in causes):
        return "connect"
    # A TLS failure is one of the handshake (nothing sent) only when it is the certificate's;
    # any other may be a broken record in the reply to a command already read.
    if isinstance(exc, requests.exceptions.SSLError) and any(
        isinstance(c, ssl.SSLCertVerificationError) for c in causes
    ):
        return "connect"
    if isinstance(exc, requests.ReadTimeout) or any(
        isinstance(c, urllib3.exceptions.ReadTimeoutError | TimeoutError) for c in causes
    ):
        return "read_timeout"
    return "dropped"


class _ReplyUnreadable(Exception):
    """OpenSRS's reply is not this command's readable answer; the message says what is wrong."""

    def __init__(self, text: str, response_summary: dict[str, Any] | None = None) -> None:
        super().__init__(text)
        self.response_summary = response_summary


@dataclass(frozen=True)
class _Answer:
    """A readable reply: `succeeded` when OpenSRS says it did the command (a 2xx success)."""

    succeeded: bool
    code: int
    text: str
    attributes: dict[str, Any]
    response_summary: dict[str, Any]


def _reply_answer(raw: bytes, obj: str) -> _Answer:
    """The reply to a command on `obj`, decoded; _ReplyUnreadable when it is not one."""
    try:
        reply = decode_envelope(raw)
    except EnvelopeError as exc:
        raise _ReplyUnreadable(str(exc)) from exc
    response_summary = {k: v for k, v in redact(reply).items() if k != "protocol"}
    try:
        code = int(reply["response_code"])
        is_success = {"1": True, "0": False}[reply["is_success"]]
    except (KeyError, TypeError, ValueError):
        raise _ReplyUnreadable("reply lacks is_success/response_code", response_summary) from None
    succeeded = is_success and 200 <= code < 300
    answered = str(reply.get("object") or obj)
    if succeeded and answered.upper() != obj.upper():
        # OpenSRS echoes the object it acted on: a success for another object is not this
        # command's answer, and says nothing of whether this one was done.
        raise _ReplyUnreadable("reply for another object", response_summary)
    attributes = reply.get("attributes")
    return _Answer(
        succeeded=succeeded,
        code=code,
        text=str(reply.get("response_text", "")),
        attributes=attributes if isinstance(attributes, dict) else {},
        response_summary=response_summary,
    )


# --- client -------------------------------------------------------------------------------------


class OpenSRSClient:
    """Reseller-level OpenSRS client; one fresh HTTPS connection per call, not thread-safe."""

    def __init__(
        self,
        url: str,
        username: str,
        key: str,
        *,
        connect_timeout: float = 10,
        read_timeout: float = 60,
        read_retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        audit_hook: Callable[[OpenSRSExchange], None] | None = None,
        throttle: Callable[[], None] | None = None,
    ) -> None:
        """Configure the client.

        :param read_retries: extra attempts for idempotent calls after a transient error.
        :param audit_hook: called with an OpenSRSExchange after every HTTP attempt.
        :param throttle: called before every HTTP attempt; waits for a free call slot or raises
            OpenSRSTransientError (nothing was sent).
        """
        self.url = url
        self.username = username
        self._key = key
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.read_retries = read_retries
        self.backoff = backoff
        self._sleep = sleep
        self._audit_hook = audit_hook
        self._throttle = throttle
        self.last_exchange: OpenSRSExchange | None = None

    def __repr__(self) -> str:
        return f"OpenSRSClient(url={self.url!r}, username={self.username!r})"

    def call(
        self,
        action: str,
        obj: str,
        attributes: dict[str, Any] | None = None,
        *,
        idempotent: bool,
        **top: Any,
    ) -> OpenSRSReply:
        """Send one command and return its successful reply, or raise a typed OpenSRSError.

        Idempotent commands are retried on transient errors with exponential backoff and jitter;
        others are sent exactly once.
        """
        data = build_request(action, obj, attributes, **top)
        body = encode_envelope(data)
        attempts = 1 + max(self.read_retries, 0) if idempotent else 1
        attempt = 1
        while True:
            try:
                return self._attempt(data, body, idempotent=idempotent, attempt=attempt)
            except OpenSRSTransientError:
                if attempt >= attempts:
                    raise
            self._sleep(self._backoff_delay(attempt))
            attempt += 1

    def get_owner_contact(self, domain: str) -> OwnerContact:
        """Read the owner (registrant) contact on the domain's registration record."""
        reply = self.call("GET", "DOMAIN", {"type": "owner"}, idempotent=True, domain=domain)
        contact_set = reply.attributes.get("contact_set")
        owner = contact_set.get("owner") if isinstance(contact_set, dict) else None
        if not isinstance(owner, dict):
            raise OpenSRSRequestError(reply.code, "reply has no owner contact")
        return OwnerContact(
            email=str(owner.get("email", "")).strip(),
            first_name=str(owner.get("first_name", "")),
            last_name=str(owner.get("last_name", "")),
            org_name=str(owner.get("org_name", "")),
        )

    def send_password(self, domain: str, send_to: str = "owner") -> OpenSRSReply:
        """Ask OpenSRS to email a password-reset link to the domain's owner or admin contact.

        Not idempotent (each call sends another email), so it is never retried here:
        OpenSRSTransientError means nothing was sent, OpenSRSOutcomeUnknown means it may have been.
        """
        if send_to not in SEND_TO_VALUES:
            raise ValueError(f"send_to must be one of {sorted(SEND_TO_VALUES)}")
        attributes = {"domain_name": domain, "send_to": send_to, "sub_user": "0"}
        return self.call("SEND_PASSWORD", "DOMAIN", attributes, idempotent=False)

    def get_domains_contacts(self, names: list[str]) -> dict[str, DomainContacts | None]:
        """Read the contacts of up to 100 domains in one call; None for one not in our account."""
        if not names or len(names) > CONTACTS_BATCH_MAX:
            raise ValueError(f"give 1 to {CONTACTS_BATCH_MAX} domain names")
        reply = self.call(
            "GET_DOMAINS_CONTACTS", "DOMAIN", {"domain_list": list(names)}, idempotent=True
        )
        found: dict[str, DomainContacts | None] = {}
        for name in names:
            entry = reply.attributes.get(name)
            contact_set = entry.get("contact_set") if isinstance(entry, dict) else None
            if not isinstance(contact_set, dict):
                found[name] = None
                continue
            found[name] = DomainContacts(
                name=name,
                contact_set={k: v for k, v in contact_set.items() if isinstance(v, dict)},
                status=str(entry.get("status", "")) if isinstance(entry, dict) else "",
            )
        return found

    def modify_contacts(self, domain: str, contact_set: dict[str, dict[str, str]]) -> OpenSRSReply:
        """Replace contacts of one domain (MODIFY DOMAIN data=contact_info, affect_domains=0).

        Not idempotent for the registrant (an owner email change mails both owners), so it is
        sent once: OpenSRSOutcomeUnknown means OpenSRS may have applied it. A refusal for the
        domain in the per-domain details raises OpenSRSRequestError with its code.
        """
        attributes = {"data": "contact_info", "affect_domains": "0", "contact_set": contact_set}
        reply = self.call("MODIFY", "DOMAIN", attributes, idempotent=False, domain=domain)
        details = reply.attributes.get("details")
        entry = details.get(domain) if isinstance(details, dict) else None
        if isinstance(details, dict) and details and not isinstance(entry, dict):
            # Per-domain results that leave ours out answer another request, not this one:
            # OpenSRS may or may not have made this change.
            raise OpenSRSOutcomeUnknown(
                reply.code, f"reply names other domains, not {domain}", exchange=self.last_exchange
            )
        if isinstance(entry, dict) and entry.get("is_success") == "0":
            code = str(entry.get("response_code", ""))
            raise OpenSRSRequestError(
                int(code) if code.isdigit() else reply.code,
                str(entry.get("response_text", "refused")),
                exchange=self.last_exchange,
            )
        return reply

    def _backoff_delay(self, attempt: int) -> float:
        base = self.backoff * 2 ** (attempt - 1)
        return base + random.uniform(0, base)  # noqa: S311 - retry jitter, not a secret

    def _attempt(
        self, data: dict[str, Any], body: bytes, *, idempotent: bool, attempt: int
    ) -> OpenSRSReply:
        request_summary = {k: v for k, v in redact(data).items() if k != "protocol"}
        request_summary["domain"] = request_domain(data)
        action, obj = str(data["action"]), str(data["object"])
        started = time.monotonic()

        def fail(
            error: type[OpenSRSError],
            code: int | None,
            text: str,
            outcome: Outcome,
            response_summary: dict[str, Any] | None = None,
        ) -> OpenSRSError:
            exchange = self._record(
                request_summary, attempt, outcome, started, code, text, response_summary
            )
            return error(code, text, exchange=exchange)

        if self._throttle is not None:
            self._throttle()
        headers = {
            "Content-Type": "text/xml",
            "X-Username": self.username,
            "X-Signature": signature(body, self._key),
            "Connection": "close",
        }
        # OpenSRS answered, so it read the command and may have acted on it: a reply it began
        # but we cannot read (too long, cut short, empty, no outcome) is an unknown outcome for a
        # command that must not run twice, as a read timeout is; only a read may be tried again.
        unreadable: tuple[type[OpenSRSError], Outcome] = (
            (OpenSRSTransientError, "transient")
            if idempotent
            else (OpenSRSOutcomeUnknown, "unknown")
        )
        try:
            # Streamed, so a reply is never held past MAX_REPLY_BYTES.
            with requests.post(
                self.url,
                data=body,
                headers=headers,
                timeout=(self.connect_timeout, self.read_timeout),
                allow_redirects=False,
                stream=True,
            ) as response:
                raw = _reply_read(response) if response.status_code == 200 else b""
        except _ReplyTooLarge as exc:
            raise fail(unreadable[0], None, str(exc), unreadable[1]) from exc
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            raise fail(OpenSRSAuthError, None, f"invalid OpenSRS URL: {exc}", "error") from exc
        except requests.RequestException as exc:
            kind = _transport_failure(exc)
            if kind == "connect_timeout" or (kind == "read_timeout" and idempotent):
                raise fail(OpenSRSTimeout, None, f"{kind}: {exc}", "timeout") from exc
            if kind == "connect" or idempotent:
                raise fail(OpenSRSTransientError, None, f"{kind}: {exc}", "transient") from exc
            raise fail(
                OpenSRSOutcomeUnknown, None, f"{kind} after sending: {exc}", "unknown"
            ) from exc

        if response.status_code != 200:
            failure = f"HTTP {response.status_code}"
            if response.status_code >= 500:
                # A server error came after the command went out: OpenSRS, or the gateway in
                # front of it (502, 504), may have acted on it before failing to answer, and
                # nothing in a 500 or 503 tells us it did not.
                raise fail(unreadable[0], None, failure, unreadable[1])
            raise fail(OpenSRSTransientError, None, failure, "transient")
        if not raw.strip():
            raise fail(unreadable[0], None, "empty reply body", unreadable[1])
        try:
            answer = _reply_answer(raw, obj)
        except _ReplyUnreadable as exc:
            # Chained to the decoding error, if any, rather than to this wrapper.
            unread = fail(unreadable[0], None, str(exc), unreadable[1], exc.response_summary)
            raise unread from exc.__cause__
        code, text, response_summary = answer.code, answer.text, answer.response_summary
        if answer.succeeded:
            exchange = self._record(
                request_summary, attempt, "success", started, code, text, response_summary
            )
            return OpenSRSReply(
                action=action,
                object=obj,
                is_success=True,
                code=code,
                text=text,
                attributes=answer.attributes,
                request_summary=request_summary,
                response_summary=response_summary,
                duration_ms=exchange.duration_ms,
            )
        error, outcome = self._classify(code, text, obj)
        raise fail(error, code, text, outcome, response_summary)

    @staticmethod
    def _classify(code: int, text: str, obj: str) -> tuple[type[OpenSRSError], Outcome]:
        lowered = text.lower()
        if code in AUTH_CODES or (code == 400 and "ip address" in lowered):
            return OpenSRSAuthError, "error"
        if code in NOT_IN_ACCOUNT_CODES and obj.upper() == "DOMAIN":
            return DomainNotInAccount, "error"
        if code in TRANSIENT_CODES:
            return OpenSRSTransientError, "transient"
        # 400 also carries "Invalid Command" and "already renewed", which a retry will not fix.
        if code == 400 and "invalid command" not in lowered and "renewed" not in lowered:
            return OpenSRSTransientError, "transient"
        return OpenSRSRequestError, "error"

    def _record(
        self,
        request_summary: dict[str, Any],
        attempt: int,
        outcome: Outcome,
        started: float,
        code: int | None,
        text: str,
        response_summary: dict[str, Any] | None,
    ) -> OpenSRSExchange:
        exchange = OpenSRSExchange(
            action=str(request_summary.get("action", "")),
            object=str(request_summary.get("object", "")),
            domain=str(request_summary.get("domain", "")),
            attempt=attempt,
            outcome=outcome,
            duration_ms=round((time.monotonic() - started) * 1000),
            response_code=code,
            response_text=text,
            request_summary=request_summary,
            response_summary=response_summary,
        )
        self.last_exchange = exchange
        opensrs_call_observed(
            action=exchange.action, outcome=outcome, seconds=time.monotonic() - started
        )
        if self._audit_hook is not None:
            self._audit_hook(exchange)
        return exchange


def client_from_settings(**overrides: Any) -> OpenSRSClient:
    """Build a client from the OPENSRS_* settings; keyword overrides go to OpenSRSClient."""
    options: dict[str, Any] = {
        "connect_timeout": getattr(settings, "OPENSRS_CONNECT_TIMEOUT", 5),
        "read_timeout": getattr(settings, "OPENSRS_READ_TIMEOUT", 30),
        "read_retries": getattr(settings, "OPENSRS_READ_RETRIES", 3),
        "backoff": getattr(settings, "OPENSRS_RETRY_BACKOFF", 0.5),
        "throttle": opensrs_throttle,
        **overrides,
    }
    return OpenSRSClient(
        settings.OPENSRS_URL, settings.OPENSRS_USERNAME, settings.OPENSRS_KEY, **options
    )


# --- call rate ----------------------------------------------------------------------------------

_THROTTLE_SEQ_KEY = "opensrs:calls:seq"
# A minute plus a second: a slot is stamped before its request goes out, and OpenSRS counts
# the request when it arrives, a little later.
_THROTTLE_WINDOW = 61.0


def opensrs_throttle() -> None:
    """Wait for a call slot so no 60 s window holds more than OPENSRS_MAX_CALLS_PER_MINUTE calls.

    Shared by every process through the cache: call n takes slot n mod limit and may go once the
    call that last used that slot is a minute (and a second) old. Waits up to
    OPENSRS_THROTTLE_MAX_WAIT seconds, then raises OpenSRSTransientError without sending
    anything. A limit of 0 turns it off; so does an unreachable cache (the calls then go out
    unthrottled rather than not at all).
    """
    from django.core.cache import cache

    from helpdesk.exceptions import CACHE_DOWN_ERRORS

    limit = int(getattr(settings, "OPENSRS_MAX_CALLS_PER_MINUTE", 0))
    if limit <= 0:
        return
    max_wait = float(getattr(settings, "OPENSRS_THROTTLE_MAX_WAIT", 60.0))
    try:
        cache.add(_THROTTLE_SEQ_KEY, 0, timeout=None)
        slot = f"opensrs:calls:slot:{cache.incr(_THROTTLE_SEQ_KEY) % limit}"
        now = time.time()
        if cache.add(slot, now, timeout=_THROTTLE_WINDOW + 1):
            return
        last = cache.get(slot)
        wait = 0.0 if last is None else float(last) + _THROTTLE_WINDOW - now
        if wait > max_wait:
            raise OpenSRSTransientError(
                None, f"local OpenSRS call limit ({limit}/min) reached; try again in {wait:.0f} s"
            )
        if wait > 0:
            time.sleep(wait)
        cache.set(slot, time.time(), timeout=_THROTTLE_WINDOW + 1)
    except CACHE_DOWN_ERRORS:
        return
