"""Reading an inbound email: whether to ignore it, its sender, text, files and any opt-out."""

import hashlib
import re
from email.utils import parseaddr
from html import unescape as html_unescape

import nh3
from django.conf import settings

from accounts.selectors import email_canonical
from helpdesk.validators import address_valid
from tickets import emails
from tickets.attachments import (
    attachment_extensions,
    attachment_name_refusal,
    attachment_type_sniff,
)
from tickets.redaction import contains_card_number
from tickets.services.attachments import (
    ATTACHMENT_DANGEROUS_EXTENSIONS,
    ATTACHMENT_MAX_BYTES,
    ATTACHMENT_TYPES,
    attachment_filename_clean,
)

INBOUND_ATTACHMENT_MAX_BYTES = ATTACHMENT_MAX_BYTES
# The types a sender may claim; the bytes must agree (text/csv is sniffed as text/plain).
INBOUND_ATTACHMENT_TYPES = ATTACHMENT_TYPES | {"text/csv"}
INBOUND_MAX_BODY_CHARS = 100_000
# Files of one email looked at, kept or refused; the rest are one line in the staff note. Anyone
# may write to us, and a few hundred kilobytes of tiny files would otherwise be thousands of
# rows written (and an audit row naming each) while every other audited write waits.
INBOUND_ATTACHMENTS_MAX = 20
_AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})
# Headers auto-responders add (RFC 3834 predecessors, Yandex, qmail and others): present = auto.
_AUTO_REPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoreply-from", "x-mail-autoreply")
# The subject prefix out-of-office replies carry (Exchange and Outlook in English, Malay,
# Indonesian and Chinese, and common autoresponders), before the colon and the subject they
# answer. A prefix with its colon, not a word anywhere: "Auto-reply not working" is a question.
_AUTO_REPLY_SUBJECT = re.compile(
    r"(?:automatic\s+reply|auto[\s-]?repl(?:y|ied)|auto[\s-]?respon(?:se|der)"
    r"|out[\s-]+of[\s-]+(?:the[\s-]+)?office(?:\s+auto[\s-]?reply)?"
    r"|balasan\s+(?:automatik|otomatis)"
    r"|自动答复|自动回复|自動回覆)\s*[:\uff1a]",
    re.IGNORECASE,
)
# Exchange asks for no automatic answer this way (All, or a list with OOF or AutoReply). It
# also puts it on mail people send through distribution lists, so it does not make a message
# an auto-reply: the message is kept, only our acknowledgement is not sent (`inbound_acknowledge`).
_SUPPRESSED_RESPONSES = frozenset({"all", "oof", "autoreply"})
_DAEMON_SENDERS = frozenset({"mailerdaemon", "postmaster"})  # letters only
_REPORT_TYPES = frozenset(
    {"message/delivery-status", "message/disposition-notification", "message/feedback-report"}
)
_OPT_OUT_COMMAND = re.compile(
    r"(?:unsubscribe|opt[ _-]?(?:me )?out|stop (?:sending|mailing|emailing)|remove me from)\b"
)
_NEGATION = re.compile(r"\b(?:not|no|don't|dont|never|do not|doesn't|isn't|why)\b")
_HTML_BREAKS = re.compile(r"(?i)<br\s*/?>|</(?:p|div|li|tr|h[1-6]|blockquote)\s*>")


def inbound_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """Header name (lower case) -> its values joined, from the headers in order."""
    joined: dict[str, list[str]] = {}
    for name, value in headers:
        joined.setdefault(name.lower(), []).append(value)
    return {name: ", ".join(values) for name, values in joined.items()}


def _our_addresses() -> set[str]:
    """Our own sending and receiving addresses (canonical, without +tags)."""
    addresses = {settings.SUPPORT_EMAIL, settings.BILLING_EMAIL, settings.DEFAULT_FROM_EMAIL}
    found = set()
    for address in addresses:
        local, domain = address_local_base(parseaddr(address)[1])
        if local and domain:
            found.add(f"{local}@{domain}")
    return found


