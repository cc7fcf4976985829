"""Attachments: the rules a file must meet, storing it on a message, and its virus scan.

Every attachment, whether it came by email, on a portal form or with a staff reply, is stored
by `attachments_store` and scanned once by `attachment_scan` in the worker; until that scan
finds it clean it is neither downloadable nor mailed.
"""

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from tickets.attachments import (
    attachment_extensions,
    attachment_name_refusal,
    attachment_type_sniff,
)
from tickets.audit import Actor, audit_record
from tickets.lock_objects import message_ticket_lock
from tickets.models import Attachment, Message
from tickets.redaction import redact_card_numbers
from tickets.scanning import ScannerUnavailable, attachment_scanner
from tickets.services.publishing import tasks_publish_each
from tickets.tasks import attachment_scan as attachment_scan_task

logger = logging.getLogger(__name__)

ATTACHMENT_MAX_BYTES: int = settings.ATTACHMENT_MAX_BYTES
ATTACHMENT_MAX_MEGABYTES = ATTACHMENT_MAX_BYTES // (1024 * 1024)  # as the messages name it
ATTACHMENTS_PER_MESSAGE: int = settings.ATTACHMENTS_PER_MESSAGE
# Pending this long, a scan is queued again by the sweep (its task lost, or the scanner down).
ATTACHMENT_SCAN_SWEEP_AFTER = timedelta(minutes=1)
# What a file's bytes must say it is (tickets.attachments.attachment_type_sniff).
ATTACHMENT_TYPES = frozenset(
    {
        "application/pdf",
        "text/plain",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "image/tiff",
        "image/heic",
        "image/heif",
    }
)
# Names a browser or desktop would run or render as active content, whatever the bytes.
ATTACHMENT_DANGEROUS_EXTENSIONS = frozenset(
    {
        "exe", "com", "bat", "cmd", "scr", "pif", "msi", "msp", "dll", "cpl", "jar", "js",
        "jse", "mjs", "vbs", "vbe", "wsf", "wsh", "ps1", "psm1", "hta", "lnk", "reg", "sh",
        "php", "py", "pl", "html", "htm", "xhtml", "shtml", "svg", "svgz", "xml", "xsl",
        "swf", "iso", "img", "vhd", "docm", "xlsm", "pptm", "apk", "app", "dmg", "msc",
    }
)  # fmt: skip
ATTACHMENTS_TOO_MANY = gettext_noop("Attach at most {count} files to one message.")
ATTACHMENT_TOO_LARGE = gettext_noop("{name} is larger than {megabytes} MB.")
ATTACHMENT_EMPTY = gettext_noop("{name} is empty.")
ATTACHMENT_TYPE_REFUSED = gettext_noop(
    "{name} is not a file we accept. Attach images (PNG, JPEG, GIF, WebP), PDF or plain text."
)
ATTACHMENT_NAME_MISMATCH = gettext_noop(
    "{name} does not hold what its name says. Attach the file itself, not a renamed one."
)
# The text of the message that carries files sent without one (a change request's proof).
ATTACHMENTS_ONLY_BODY = gettext_noop("Files attached to this request.")


@dataclass(frozen=True)
class AttachmentUpload:
    """A file as sent: the name the sender gave and its bytes."""

    filename: str
    content: bytes


def attachment_filename_clean(raw: str) -> str:
    """A path-safe NFC name: no folders, no control or invisible characters, no leading dots.

    A card number in it is redacted (once the invisible characters that could split it are gone,
    before the length is cut), so the name is stored, audited and shown without it.
    """
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Categories C*: control, format (zero-width, bidi overrides), surrogate, private, unassigned.
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name, _card_found = redact_card_numbers(" ".join(name.split()))
    return name.strip(" .")[:200] or "attachment"


def _upload_error(upload: AttachmentUpload) -> str:
    """Why one file is refused (translated), or ""."""
    name = upload.filename
    extensions = attachment_extensions(name)
    if any(extension in ATTACHMENT_DANGEROUS_EXTENSIONS for extension in extensions):
        return gettext(ATTACHMENT_TYPE_REFUSED).format(name=name)
    if len(upload.content) > ATTACHMENT_MAX_BYTES:
        return gettext(ATTACHMENT_TOO_LARGE).format(name=name, megabytes=ATTACHMENT_MAX_MEGABYTES)
    if not upload.content:
        return gettext(ATTACHMENT_EMPTY).format(name=name)
    sniffed = attachment_type_sniff(upload.content)
    if sniffed not in ATTACHMENT_TYPES:
        return gettext(ATTACHMENT_TYPE_REFUSED).format(name=name)
    refusal = attachment_name_refusal(name, sniffed)
    if refusal == "unknown":  # text named as a shortcut or a document, say
        return gettext(ATTACHMENT_TYPE_REFUSED).format(name=name)
    if refusal == "mismatch":
        return gettext(ATTACHMENT_NAME_MISMATCH).format(name=name)
    return ""


