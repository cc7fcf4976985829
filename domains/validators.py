"""Domain names: IDNA 2008 (UTS 46, non-transitional), as registries and browsers read them."""

import functools
import re
import unicodedata

import idna
from django.core.exceptions import ValidationError
from django.utils.translation import gettext, gettext_noop

INVALID_DOMAIN = gettext_noop("Enter a domain name such as example.com.")
DOMAIN_MIXED_SCRIPTS = gettext_noop(
    "A domain name label may not mix alphabets (such as Latin and Cyrillic letters)."
)
DOMAIN_NOT_IDNA = gettext_noop(
    "This is not a valid internationalised domain name (IDNA 2008): {error}."
)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Scripts that may share a label with Latin and each other (UTS 39 "highly restrictive").
_SCRIPT_SETS = (
    frozenset({"HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"HAN", "BOPOMOFO"}),
    frozenset({"HAN", "HANGUL"}),
)
# Letters whose name does not start with their script.
_SCRIPT_ALIASES = {"CJK": "HAN", "MODIFIER": "", "KATAKANA-HIRAGANA": ""}


def letter_script(char: str) -> str:
    """A letter's script, from the first word of its Unicode name ("CYRILLIC SMALL LETTER A")."""
    first = unicodedata.name(char, "").split(" ", 1)[0]
    return _SCRIPT_ALIASES.get(first, first)


def label_scripts_mixed(label: str) -> bool:
    """Whether a Unicode label mixes scripts a look-alike would (Latin with Cyrillic, ...).

    Digits, hyphens and combining marks belong to no script; Latin may go with the
    Chinese, Japanese or Korean scripts, and those with each other as their writing does.
    """
    scripts = {letter_script(ch) for ch in label if unicodedata.category(ch).startswith("L")}
    scripts.discard("")
    if len(scripts) <= 1:
        return False
    others = scripts - {"LATIN"}
    return not any(others <= allowed for allowed in _SCRIPT_SETS)


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
    """Clean up (domain_input_strip) and return the IDNA 2008 ASCII (xn--) form, or raise.

    UTS 46 mapping without the transitional rules: `faß.de` stays itself (xn--fa-hia.de), not
    `fass.de` as IDNA 2003 and Python's "idna" codec make it.
    """
    name = domain_input_strip(raw)
    if not name or "/" in name or "@" in name:
        raise ValidationError(gettext(INVALID_DOMAIN), code="invalid_domain")
    try:
        ascii_name = idna.encode(name, uts46=True, transitional=False).decode("ascii")
        unicode_labels = idna.decode(ascii_name).split(".")
    except idna.IDNAError as exc:
        if name.isascii() and "xn--" not in name.lower():
            raise ValidationError(gettext(INVALID_DOMAIN), code="invalid_domain") from exc
        message = gettext(DOMAIN_NOT_IDNA).format(error=str(exc).rstrip("."))
        raise ValidationError(message, code="invalid_domain") from exc
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValidationError(gettext(INVALID_DOMAIN), code="invalid_domain")
    if labels[-1].isdigit():
        raise ValidationError(gettext(INVALID_DOMAIN), code="invalid_domain")
    if any(label_scripts_mixed(label) for label in unicode_labels):
        raise ValidationError(gettext(DOMAIN_MIXED_SCRIPTS), code="mixed_scripts")
    return ascii_name


@functools.lru_cache(maxsize=4096)
def domain_display(name: str) -> str:
    """The Unicode form of a stored (xn--) name, for people to read; the name if it has none.

    Cached: IDNA decoding took about 230 Python calls a name, and the staff ticket page reads
    its domain's twice.
    """
    try:
        return idna.decode(name)
    except idna.IDNAError:
        return name


@functools.lru_cache(maxsize=4096)
def domain_compare_form(domain: str) -> str:
    """The ASCII (xn--) form two spellings of one domain share (case, width, A- or U-label).

    Unlike NFKC case folding, this keeps `faß.de` and `fass.de` apart: they are two domains.
    Cached: IDNA encoding took 140 Python calls a domain, twice on every staff ticket page
    (the contact's address and the customer's, compared).
    """
    try:
        return idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError:
        return unicodedata.normalize("NFKC", domain).casefold()


def domain_search_text(text: str) -> str:
    """What to look for in stored (xn--, lower-case) names when staff type part of a name."""
    if text.isascii():
        return text.lower()
    try:
        return idna.encode(text.strip(), uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError:
        return text.lower()