def _is_mail_server(address: str) -> bool:
    # mailer-daemon, MAILER-DAEMON, mailer_daemon+x, postmaster+bounce, ...
    local = address.rpartition("@")[0].split("+", 1)[0]
    return re.sub(r"[^a-z]", "", local.lower()) in _DAEMON_SENDERS


def inbound_acknowledge(headers: dict[str, str], *, authenticated: bool) -> bool:
    """Whether a kept message may be answered automatically ("we received your request").

    Only mail our server authenticated as its sender's may ask for no answer: anyone can write
    an address in From, and the acknowledgement is how its owner learns of a request in their
    name, so a forged header must not keep it from them.
    """
    if not authenticated:
        return True
    asked = headers.get("x-auto-response-suppress", "").replace(";", ",").lower().split(",")
    return not _SUPPRESSED_RESPONSES.intersection(value.strip() for value in asked)


def inbound_ignore_reason(
    from_email: str,
    headers: dict[str, str],
    attachments: list[tuple[str, str, bytes]],
    subject: str = "",
) -> str:
    """Why a message is an auto-reply, bounce, report or loop that must never make a ticket.

    The one place inbound mail is told apart from a person's: an auto-reply answered with our
    acknowledgement, or reopening the ticket it answers, would loop with it.
    """
    auto = headers.get("auto-submitted", "").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in _AUTO_REPLY_HEADERS:
        if name in headers:
            return f"{name} header"
    sender = email_canonical(from_email or "")
    if not sender:
        return "empty From"
    if contains_card_number(sender):
        # The address would be stored as the ticket's contact, in its mail and on the audit
        # chain, and a card number is stored nowhere; redacted, no answer could reach it.
        return "a card number in the From address"
    ours = _our_addresses()
    local, domain = address_local_base(sender)
    if f"{local}@{domain}" in ours:
        return "sent from one of our own addresses"
    loop = headers.get("x-loop", "").lower()
    if loop and (any(address in loop for address in ours) or emails.loop_header_value() in loop):
        return "X-Loop names us"
    if "return-path" in headers:
        return_path = parseaddr(headers["return-path"].split(",")[0])[1].strip()
        if not return_path:
            return "empty Return-Path (a bounce or a notification)"
        if _is_mail_server(return_path):
            return "Return-Path of a mail server (mailer-daemon or postmaster)"
    if _is_mail_server(sender):
        return "sent by a mail server (mailer-daemon or postmaster)"
    if headers.get("content-type", "").strip().lower().startswith("multipart/report"):
        return "multipart/report (delivery or read report)"
    if any(str(ctype).lower() in _REPORT_TYPES for _, ctype, _ in attachments):
        return "delivery or read report part"
    if _AUTO_REPLY_SUBJECT.match(" ".join((subject or "").split())):
        return "out-of-office subject"
    return ""


def inbound_message_key(message_id: str, sender: str, *, sender_proven: bool = True) -> str | None:
    """The unique key a message is stored under: its Message-ID and its sender together.

    A stranger who sends an id first cannot make the real sender's mail with that id a
    "duplicate": not from another address, and not from theirs either, since mail whose sender
    was not proven is keyed apart (`sender_proven`). Long keys are hashed to fit, and so are
    keys holding a card number, which is stored nowhere (redacted, two ids would be one key).
    """
    value = (message_id or "").strip()
    if not value:
        return None
    key = f"{email_canonical(sender)} {value}"
    if not sender_proven:
        key = f"unproven {key}"
    if len(key) > 255 or contains_card_number(key):
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def _html_to_text(html: str) -> str:
    # Every tag is dropped (script and style with their content); entities become characters.
    marked = _HTML_BREAKS.sub("\n", html)
    return html_unescape(nh3.clean(marked, tags=set()))


def inbound_body(text: str, html: str) -> str:
    body = text if (text or "").strip() else _html_to_text(html or "")
    body = body.replace("\r\n", "\n").replace("\x00", "")
    body = re.sub(r"\n{3,}", "\n\n", body).strip()[:INBOUND_MAX_BODY_CHARS]
    return body.encode("utf-8", "replace").decode("utf-8")


