import re

from django.core.exceptions import ValidationError

INVALID_DOMAIN = "Enter a domain name such as example.com."
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]{0,20}://", re.IGNORECASE)
_PORT = re.compile(r":[0-9]{1,5}$")


def domain_input_strip(raw: str) -> str:
    """The host name in what a person typed: no scheme, login, port, path, query or final dot.

    `https://user@www.example.com:443/a?b#c.` gives `www.example.com`; anything else is
    left for normalize_domain_name to judge.
    """
    text = (raw or "").strip()
    with_scheme = _SCHEME.match(text) is not None
    text = _SCHEME.sub("", text)
    text = re.split(r"[/?#]", text, maxsplit=1)[0] if with_scheme or "/" in text else text
    if with_scheme:
        text = text.rpartition("@")[2]  # a login in a URL, never an email address
    return _PORT.sub("", text).rstrip(".")


def domain_name_bare(name: str) -> str | None:
    """`example.com` for a normalised `www.example.com`; None when there is no `www.` to drop."""
    bare = name.removeprefix("www.")
    return bare if bare != name and "." in bare else None


def domain_input_suggestion(raw: str) -> str | None:
    """The bare name to offer as "did you mean" when what was typed was a URL, else None."""
    stripped = domain_input_strip(raw).lower()
    if not stripped or stripped == (raw or "").strip().lower().rstrip("."):
        return None
    return domain_name_bare(stripped) or stripped


def normalize_domain_name(raw: str) -> str:
    """Clean up (domain_input_strip), lower-case and IDNA-encode a domain name, or raise."""
    name = domain_input_strip(raw).lower()
    if "/" in name or "@" in name or " " in name:
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
