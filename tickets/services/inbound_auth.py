"""Whether an inbound email's From address is authenticated, by our receiving server's verdicts.

The From header of an email can be written by anyone. The server that received the message for
us (the ESP's inbound MX) checks SPF, DKIM and DMARC and says so in an `Authentication-Results`
header (RFC 8601) stamped with its own authserv-id, or in a `Received-SPF` header (RFC 7208
section 9.1) naming itself as `receiver` (Postmark writes only that one). Only those count: a
header with any other authserv-id was written by the sender, or by a server we do not know, and
is ignored. The receiving server adds its header above what the sender wrote, so the topmost one
carrying our id is read and any copy below it is ignored too.

Authenticated means DMARC pass naming the From domain (`header.from`), or DKIM pass with a
signing domain (`d=`) aligned with the From domain, or SPF pass for an envelope sender aligned
with it. Alignment is relaxed (RFC 7489 3.1), read without the Public Suffix List: the same
domain, or one a subdomain of the other (d=mail.example.com for From: a@example.com, or
d=example.com for From: a@news.example.com); a bare top-level domain never counts.

What that reading gets wrong, knowingly. RFC 7489 compares organizational domains, which only
the Public Suffix List tells. Without it:
- two sibling subdomains (d=a.example.com for From: b@c.example.com) are not aligned, though
  the RFC would align them: such mail is taken as unauthenticated (the safe way);
- a signer under a From domain that is itself a public suffix is aligned, though the RFC would
  not align it: d=evil.github.io, or d=evil.co.uk, for From: a@github.io or a@co.uk. Only mail
  From an address at a public suffix itself is open to that, and such an address is nobody's
  on record; an address under one (From: a@shop.co.uk) aligns only with its own subdomains
  and with the suffix (d=co.uk), whose key its registry alone holds.
No PSL package is installed, and the requirements are hash-locked: taking one on means a
locked entry and keeping its list current (a stale list errs both ways), for the second case
alone. tests/tickets/test_inbound_alignment.py pins the rule as it is.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from tickets.redaction import redact_card_numbers

# Folding (RFC 5322 2.2.3): a line break followed by white space is white space.
_FOLD = re.compile(r"\r?\n(?=[ \t])|\r(?=[ \t])")
_SPACES = re.compile(r"\s+")
_AROUND_EQUALS = re.compile(r"\s*=\s*")
# Our receiving server's verdict is among the topmost headers and a few hundred characters long
# (its longest part a MAIL FROM or HELO of at most 255); see _trusted_first.
VERDICT_HEADERS_READ = 50
VERDICT_HEADER_MAX_CHARS = 8192
# The result of a verdict that names one thing twice: never a pass.
AMBIGUOUS = "ambiguous"
# A word: runs of anything but white space and quotes, and quoted strings (which may hold both).
_WORD = re.compile(r'(?:[^\s"]+|"(?:[^"\\]|\\.)*"?)+')


@dataclass(frozen=True)
class SenderAuthentication:
    """The receiving server's verdict on one message's From address, and what it was read from.

    `authenticated`: a trusted pass aligned with the From domain (`by` names it: dmarc, dkim or
    spf). `trusted`: whether the message may act for its sender, which is `authenticated`, or
    any message when INBOUND_REQUIRE_AUTHENTICATION is off.
    """

    authenticated: bool
    trusted: bool
    by: str = ""
    source: str = ""
    results: dict[str, list[str]] = field(default_factory=dict)

    def as_details(self) -> dict[str, Any]:
        """The verdict as the stored message and the audit row keep it."""
        return {
            "authenticated": self.authenticated,
            "trusted": self.trusted,
            "by": self.by,
            "source": self.source,
            "results": self.results,
        }


def _unfold(value: str) -> str:
    return _SPACES.sub(" ", _FOLD.sub("", value)).strip()


def _without_comments(value: str) -> str:
    """`value` without (comments), which may nest; quoted strings are kept as they are."""
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
            if depth == 0:
                out.append(char)
            continue
        if quoted:
            quoted = char != '"'
            out.append(char)
        elif char == '"' and depth == 0:
            quoted = True
            out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            if depth == 0:
                out.append(" ")
        elif depth == 0:
            out.append(char)
    return "".join(out)


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    r"""`value` split at `separator` outside quoted strings; a backslash escapes the next character.

    The same reading as `_without_comments`: a sender's quoted local part such as
    `"x\"; envelope-from=..."@attacker.test` stays one value.
    """
    parts: list[str] = []
    current: list[str] = []
    quoted, escaped = False, False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


def _domain(value: str) -> str:
    """The domain of an address, `@domain` or a bare domain, lower case, without a final dot."""
    value = value.strip().strip('"').strip("<>")
    return value.rpartition("@")[2].strip().rstrip(".").lower()


def _address(value: str) -> str:
    """An address (or bare domain) as written, lower case, without a final dot."""
    return value.strip().strip('"').strip("<>").strip().rstrip(".").lower()


def domains_aligned(signer: str, author: str) -> bool:
    """Relaxed alignment of an authenticated domain with the From domain."""
    signer, author = _domain(signer), _domain(author)
    if not signer or not author:
        return False
    if signer == author:
        return True
    shorter, longer = sorted((signer, author), key=len)
    return "." in shorter and longer.endswith("." + shorter)


def authserv_ids() -> frozenset[str]:
    """The ids whose verdicts count, from INBOUND_AUTHSERV_IDS.

    A domain (an Authentication-Results authserv-id, or any receiver there), or the one address
    our server names itself by in Received-SPF's `receiver=` (Postmark's is the inbound
    address's hash: a sender cannot guess it).
    """
    return frozenset(
        name.strip().rstrip(".").lower() for name in settings.INBOUND_AUTHSERV_IDS if name.strip()
    )


@dataclass(frozen=True)
class _Result:
    method: str
    result: str
    properties: dict[str, str]


def _results_read(value: str) -> tuple[str, list[_Result]]:
    """An Authentication-Results value: its authserv-id and each method's result."""
    value = _AROUND_EQUALS.sub("=", _SPACES.sub(" ", _without_comments(_unfold(value))))
    head, *rest = _split_outside_quotes(value, ";")
    words = head.split()
    server = words[0].rstrip(".").lower() if words else ""
    results = []
    for resinfo in rest:
        tokens = _WORD.findall(resinfo)
        if not tokens or "=" not in tokens[0]:
            continue  # "none", or nothing
        method, _, result = tokens[0].partition("=")
        properties: dict[str, str] = {}
        for token in tokens[1:]:
            name, equals, prop = token.partition("=")
            if equals:
                if name.lower() in properties:
                    # Two header.d= (or smtp.mailfrom=) in one result: which one passed is
                    # unknowable, and a second is what a value written into the first looks like.
                    result = AMBIGUOUS
                properties[name.lower()] = prop.strip('"')
        results.append(_Result(method.split("/")[0].lower(), result.lower(), properties))
    return server, results


