"""What a stored attachment's bytes are, judged from the bytes, and how it is handed out."""

import puremagic
from django.http import HttpResponse
from django.utils.http import content_disposition_header

from tickets.models import Attachment

# Types served as themselves; anything else (HTML, SVG, scripts, unknown) as opaque bytes.
SAFE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})
OPAQUE = "application/octet-stream"
_TEXT_PROBE = 64 * 1024


def attachment_type_sniff(content: bytes) -> str:
    """The MIME type the content itself shows, never what the sender's email claimed."""
    if not content:
        return OPAQUE
    try:
        sniffed = puremagic.from_string(content, mime=True)
    except puremagic.PureError:
        sniffed = ""
    if sniffed in SAFE_TYPES:
        return sniffed
    if sniffed == "" and _is_text(content[:_TEXT_PROBE]):
        return "text/plain; charset=utf-8"
    return OPAQUE


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Cut in the middle of a character by the probe's limit: still text.
        return exc.start >= len(head) - 3
    return True


def attachment_download(attachment: Attachment) -> HttpResponse:
    """The attachment as a download: never rendered by the browser, whatever it holds."""
    response = HttpResponse(
        bytes(attachment.content), content_type=attachment_type_sniff(bytes(attachment.content))
    )
    # Never None with as_attachment=True.
    response["Content-Disposition"] = (
        content_disposition_header(as_attachment=True, filename=attachment.filename) or "attachment"
    )
    response["X-Content-Type-Options"] = "nosniff"
    # Opened in a tab anyway (a PDF viewer, say), it can run nothing and reach nothing.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
