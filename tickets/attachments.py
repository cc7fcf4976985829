"""What a stored attachment's bytes are, judged from the bytes, and how it is handed out."""

import re

from django.http import HttpResponse
from django.utils.http import content_disposition_header

from tickets.models import Attachment

OPAQUE = "application/octet-stream"

_MAGIC = [
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
]
_HEIF_BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"mif1": "image/heif"}
# Text a browser would render as a page or run, whatever the file is called.
_ACTIVE_TEXT = re.compile(
    rb"<\s*(?:!doctype|html|script|svg|iframe|body|head|object|embed|\?xml)", re.IGNORECASE
)


def attachment_type_sniff(content: bytes) -> str:
    """The type the bytes themselves say, by their magic number; text/plain for clean text.

    "" when they say nothing we accept: binary of another kind, or markup a browser would run.
    Intake and downloads both judge by this, never by the type the sender claimed.
    """
    for magic, content_type in _MAGIC:
        if content.startswith(magic):
            return content_type
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    if content[4:8] == b"ftyp" and content[8:12] in _HEIF_BRANDS:
        return _HEIF_BRANDS[content[8:12]]
    head = content[:4096]
    # Text in any 8-bit encoding (CSV from a spreadsheet is often not UTF-8); no binary, no markup.
    if b"\x00" in head or _ACTIVE_TEXT.search(head):
        return ""
    return "text/plain"


def attachment_served_type(content: bytes) -> str:
    """The Content-Type a download gets: the sniffed type, or opaque bytes."""
    return attachment_type_sniff(content) or OPAQUE


def attachment_download(attachment: Attachment) -> HttpResponse:
    """The attachment as a download: never rendered by the browser, whatever it holds."""
    content = bytes(attachment.content)
    response = HttpResponse(content, content_type=attachment_served_type(content))
    # Never None with as_attachment=True.
    response["Content-Disposition"] = (
        content_disposition_header(as_attachment=True, filename=attachment.filename) or "attachment"
    )
    response["X-Content-Type-Options"] = "nosniff"
    # Opened in a tab anyway (a PDF viewer, say), it can run nothing and reach nothing.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