def _results_verdict(results: list[_Result], author: str) -> str:
    """The first method of DMARC, DKIM, SPF that passes aligned with the From domain, or ''."""
    for row in results:
        if row.method != "dmarc" or row.result != "pass":
            continue
        # The domain DMARC checked must be named: of a message with several From addresses a
        # server may check one, and a pass for another domain says nothing of this one.
        checked = row.properties.get("header.from", "")
        if checked and _domain(checked) == _domain(author):
            return "dmarc"
    for row in results:
        if row.method == "dkim" and row.result == "pass":
            signer = row.properties.get("header.d") or row.properties.get("header.i", "")
            if domains_aligned(signer, author):
                return "dkim"
    for row in results:
        if row.method == "spf" and row.result == "pass":
            # smtp.mail: the older spelling (RFC 5451) some servers still write.
            mailfrom = row.properties.get("smtp.mailfrom") or row.properties.get("smtp.mail", "")
            if domains_aligned(mailfrom, author):
                return "spf"
    return ""


def _received_spf_read(value: str) -> tuple[str, set[str], dict[str, str]]:
    """A Received-SPF value: its result, what its `receiver=` names, its key=value pairs.

    The receiver is kept as written and as its domain, for either kind of id to match.

    A key given twice makes the result AMBIGUOUS: the server writes each once, so a second is
    a value the sender chose (a quoted MAIL FROM or HELO) read as more keys.
    """
    value = _AROUND_EQUALS.sub("=", _unfold(value))
    words = value.split(None, 1)
    result = words[0].lower() if words else ""
    pairs: dict[str, str] = {}
    receivers = set()
    for part in _split_outside_quotes(_without_comments(words[1] if len(words) > 1 else ""), ";"):
        name, equals, pair_value = part.strip().partition("=")
        if equals and " " not in name:
            name, pair_value = name.lower(), pair_value.strip().strip('"')
            if name in pairs:
                result = AMBIGUOUS
            if name == "receiver":
                receivers |= {_domain(pair_value), _address(pair_value)}
            pairs[name] = pair_value
    return result, receivers, pairs


def _trusted_first(headers: list[tuple[str, str]]) -> tuple[str, list[_Result]] | None:
    """The topmost verdict of our receiving server: its header value and results.

    Authentication-Results (all methods) or, where that server writes only SPF, Received-SPF.
    The server puts its own above everything the sender wrote, so a sender's copy claiming our
    id, of either header, is below it and never read.

    Reading stops, with no verdict, at a verdict header longer than any server writes or past
    the first VERDICT_HEADERS_READ of them: what follows was written by the sender, and reading
    megabytes of nested comments would cost seconds of CPU per message.
    """
    ours = authserv_ids()
    read = 0
    for header, value in headers:
        name = header.strip().lower()
        if name not in ("authentication-results", "received-spf"):
            continue
        read += 1
        if read > VERDICT_HEADERS_READ or len(value) > VERDICT_HEADER_MAX_CHARS:
            return None
        if name == "authentication-results":
            server, results = _results_read(value)
            if server in ours and "@" not in server:
                return value, results
        elif name == "received-spf":
            result, receivers, pairs = _received_spf_read(value)
            if receivers & ours:
                identity = pairs.get("identity", "mailfrom").lower()
                mailfrom = pairs.get("envelope-from", "") if identity == "mailfrom" else ""
                return value, [_Result("spf", result, {"smtp.mailfrom": mailfrom})]
    return None


def inbound_sender_authentication(
    *, from_email: str, headers: list[tuple[str, str]]
) -> SenderAuthentication:
    """Whether our receiving server authenticated `from_email`, from the message's headers in order.

    The one place that decides it: the inbound service acts for a sender only on its verdict.
    """
    source = ""
    results: list[_Result] = []
    found = _trusted_first(headers)
    if found is not None:
        header_value, results = found
        # Kept on the message and the audit row; the HELO and MAIL FROM in it are the sender's.
        source = redact_card_numbers(_unfold(header_value))[0][:500]
    by = _results_verdict(results, from_email) if "@" in from_email else ""
    summary: dict[str, list[str]] = {}
    for row in results:
        if row.method in ("dmarc", "dkim", "spf"):
            summary.setdefault(row.method, []).append(row.result[:20])
    authenticated = bool(by)
    return SenderAuthentication(
        authenticated=authenticated,
        trusted=authenticated or not settings.INBOUND_REQUIRE_AUTHENTICATION,
        by=by,
        source=source,
        results=summary,
    )