def attachments_validate(*, uploads: Sequence[AttachmentUpload]) -> list[AttachmentUpload]:
    """The files with clean names, or ValidationError keyed `attachments` saying what is wrong.

    Judged by the bytes: at most ATTACHMENTS_PER_MESSAGE files of ATTACHMENT_MAX_BYTES, each
    an image, a PDF or plain text by its content, under a name that does not say otherwise.
    """
    if len(uploads) > ATTACHMENTS_PER_MESSAGE:
        message = gettext(ATTACHMENTS_TOO_MANY).format(count=ATTACHMENTS_PER_MESSAGE)
        raise ValidationError({"attachments": [message]}, code="too_many")
    cleaned = [AttachmentUpload(attachment_filename_clean(u.filename), u.content) for u in uploads]
    errors = [error for error in map(_upload_error, cleaned) if error]
    if errors:
        raise ValidationError({"attachments": errors}, code="refused")
    return cleaned


def _scans_queue(attachment_ids: list[int], *, sweep: bool = False) -> None:
    tasks_publish_each(
        attachment_scan_task,
        attachment_ids,
        key="attachment_id",
        what="attachment scans",
        sweep=sweep,
    )


@transaction.atomic(savepoint=False)  # part of the caller's message: all or nothing
def attachments_store(
    *, message: Message, files: Sequence[tuple[str, str, bytes]], actor: Actor
) -> list[Attachment]:
    """Keep files (name, type, bytes) already judged acceptable on a message; scan them after.

    Each is stored pending and scanned by the worker once the caller's transaction commits.
    """
    if not files:
        return []
    stored = []
    for filename, content_type, content in files:
        attachment = Attachment(
            message=message,
            filename=filename,
            content_type=content_type,
            size=len(content),
            content=content,
        )
        attachment.full_clean(exclude=["content"])
        attachment.save(force_insert=True)
        stored.append(attachment)
    audit_record(
        actor=actor,
        action="attachment.added",
        ticket=message.ticket,
        details={
            "message": message.pk,
            "files": [
                {"id": a.pk, "name": a.filename, "type": a.content_type, "size": a.size}
                for a in stored
            ],
        },
    )
    ids = [a.pk for a in stored]
    transaction.on_commit(lambda: _scans_queue(ids))
    return stored


@transaction.atomic(savepoint=False)  # part of the caller's message: all or nothing
def attachments_add(
    *, message: Message, uploads: Sequence[AttachmentUpload], actor: Actor
) -> list[Attachment]:
    """Attach files sent on the portal or with a staff reply to their message.

    Raises ValidationError (keyed `attachments`) when any file breaks the rules; the caller's
    transaction, and so the whole message, is then rolled back.
    """
    cleaned = attachments_validate(uploads=uploads)
    files = [(u.filename, attachment_type_sniff(u.content), u.content) for u in cleaned]
    return attachments_store(message=message, files=files, actor=actor)


def attachment_scan(*, attachment_id: int) -> str:
    """Scan one pending attachment and record the verdict; its scan status after.

    Idempotent by state guard: only a pending row is scanned, and the verdict is written by a
    conditional update from pending, so a second delivery of the task records nothing. The scan
    itself runs outside any transaction; ScannerUnavailable leaves the row pending (retried).
    """
    found = Attachment.objects.filter(
        pk=attachment_id, scan_status=Attachment.ScanStatus.PENDING
    ).first()
    if found is None:
        return "skipped"
    scanner = attachment_scanner()
    try:
        verdict = scanner.scan(bytes(found.content))
    except ScannerUnavailable:
        logger.warning("attachment %s not scanned: the scanner is unavailable", attachment_id)
        raise
    status = Attachment.ScanStatus.CLEAN if verdict.clean else Attachment.ScanStatus.INFECTED
    result = f"{scanner.name}: {verdict.signature}" if verdict.signature else scanner.name
    with transaction.atomic():
        # The ticket the file is on now: a merge may have moved its message during the scan.
        ticket = message_ticket_lock(message_id=found.message_id)
        marked = Attachment.objects.filter(
            pk=attachment_id, scan_status=Attachment.ScanStatus.PENDING
        ).update(scan_status=status, scanned_at=timezone.now(), scan_result=result[:200])
        if not marked:
            return "skipped"
        audit_record(
            actor="worker",
            action="attachment.scanned" if verdict.clean else "attachment.blocked",
            ticket=ticket,
            details={
                "attachment": found.pk,
                "name": found.filename,
                "scanner": scanner.name,
                **({"found": verdict.signature} if verdict.signature else {}),
            },
        )
    return str(status)


def attachments_scan_requeue_due(*, batch_size: int = 500) -> int:
    """Queue scans for attachments left pending for a minute (lost task, scanner down)."""
    older_than = timezone.now() - ATTACHMENT_SCAN_SWEEP_AFTER
    due = list(
        Attachment.objects.filter(
            scan_status=Attachment.ScanStatus.PENDING, created_at__lt=older_than
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:batch_size]
    )
    _scans_queue(due, sweep=True)
    return len(due)