def _inbound_attachment_refusal(filename: str, content_type: str, content: bytes) -> str:
    extensions = attachment_extensions(filename)
    if any(extension in ATTACHMENT_DANGEROUS_EXTENSIONS for extension in extensions):
        return "file type not accepted"
    if len(content) > INBOUND_ATTACHMENT_MAX_BYTES:
        return "larger than 10 MB"
    if content_type not in INBOUND_ATTACHMENT_TYPES:
        return f"type {content_type or 'unknown'} not accepted"
    sniffed = attachment_type_sniff(content)
    text_types = {"text/plain", "text/csv"}
    if sniffed != content_type and not (sniffed == "text/plain" and content_type in text_types):
        return f"content is not {content_type}"
    refusal = attachment_name_refusal(filename, sniffed)
    if refusal == "unknown":  # text named as a shortcut or a document, say
        return "file type not accepted"
    if refusal == "mismatch":
        return "name does not match its content"
    return ""


def inbound_attachments_sort(
    attachments: list[tuple[str, str, bytes]],
) -> tuple[list[tuple[str, str, bytes]], list[dict[str, str]]]:
    """Split attachments into the ones kept and the refused ones (with the reason).

    Only the first INBOUND_ATTACHMENTS_MAX are looked at; the others are refused as one entry.
    """
    attachments = list(attachments or [])
    kept, refused = [], []
    for raw_name, raw_type, content in attachments[:INBOUND_ATTACHMENTS_MAX]:
        filename = attachment_filename_clean(str(raw_name or ""))
        content_type = str(raw_type or "").split(";")[0].strip().lower()[:100]
        data = bytes(content or b"")
        reason = _inbound_attachment_refusal(filename, content_type, data)
        if reason:
            refused.append({"name": filename, "reason": reason})
        else:
            kept.append((filename, content_type, data))
    left = len(attachments) - INBOUND_ATTACHMENTS_MAX
    if left > 0:
        reason = f"only the first {INBOUND_ATTACHMENTS_MAX} files of an email are looked at"
        refused.append({"name": f"{left} more files", "reason": reason})
    return kept, refused


def address_local_base(address: str) -> tuple[str, str]:
    local, _, domain = email_canonical(address).rpartition("@")
    return local.split("+", 1)[0], domain


def _explicit_opt_out(line: str) -> bool:
    """A subject or first line that is itself a request to unsubscribe, not a mention of one."""
    words = " ".join(re.sub(r"[^\w@.'-]+", " ", line.lower()).split())
    words = words.removeprefix("re ").removeprefix("fwd ").removeprefix("fw ")
    words = words.removeprefix("please ")
    if len(words) > 80 or _NEGATION.search(words):
        return False
    return _OPT_OUT_COMMAND.match(words) is not None


def _first_line(body: str) -> str:
    for line in body.splitlines():
        if line.strip() and not line.lstrip().startswith(">"):
            return line.strip()
    return ""


def inbound_opt_out_lists(recipients: list[str], subject: str, body: str) -> list[str]:
    """Lists an email to support@ or billing@ explicitly asks to leave.

    The subject (as our List-Unsubscribe mailto sets it) or the first line of the text must be
    the request itself: "Unsubscribe", "Please opt me out"; a sentence that only mentions the
    word ("I do NOT want to unsubscribe") is not one.
    """
    if not (_explicit_opt_out(subject) or _explicit_opt_out(_first_line(body))):
        return []
    addressed = {address_local_base(address) for address in recipients if address}
    names = []
    if address_local_base(settings.SUPPORT_EMAIL) in addressed:
        names.append("product_mailings")
    if address_local_base(settings.BILLING_EMAIL) in addressed:
        names.append("reseller_newsletters")
    return names


def valid_address(address: str) -> str:
    """The address if it is one a ticket may write to (the one rule, `address_valid`), else ""."""
    return address if address_valid(address) else ""
