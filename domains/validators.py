import re

from django.core.exceptions import ValidationError

INVALID_DOMAIN = "Enter a domain name such as example.com."
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_domain_name(raw: str) -> str:
    """Trim, drop a trailing dot, lower-case and IDNA-encode a domain name, or raise."""
    name = (raw or "").strip().rstrip(".").lower()
    if name.startswith(("http://", "https://")) or "/" in name or "@" in name or " " in name:
        raise ValidationError(INVALID_DOMAIN, code="invalid_domain")
    try:
        ascii_name = name.encode("idna").decode("ascii") if name else ""
    except UnicodeError as exc:
        raise ValidationError(INVALID_DOMAIN, code="invalid_domain") from exc
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValidationError(INVALID_DOMAIN, code="invalid_domain")
    if labels[-1].isdigit():
        raise ValidationError(INVALID_DOMAIN, code="invalid_domain")
    return ascii_name
