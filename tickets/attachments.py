"""What a stored attachment's bytes are, judged from the bytes, and how it is handed out."""

import re
import unicodedata

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


# The names a file of each type we take may go by: its last extension one of these, or none. A
# desktop opens a file by its name, and plain text under another name is a shortcut that runs a
# program or sends the reader's Windows credentials (.url, .scf, .library-ms), a document with
# embedded objects (.rtf), or a page (.mht); the bytes pass as text, the name must not.
ATTACHMENT_EXTENSION_TYPES: dict[str, frozenset[str]] = {
    "pdf": frozenset({"application/pdf"}),
    "png": frozenset({"image/png"}),
    "jpg": frozenset({"image/jpeg"}),
    "jpeg": frozenset({"image/jpeg"}),
    "jpe": frozenset({"image/jpeg"}),
    "jfif": frozenset({"image/jpeg"}),
    "gif": frozenset({"image/gif"}),
    "webp": frozenset({"image/webp"}),
    "bmp": frozenset({"image/bmp"}),
    "tif": frozenset({"image/tiff"}),
    "tiff": frozenset({"image/tiff"}),
    "heic": frozenset({"image/heic", "image/heif"}),
    "heif": frozenset({"image/heic", "image/heif"}),
    # Text a desktop opens in an editor or a viewer, never as a program or a shortcut: what a
    # hosting customer sends (logs, exports, a site's configuration, a database dump, a diff).
    **{
        extension: frozenset({"text/plain"})
        for extension in (
            "txt",
            "text",
            "log",
            "csv",
            "tsv",
            "md",
            "json",
            "yaml",
            "yml",
            "conf",
            "cfg",
            "sql",
            "diff",
            "patch",
        )
    },
}
# The extension added to a stored name that does not fit its bytes, when it is handed out.
_TYPE_EXTENSIONS = {
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "image/heic": "heic",
    "image/heif": "heif",
    "text/plain": "txt",
}


def attachment_extensions(filename: str) -> list[str]:
    """Every extension of a name, NFKC-folded so a full-width spelling is seen as what it is."""
    folded = unicodedata.normalize("NFKC", filename).casefold()
    return [part.strip() for part in folded.split(".")[1:]]


def attachment_name_refusal(filename: str, content_type: str) -> str:
    """Why a file of `content_type` may not go by `filename`, or "" when it may.

    "unknown": its last extension is none of the types we take; "mismatch": another type's.
    A name without an extension fits any type.
    """
    extensions = attachment_extensions(filename)
    if not extensions:
        return ""
    types = ATTACHMENT_EXTENSION_TYPES.get(extensions[-1])
    if types is None:
        return "unknown"
    return "" if content_type in types else "mismatch"


def attachment_handed_out_name(filename: str, content_type: str) -> str:
    """The name a file is downloaded or mailed under: its own, or with its type's extension.

    Every stored file was judged by its name when it came in; this holds for any stored before
    a rule, so a desktop opens what is handed out as what its bytes are, never by another name.
    """
    if not attachment_name_refusal(filename, content_type):
        return filename
    return f"{filename}.{_TYPE_EXTENSIONS.get(content_type, 'bin')}"


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
    served_type = attachment_served_type(content)
    filename = attachment_handed_out_name(attachment.filename, served_type)
    response = HttpResponse(content, content_type=served_type)
    # Never None with as_attachment=True.
    response["Content-Disposition"] = (
        content_disposition_header(as_attachment=True, filename=filename) or "attachment"
    )
    response["X-Content-Type-Options"] = "nosniff"
    # Opened in a tab anyway (a PDF viewer, say), it can run nothing and reach nothing.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
